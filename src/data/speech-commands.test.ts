import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { useTempDir } from '../../test/helpers/temp-dir.ts';
import { encodeWav } from '../audio/wav.ts';
import { datasetInfo, loadClip, readSpeechCommands } from './speech-commands.ts';
import { SCD10_WORDS } from './words.ts';

/**
 * A miniature Speech Commands: every SCD-10 word plus 'cat', four speakers each; speaker s0 is in validation,
 * s1 in testing, s2/s3 in training. The lists also name files of 'bed', a word whose folder is absent (as in a
 * copy that kept only some words).
 */
async function makeFixture(root: string): Promise<void> {
  const speakers = ['aaaa0000', 'bbbb1111', 'cccc2222', 'dddd3333'];
  const validation: string[] = [];
  const testing: string[] = [];
  for (const word of [...SCD10_WORDS, 'cat']) {
    await mkdir(path.join(root, word), { recursive: true });
    for (const [s, speaker] of speakers.entries()) {
      const file = `${word}/${speaker}_nohash_0.wav`;
      const samples = new Float32Array(s === 3 ? 12000 : 16000).fill(0.25); // speaker 3 speaks short clips
      await writeFile(path.join(root, file), encodeWav(samples, 16000));
      if (s === 0) validation.push(file);
      if (s === 1) testing.push(file);
    }
  }
  validation.push('bed/aaaa0000_nohash_0.wav');
  await writeFile(path.join(root, 'validation_list.txt'), `${validation.join('\n')}\n`);
  await writeFile(path.join(root, 'testing_list.txt'), `${testing.join('\r\n')}\r\n`); // CRLF from a Windows copy
  await mkdir(path.join(root, '_background_noise_'));
  await writeFile(path.join(root, '_background_noise_', 'white_noise.wav'), encodeWav(new Float32Array(32000), 16000));
  await writeFile(path.join(root, '_background_noise_', 'README.md'), 'noise');
}

describe('readSpeechCommands', () => {
  let work = '';
  let root = '';
  before(async () => {
    work = await mkdtemp(path.join(tmpdir(), 'kwshield-scd-'));
    root = path.join(work, 'speech_commands');
    await makeFixture(root);
  });
  after(async () => {
    await rm(work, { recursive: true, force: true });
  });

  it('reads the official split: listed files are validation/test, the rest train; labels follow SCD-10', async () => {
    const ds = await readSpeechCommands(root, { words: 'scd10' });
    assert.deepEqual(ds.words, [...SCD10_WORDS]);
    assert.equal(ds.entries.length, 40);
    const count = (split: string) => ds.entries.filter((e) => e.split === split).length;
    assert.deepEqual([count('train'), count('validation'), count('test')], [20, 10, 10]);
    const up = ds.entries.find((e) => e.file === 'up/bbbb1111_nohash_0.wav');
    assert.deepEqual(up, {
      path: path.join(root, 'up', 'bbbb1111_nohash_0.wav'),
      file: 'up/bbbb1111_nohash_0.wav',
      word: 'up',
      label: 2,
      speaker: 'bbbb1111',
      split: 'test',
    });
    assert.deepEqual(ds.backgroundNoise, [path.join(root, '_background_noise_', 'white_noise.wav')]);
    assert.equal(ds.splitMethod, 'official');
    // No speaker crosses splits in the official split.
    const splitOf = new Map<string, string>();
    for (const e of ds.entries) {
      assert.ok((splitOf.get(e.speaker) ?? e.split) === e.split);
      splitOf.set(e.speaker, e.split);
    }
  });

  it("word selection: 'all' takes every folder (sorted), a list sets the label order", async () => {
    const all = await readSpeechCommands(root, { words: 'all' });
    assert.deepEqual(all.words, [...SCD10_WORDS, 'cat'].sort());
    assert.equal(all.entries.length, 44);
    const custom = await readSpeechCommands(root, { words: ['stop', 'go'] });
    assert.deepEqual(
      custom.entries.map((e) => [e.word, e.label]).filter((_, i) => i % 4 === 0),
      [
        ['stop', 0],
        ['go', 1],
      ],
    );
  });

  it('a random split only on request, seeded, and it mixes speakers across splits', async () => {
    const a = await readSpeechCommands(root, { words: 'scd10', split: 'random', seed: 1 });
    const b = await readSpeechCommands(root, { words: 'scd10', split: 'random', seed: 1 });
    const c = await readSpeechCommands(root, { words: 'scd10', split: 'random', seed: 2 });
    assert.deepEqual(
      a.entries.map((e) => e.split),
      b.entries.map((e) => e.split),
    );
    assert.notDeepEqual(
      a.entries.map((e) => e.split),
      c.entries.map((e) => e.split),
    );
    assert.ok(a.entries.filter((e) => e.split === 'train').length > 20);
  });

  it('clear errors: missing folder, missing word folders, listed files that do not exist', async () => {
    await assert.rejects(readSpeechCommands(path.join(work, 'nowhere')), /Speech Commands folder not found: .*nowhere/);
    await assert.rejects(readSpeechCommands(root, { words: 'scd30' }), /missing word folders: bed, bird, dog, eight/);
    const broken = path.join(work, 'broken');
    await makeFixture(broken);
    await rm(path.join(broken, 'go', 'aaaa0000_nohash_0.wav'));
    await assert.rejects(readSpeechCommands(broken), /validation_list\.txt lists 1 file\(s\) that do not exist: line 10: go\/aaaa0000_nohash_0\.wav/);
    await rm(path.join(broken, 'testing_list.txt'));
    await assert.rejects(readSpeechCommands(broken, { words: ['yes'] }), /testing_list\.txt not found.*random/);
    assert.equal((await readSpeechCommands(broken, { words: ['yes'], split: 'random' })).entries.length, 4);
  });

  it('loadClip pads short clips at the end (or drops them), trims long ones, checks the rate', async () => {
    const ds = await readSpeechCommands(root, { words: ['yes'] });
    const short = ds.entries.find((e) => e.speaker === 'dddd3333');
    assert.ok(short);
    const padded = await loadClip(short);
    assert.equal(padded?.length, 16000);
    assert.equal(padded?.[11999], 0.25);
    assert.equal(padded?.[12000], 0);
    assert.equal(await loadClip(short, { short: 'drop' }), undefined);
    assert.equal((await loadClip(short, { length: 8000 }))?.length, 8000);
    const odd = path.join(work, 'rate.wav');
    await writeFile(odd, encodeWav(new Float32Array(22050).fill(0.1), 22050));
    await assert.rejects(loadClip(odd), /rate\.wav: sample rate 22050 Hz, expected 16000/);
    const resampled = await loadClip(odd, { resample: true });
    assert.equal(resampled?.length, 16000);
    assert.ok(Math.abs((resampled?.[8000] ?? 0) - 0.1) < 1e-3);
  });

  it('detects the version from the word folders', async () => {
    assert.equal((await readSpeechCommands(root)).version, 'unknown'); // neither all 30 words nor the v0.02 ones
    const v2 = path.join(work, 'v2');
    await makeFixture(v2);
    await mkdir(path.join(v2, 'backward'));
    assert.equal((await readSpeechCommands(v2)).version, 'v0.02');
  });
});

describe('datasetInfo', () => {
  const work = useTempDir('kwshield-info-');

  it('counts per split and word, sample rates and durations', async () => {
    const root = path.join(work(), 'ok');
    await makeFixture(root);
    const info = await datasetInfo(root);
    assert.deepEqual(info.words, [...SCD10_WORDS, 'cat'].sort());
    assert.equal(info.clips, 44);
    assert.equal(info.splits.train.clips, 22);
    assert.equal(info.splits.validation.perWord.up, 1);
    assert.equal(info.splits.test.speakers, 1);
    assert.deepEqual(info.sampleRates, { 16000: 44 });
    assert.equal(info.duration.shorterThanOneSecond, 11);
    assert.equal(info.duration.min, 0.75);
    assert.equal(info.duration.max, 1);
    assert.deepEqual(info.backgroundNoise, [{ file: 'white_noise.wav', seconds: 2 }]);
    assert.equal(info.speakersInSeveralSplits, 0);
    assert.deepEqual(info.problems, []);
  });

  it('lists problems instead of failing: bad files, wrong rates, stray files, missing list entries', async () => {
    const root = path.join(work(), 'bad');
    await makeFixture(root);
    await writeFile(path.join(root, 'yes', 'cccc2222_nohash_0.wav'), encodeWav(new Float32Array(100), 16000).subarray(0, 60));
    await writeFile(path.join(root, 'no', 'cccc2222_nohash_0.wav'), encodeWav(new Float32Array(8000), 8000));
    await writeFile(path.join(root, 'up', 'notes.txt'), 'stray');
    await rm(path.join(root, 'go', 'aaaa0000_nohash_0.wav'));
    const info = await datasetInfo(root);
    assert.equal(info.problemCount, 4, info.problems.join('\n'));
    const text = info.problems.join('\n');
    assert.match(text, /up\/notes\.txt/);
    assert.match(text, /yes\/cccc2222_nohash_0\.wav: truncated/);
    assert.match(text, /no\/cccc2222_nohash_0\.wav: sample rate 8000/);
    assert.match(text, /go\/aaaa0000_nohash_0\.wav/);
    assert.deepEqual(info.sampleRates, { 8000: 1, 16000: 41 });
  });
});
