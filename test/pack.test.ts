// The package as a user gets it: `npm pack`, then `npm install` of the tarball into an empty folder (which
// builds the libtorch addon from the packed sources), then the installed command runs: `--help`, and one
// real subcommand that loads libtorch through the freshly built addon. Needs the npm registry for the
// dependencies (CI has it). Slow (a native build): KWSHIELD_SKIP_PACK_TEST=1 skips it locally.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const work = mkdtempSync(path.join(tmpdir(), 'kws-pack-'));
after(() => rmSync(work, { recursive: true, force: true }));

const skip = process.env.KWSHIELD_SKIP_PACK_TEST === '1' ? 'KWSHIELD_SKIP_PACK_TEST=1' : false;

function sh(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = process.env) {
  const r = spawnSync(cmd, args, { cwd, env, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  return { code: r.status, out: `${r.stdout}\n${r.stderr}`, stdout: r.stdout };
}

describe('npm pack, installed into an empty folder', { skip, timeout: 20 * 60_000 }, () => {
  it('installs, builds the addon, and runs kwshield from node_modules/.bin', () => {
    const packed = sh('npm', ['pack', '--pack-destination', work, '--silent'], root);
    assert.equal(packed.code, 0, packed.out);
    const tarball = readdirSync(work).find((f) => f.endsWith('.tgz'));
    assert.ok(tarball, `npm pack wrote no tarball: ${packed.out}`);

    const app = path.join(work, 'app');
    sh('mkdir', ['-p', app], work);
    // npm 11 runs dependencies' install scripts only when the installing project allows them.
    writeFileSync(
      path.join(app, 'package.json'),
      JSON.stringify({ name: 'pack-check', private: true, allowScripts: { kwshield: true, 'better-sqlite3': true, esbuild: true } }),
    );
    const env: NodeJS.ProcessEnv = { ...process.env, npm_config_build_from_source: 'true', npm_config_audit: 'false', npm_config_fund: 'false' };
    if (!env.npm_config_nodedir && existsSync('/usr/include/node/node_api.h')) env.npm_config_nodedir = '/usr';
    const installed = sh('npm', ['install', path.join(work, tarball)], app, env);
    assert.equal(installed.code, 0, installed.out.slice(-4000));
    assert.ok(existsSync(path.join(app, 'node_modules', 'kwshield', 'native', 'build', 'Release', 'kwshield_torch.node')), 'the addon was built on install');
    assert.ok(!existsSync(path.join(app, 'node_modules', 'kwshield', 'src', 'torch', 'tensor.test.ts')), 'tests are not packed');

    const bin = path.join(app, 'node_modules', '.bin', 'kwshield');
    const help = sh(bin, ['--help'], app);
    assert.equal(help.code, 0, help.out);
    for (const command of ['demo', 'attack', 'defend', 'analyze', 'scan', 'grid', 'report']) assert.match(help.stdout, new RegExp(`\\b${command}\\b`));

    // A subcommand that needs libtorch and the bundled dependencies, on data it makes itself.
    const data = path.join(work, 'data');
    const synth = sh(bin, ['data', 'synth', '--preset', 'tiny', '--words', 'scd10', '--out', data, '--json'], app);
    assert.equal(synth.code, 0, synth.out);
    const features = sh(bin, ['features', '--front-end', 'mfcc-16k', '--in', path.join(data, 'yes'), '--out', path.join(work, 'f.safetensors'), '--json'], app);
    assert.equal(features.code, 0, features.out);
    assert.ok(existsSync(path.join(work, 'f.safetensors')));

    // A library user: plain Node (no tsx, no TypeScript) imports the package by name and makes one engine call.
    const script = path.join(app, 'use.mjs');
    writeFileSync(
      script,
      [
        "import { torch, defendRun, importTorchScript } from 'kwshield';",
        'const x = torch.randn([2, 3]);',
        'const y = torch.mul(x, x);',
        'console.log(JSON.stringify({ shape: y.shape, defendRun: typeof defendRun, importTorchScript: typeof importTorchScript }));',
      ].join('\n'),
    );
    const used = sh(process.execPath, [script], app);
    assert.equal(used.code, 0, used.out);
    assert.deepEqual(JSON.parse(used.stdout.trim().split('\n').pop() as string), { shape: [2, 3], defendRun: 'function', importTorchScript: 'function' });
    assert.ok(existsSync(path.join(app, 'node_modules', 'kwshield', 'dist', 'index.d.ts')), 'type declarations are packed');
  });

  it('packs no test file or test helper', () => {
    const listed = sh('npm', ['pack', '--dry-run', '--json'], root);
    assert.equal(listed.code, 0, listed.out);
    const files: string[] = JSON.parse(listed.stdout)[0].files.map((f: { path: string }) => f.path);
    const testOnly = files.filter((f) => /\.test\.|test-helper|synthetic-inputs|(^|\/)test\//.test(f));
    assert.deepEqual(testOnly, []);
  });
});
