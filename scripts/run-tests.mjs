#!/usr/bin/env node
// Runs the default test suite: every *.test.ts under src/ and test/ (Node 20's runner does not glob
// .ts itself), through tsx. Builds the native addon first if it is missing.
// usage: npm test [-- file-or-folder ...]
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const addon = path.join(root, 'native', 'build', 'Release', 'kwshield_torch.node');
if (!existsSync(addon)) {
  console.error('native addon missing; building it (npm run build:native)');
  const built = spawnSync('npm', ['run', 'build:native'], { cwd: root, stdio: 'inherit' });
  if (built.status !== 0) process.exit(built.status ?? 1);
}

function collect(target, out) {
  const full = path.resolve(root, target);
  if (!existsSync(full)) throw new Error(`no such test file or folder: ${target}`);
  if (statSync(full).isFile()) {
    out.push(full);
    return out;
  }
  for (const entry of readdirSync(full).sort()) {
    if (entry === 'node_modules' || entry.startsWith('.')) continue;
    const child = path.join(full, entry);
    if (statSync(child).isDirectory()) collect(child, out);
    else if (entry.endsWith('.test.ts')) out.push(child);
  }
  return out;
}

const targets = process.argv.slice(2);
const files = (targets.length ? targets : ['src', 'test']).flatMap((t) => collect(t, []));
const result = spawnSync(process.execPath, ['--import', 'tsx', '--test', ...files], {
  cwd: root,
  stdio: 'inherit',
  env: { ...process.env, KWSHIELD_TEST: '1' },
});
process.exit(result.status ?? 1);
