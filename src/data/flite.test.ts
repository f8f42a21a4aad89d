import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fliteEngine, fliteProsody, parseFliteVoiceList } from './flite.ts';
import { createRng } from './rng.ts';

const FLITE_MISSING = spawnSync('flite', ['-lv']).status === 0 ? false : 'flite is not installed (scripts/setup-system.sh installs it)';

describe('flite voice list and prosody', () => {
  it('parses `flite -lv`', () => {
    assert.deepEqual(parseFliteVoiceList('Voices available: kal awb_time kal16 awb rms slt \n'), ['awb', 'awb_time', 'kal', 'kal16', 'rms', 'slt']);
    assert.throws(() => parseFliteVoiceList('usage: flite'), /no voice list/);
  });

  it("maps espeak-ng's rate and pitch to flite's duration stretch and f0 shift", () => {
    assert.deepEqual(fliteProsody({ rate: 175, pitch: 50 }), { durationStretch: 1, f0Shift: 1 });
    const slow = fliteProsody({ rate: 120, pitch: 20 });
    assert.ok(Math.abs(slow.durationStretch - 175 / 120) < 1e-12);
    assert.ok(Math.abs(slow.f0Shift - 0.749) < 0.001, `${slow.f0Shift}`);
    assert.ok(Math.abs(fliteProsody({ rate: 220, pitch: 80 }).f0Shift - 1.335) < 0.001);
  });
});

describe('flite as a speech engine', { skip: FLITE_MISSING }, () => {
  let work = '';
  before(async () => {
    work = await mkdtemp(path.join(tmpdir(), 'kwshield-flite-'));
  });
  after(async () => {
    await rm(work, { recursive: true, force: true });
  });

  it('lists its timbres (kal and kal16 one speaker, the time-only voice left out) and speaks at 16 kHz', async () => {
    const engine = fliteEngine();
    assert.match(await engine.version(), /^flite-\d/);
    const catalog = await engine.listVoices({ tmpDir: work, concurrency: 1 });
    assert.deepEqual(catalog.timbres, ['awb', 'kal', 'rms', 'slt']);
    const rng = createRng(1);
    const picked = new Set(Array.from({ length: 20 }, () => catalog.pickVoice(rng, 'kal')));
    assert.deepEqual([...picked].sort(), ['kal', 'kal16']);
    assert.deepEqual(catalog.voiceRecord('kal16'), { variant: 'kal', voice: 'kal16' });
    const tmp = path.join(work, 'u.wav');
    // kal is an 8 kHz voice: upsampled, "yes" at flite's own rate lasts about as long as from the 16 kHz kal16.
    const kal = await engine.speak('kal', { rate: 175, pitch: 50 }, 'yes', tmp);
    const kal16 = await engine.speak('kal16', { rate: 175, pitch: 50 }, 'yes', tmp);
    assert.ok(Math.abs(kal.length - kal16.length) < 1600, `${kal.length} vs ${kal16.length}`);
    const slow = await engine.speak('slt', { rate: 120, pitch: 50 }, 'yes', tmp);
    const fast = await engine.speak('slt', { rate: 220, pitch: 50 }, 'yes', tmp);
    assert.ok(slow.length > fast.length * 1.3, `${slow.length} vs ${fast.length}`);
    const low = await engine.speak('slt', { rate: 175, pitch: 20 }, 'yes', tmp);
    const high = await engine.speak('slt', { rate: 175, pitch: 80 }, 'yes', tmp);
    assert.notDeepEqual(low, high);
    assert.deepEqual(await readdir(work), [], 'the temporary file is deleted');
    await assert.rejects(engine.speak('nobody', { rate: 175, pitch: 50 }, 'yes', tmp), /no voice 'nobody'/);
  });
});
