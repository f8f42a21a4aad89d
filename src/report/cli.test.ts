import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runReportCommand } from '../../test/helpers/report-command.ts';
import { UsageError } from '../cli/output.ts';

describe('kwshield report', () => {
  let root: string;
  let attackRun: string;
  before(() => {
    root = mkdtempSync(path.join(os.tmpdir(), 'kwshield-report-cli-'));
    attackRun = path.join(root, 'runs', 'resnet-badnets-s0');
    mkdirSync(attackRun, { recursive: true });
  });
  after(() => rmSync(root, { recursive: true, force: true }));

  it('is a usage error (exit 2) when --out is not an HTML file or the input is missing', async () => {
    await assert.rejects(runReportCommand([attackRun, '--out', path.join(root, 'r.txt')]), UsageError);
    await assert.rejects(
      runReportCommand(['--out', path.join(root, 'r.html')]),
      (e: Error & { exitCode?: number }) => e.exitCode === 1 && /missing required argument/.test(e.message),
    );
  });
  it('fails (exit 1) naming an input that does not exist, and the fix', async () => {
    const missing = path.join(root, 'no-such-results');
    await assert.rejects(
      runReportCommand([missing, '--out', path.join(root, 'r.html')]),
      (e: Error) => !(e instanceof UsageError) && e.message.includes(missing) && /give a results folder/.test(e.message),
    );
  });
});
