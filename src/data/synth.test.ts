import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { readWav } from '../audio/wav.ts';
import { espeakVersion, parseVoiceList } from './espeak.ts';
import { readSpeechCommands } from './speech-commands.ts';
import { SPLIT_NAMES } from './splits.ts';
import { readSynthManifest, SYNTH_PRESETS, type SynthManifest, synthesizeSpeechCommands } from './synth.ts';
import { SCD10_WORDS } from './words.ts';

const FLITE_MISSING = spawnSync('flite', ['-lv']).status === 0 ? false : 'flite is not installed (scripts/setup-system.sh installs it)';

/** One hash over a corpus: every file's relative path and bytes, in path order. */
async function corpusHash(dir: string): Promise<string> {
  const hash = createHash('sha256');
  for (const f of await listFiles(dir)) hash.update(`${f}\0`).update(await readFile(path.join(dir, f)));
  return hash.digest('hex');
}

async function listFiles(dir: string, prefix = ''): Promise<string[]> {
  const out: string[] = [];
  for (const entry of (await readdir(dir, { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const rel = prefix ? `${prefix}/${entry.name}` : entry.name;
    if (entry.isDirectory()) out.push(...(await listFiles(path.join(dir, entry.name), rel)));
    else out.push(rel);
  }
  return out;
}

describe('synthetic Speech Commands (tiny, SCD-10)', () => {
  let work = '';
  const first = () => path.join(work, 'a');
  const progress: [number, number][] = [];

  before(async () => {
    work = await mkdtemp(path.join(tmpdir(), 'kwshield-synth-'));
    const started = performance.now();
    await synthesizeSpeechCommands({ out: first(), preset: 'tiny', words: 'scd10', seed: 7, onProgress: (d, n) => progress.push([d, n]) });
    console.log(`tiny scd10 synth: ${((performance.now() - started) / 1000).toFixed(1)} s`);
  });
  after(async () => {
    await rm(work, { recursive: true, force: true });
  });

  it('writes the Speech Commands layout with 1 s 16 kHz 16-bit clips', async () => {
    const entries = (await readdir(first())).sort();
    assert.deepEqual(entries, [...[...SCD10_WORDS].sort(), '_background_noise_', 'synth.json', 'testing_list.txt', 'validation_list.txt'].sort());
    const counts = SYNTH_PRESETS.tiny;
    const perWord = counts.train + counts.validation + counts.test;
    for (const word of SCD10_WORDS) {
      const files = await readdir(path.join(first(), word));
      assert.equal(files.length, perWord, word);
      for (const f of files) assert.match(f, /^[0-9a-f]{8}_nohash_\d+\.wav$/);
    }
    const clip = await readWav(path.join(first(), 'up', (await readdir(path.join(first(), 'up')))[0]));
    assert.equal(clip.sampleRate, 16000);
    assert.equal(clip.bitsPerSample, 16);
    assert.equal(clip.channels, 1);
    assert.equal(clip.samples.length, 16000);
    const noises = await readdir(path.join(first(), '_background_noise_'));
    assert.ok(noises.length >= 4);
    for (const n of noises) assert.ok((await readWav(path.join(first(), '_background_noise_', n))).samples.length >= 3 * 16000);
    const testing = (await readFile(path.join(first(), 'testing_list.txt'), 'utf8')).trim().split('\n');
    assert.equal(testing.length, counts.test * SCD10_WORDS.length);
    assert.deepEqual(testing, [...testing].sort());
    assert.deepEqual(progress.at(-1), [200, 200]);
    assert.deepEqual(progress[0], [0, 200]);
  });

  it('holds out whole voice variants and speakers: no variant or speaker in two splits', async () => {
    const manifest = (await readSynthManifest(first())) as SynthManifest;
    assert.ok(manifest);
    const { train, validation, test } = manifest.splits;
    const trainSet = new Set(train.variants);
    for (const v of [...validation.variants, ...test.variants]) assert.ok(!trainSet.has(v), `variant ${v} in train and a held-out split`);
    assert.ok(!validation.variants.some((v) => test.variants.includes(v)));
    assert.ok(test.variants.length >= 10, `${test.variants.length} test variants`);
    // Merged duplicates (variants that sound the same) are not usable under another name in another split.
    const espeak = manifest.espeak;
    assert.ok(espeak);
    for (const [kept, merged] of Object.entries(espeak.mergedVariants)) {
      for (const m of merged) assert.ok(!espeak.variants.includes(m), `${m} merged into ${kept} but still listed`);
    }

    const dataset = await readSpeechCommands(first(), { words: 'scd10' });
    const splitOfSpeaker = new Map<string, string>();
    const splitOfVariant = new Map<string, string>();
    for (const e of dataset.entries) {
      const info: SynthManifest['speakers'][string] | undefined = manifest.speakers[e.speaker];
      assert.ok(info, `speaker ${e.speaker} not in synth.json`);
      assert.equal(info.split, e.split);
      for (const [map, key] of [
        [splitOfSpeaker, e.speaker],
        [splitOfVariant, info.variant],
      ] as const) {
        const seen = map.get(key);
        assert.ok(seen === undefined || seen === e.split, `${key} in ${seen} and ${e.split}`);
        map.set(key, e.split);
      }
    }
    assert.ok(splitOfVariant.size > 10);
  });

  it('is deterministic: the same seed gives byte-identical files, another seed different ones', async () => {
    const again = path.join(work, 'b');
    const other = path.join(work, 'c');
    // Naming the default engine is the default: the same bytes as leaving it out.
    await synthesizeSpeechCommands({ out: again, preset: 'tiny', words: 'scd10', seed: 7, concurrency: 4, engines: ['espeak-ng'] });
    await synthesizeSpeechCommands({ out: other, preset: 'tiny', words: 'scd10', seed: 8 });
    const files = await listFiles(first());
    assert.deepEqual(await listFiles(again), files);
    for (const f of files) assert.deepEqual(await readFile(path.join(again, f)), await readFile(path.join(first(), f)), f);
    assert.notDeepEqual(await readFile(path.join(other, 'synth.json')), await readFile(path.join(first(), 'synth.json')));
    assert.notDeepEqual(await readFile(path.join(other, 'testing_list.txt')), await readFile(path.join(first(), 'testing_list.txt')));
    assert.notDeepEqual(
      await readFile(path.join(other, '_background_noise_/white_noise.wav')),
      await readFile(path.join(first(), '_background_noise_/white_noise.wav')),
    );
  });

  it('refuses to overwrite a non-empty folder unless forced, and leaves no partial folder behind', async () => {
    const target = path.join(work, 'occupied');
    await mkdir(target);
    await mkdir(path.join(work, 'occupied.partial-2147483646')); // left by a killed run
    await writeFile(path.join(target, 'keep.txt'), 'mine');
    await assert.rejects(synthesizeSpeechCommands({ out: target, preset: 'tiny', seed: 1 }), /not empty .*force/);
    assert.deepEqual(await readdir(target), ['keep.txt']);
    await synthesizeSpeechCommands({
      out: target,
      preset: 'tiny',
      seed: 1,
      force: true,
      clipsPerWord: { train: 1, validation: 1, test: 1 },
      words: ['yes', 'no'],
    });
    assert.ok(!(await readdir(target)).includes('keep.txt'));
    assert.equal((await readdir(path.join(target, 'yes'))).length, 3);
    assert.ok(!(await readdir(work)).some((n) => n.includes('.partial-') || n.includes('.old-')));
  });

  it('keeps the espeak-ng-only corpus as it was before engines existed (caches keyed by its files stay valid)', async () => {
    const manifest = JSON.parse(await readFile(path.join(first(), 'synth.json'), 'utf8'));
    const legacyKeys = [
      'generator',
      'formatVersion',
      'seed',
      'preset',
      'words',
      'extraWords',
      'options',
      'espeak',
      'backgroundNoise',
      'splits',
      'truncated',
      'speakers',
    ];
    assert.deepEqual(Object.keys(manifest), legacyKeys);
    assert.deepEqual(Object.keys(manifest.espeak), ['version', 'accents', 'variants', 'mergedVariants']);
    for (const split of Object.values(manifest.splits)) assert.deepEqual(Object.keys(split as object), ['variants', 'speakers', 'clips']);
    for (const speaker of Object.values(manifest.speakers)) assert.deepEqual(Object.keys(speaker as object), ['split', 'accent', 'variant', 'rate', 'pitch']);
    // The whole corpus, hashed with the code before the engine option (commit 0f9a84a) and espeak-ng 1.51
    // (Debian 12). A deliberate change of the output changes this hash: say so, since it invalidates caches.
    const version = await espeakVersion();
    if (version === 'eSpeak NG text-to-speech: 1.51')
      assert.equal(await corpusHash(first()), '31a44ac4ba912fc8f887bec2c5c3a12ef556048858c666d233fbcfc85d3bd62d');
    else console.log(`espeak-ng is '${version}', not 1.51: the pinned corpus hash is not compared`);
  });

  it('refuses unknown engines and a test engine it cannot hold out, before any work', async () => {
    const never = path.join(work, 'never');
    await assert.rejects(
      synthesizeSpeechCommands({ out: never, engines: ['espeak-ng', 'festival' as never] }),
      /unknown speech engine 'festival' \(known: espeak-ng, flite\)/,
    );
    await assert.rejects(synthesizeSpeechCommands({ out: never, testEngine: 'flite' }), /test engine 'flite' is not one of the engines \(espeak-ng\)/);
    await assert.rejects(synthesizeSpeechCommands({ out: never, engines: ['flite'], testEngine: 'flite' }), /needs another engine for train and validation/);
    await assert.rejects(synthesizeSpeechCommands({ out: never, engines: ['flite', 'flite'] }), /listed twice/);
    assert.ok(!(await readdir(work)).includes('never'));
  });

  it('says how to install flite when an engine asked for is missing', async () => {
    await assert.rejects(
      synthesizeSpeechCommands({ out: path.join(work, 'never'), engines: ['espeak-ng', 'flite'], flite: path.join(work, 'no-such-flite') }),
      (err: Error) => /no-such-flite not found/.test(err.message) && /apt-get install -y flite/.test(err.message),
    );
    assert.ok(!(await readdir(work)).includes('never'));
  });

  it('says how to install espeak-ng when it is missing', async () => {
    await assert.rejects(
      synthesizeSpeechCommands({ out: path.join(work, 'never'), espeak: path.join(work, 'no-such-espeak-ng') }),
      /apt-get install -y espeak-ng/,
    );
    assert.ok(!(await readdir(work)).includes('never'));
  });
});

describe('parseVoiceList', () => {
  it('finds the file column even when names overflow it or files contain spaces', () => {
    const text = [
      'Pty Language       Age/Gender VoiceName          File                 Other Languages',
      ' 2  en-gb           --/M      English_(Great_Britain) gmw/en               (en 2)',
      ' 5  en-gb-x-rp      --/M      English_(Received_Pronunciation) gmw/en-GB-x-rp       (en-gb 4)(en 5)',
      ' 5  variant         --/M      Mr_Serious         !v/Mr serious        ',
      ' 5  variant         35/M      Denis              !v/Denis             ',
    ].join('\n');
    assert.deepEqual(parseVoiceList(text), [
      { language: 'en-gb', name: 'English_(Great_Britain)', file: 'gmw/en' },
      { language: 'en-gb-x-rp', name: 'English_(Received_Pronunciation)', file: 'gmw/en-GB-x-rp' },
      { language: 'variant', name: 'Mr_Serious', file: '!v/Mr serious' },
      { language: 'variant', name: 'Denis', file: '!v/Denis' },
    ]);
  });
});

describe('synthetic Speech Commands spoken by two engines, flite held out for test', { skip: FLITE_MISSING }, () => {
  let work = '';
  const out = () => path.join(work, 'held-out');
  const words = ['yes', 'no', 'up'];

  before(async () => {
    work = await mkdtemp(path.join(tmpdir(), 'kwshield-synth-engines-'));
    const started = performance.now();
    await synthesizeSpeechCommands({
      out: out(),
      words,
      seed: 3,
      clipsPerWord: { train: 6, validation: 4, test: 8 },
      engines: ['espeak-ng', 'flite'],
      testEngine: 'flite',
    });
    console.log(`two-engine synth: ${((performance.now() - started) / 1000).toFixed(1)} s`);
  });
  after(async () => {
    await rm(work, { recursive: true, force: true });
  });

  it('puts no voice and no engine in two splits; the test split is flite alone, train and validation espeak-ng', async () => {
    const manifest = (await readSynthManifest(out())) as SynthManifest;
    assert.deepEqual(manifest.engines, { names: ['espeak-ng', 'flite'], testEngine: 'flite' });
    assert.deepEqual(manifest.splits.train.engines, ['espeak-ng']);
    assert.deepEqual(manifest.splits.validation.engines, ['espeak-ng']);
    assert.deepEqual(manifest.splits.test.engines, ['flite']);
    // Every general-purpose flite voice is a test voice (kal and kal16 are one speaker, one timbre).
    assert.ok(manifest.flite);
    assert.deepEqual(manifest.flite.timbres.kal, ['kal', 'kal16']);
    assert.deepEqual(
      manifest.splits.test.variants,
      Object.keys(manifest.flite.timbres).map((t) => `flite:${t}`),
    );
    assert.ok(!manifest.flite.voices.includes('awb_time'), 'the limited-domain voice can say only times');
    const listed = new Map<string, string>();
    for (const split of SPLIT_NAMES) {
      for (const v of manifest.splits[split].variants) {
        assert.ok(!listed.has(v), `${v} listed in ${listed.get(v)} and ${split}`);
        listed.set(v, split);
      }
    }

    // What the files say, speaker by speaker: each engine, timbre and voice is heard in one split only.
    const dataset = await readSpeechCommands(out(), { words });
    assert.equal(dataset.entries.length, words.length * (6 + 4 + 8));
    const splitOf = new Map<string, string>();
    const enginesOf: Record<string, Set<string>> = { train: new Set(), validation: new Set(), test: new Set() };
    for (const e of dataset.entries) {
      const info = manifest.speakers[e.speaker];
      assert.ok(info?.engine, `speaker ${e.speaker} has no engine in synth.json`);
      assert.equal(info.split, e.split);
      enginesOf[e.split].add(info.engine);
      const voice = info.engine === 'flite' ? info.voice : `${info.accent}+${info.variant}`;
      for (const key of [`${info.engine}:${info.variant}`, `${info.engine}:${voice}`, e.speaker]) {
        const seen = splitOf.get(key);
        assert.ok(seen === undefined || seen === e.split, `${key} in ${seen} and ${e.split}`);
        splitOf.set(key, e.split);
      }
      // An engine is held out or not: heard in test, or in train and validation, never both.
      const side = e.split === 'test' ? 'test' : 'train and validation';
      const engineSide = splitOf.get(`engine ${info.engine}`);
      assert.ok(engineSide === undefined || engineSide === side, `${info.engine} in ${engineSide} and ${side}`);
      splitOf.set(`engine ${info.engine}`, side);
      assert.equal(listed.get(`${info.engine}:${info.variant}`), e.split, `${info.engine}:${info.variant} heard outside its listed split`);
    }
    assert.deepEqual([...enginesOf.train], ['espeak-ng']);
    assert.deepEqual([...enginesOf.validation], ['espeak-ng']);
    assert.deepEqual([...enginesOf.test], ['flite']);
    // 8 test speakers over flite's 4 timbres: each timbre speaks.
    const testTimbres = new Set(dataset.entries.filter((e) => e.split === 'test').map((e) => manifest.speakers[e.speaker].variant));
    assert.equal(testTimbres.size, Object.keys(manifest.flite.timbres).length);
  });

  it('writes 1 s 16 kHz clips from flite as from espeak-ng', async () => {
    const testing = (await readFile(path.join(out(), 'testing_list.txt'), 'utf8')).trim().split('\n');
    assert.equal(testing.length, words.length * 8);
    const clip = await readWav(path.join(out(), testing[0]));
    assert.equal(clip.sampleRate, 16000);
    assert.equal(clip.samples.length, 16000);
  });
});
