// Runs the installed-style `kwshield` command (bin/kwshield) in a child process, as a user would.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const kwshieldBin = path.join(repoRoot, 'bin', 'kwshield');

export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
  /** the JSON object on the last line of stdout (--json) */
  json(): ReturnType<typeof JSON.parse>;
}

/** A runner of `kwshield ARGS` with this environment, from the repository root. */
export function cliRunner(env: NodeJS.ProcessEnv): (args: string[]) => CliRun {
  return (args) => {
    const r = spawnSync(process.execPath, [kwshieldBin, ...args], { encoding: 'utf8', env, cwd: repoRoot });
    return { code: r.status, stdout: r.stdout, stderr: r.stderr, json: () => JSON.parse(r.stdout.trim().split('\n').pop() as string) };
  };
}
