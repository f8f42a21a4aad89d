// Schema-valid but made-up report inputs for tests and previews: a results folder (attack and defense
// jobs over models, attacks, defenses, seeds and clean ratios, plus a failed job and files to skip), an
// attack run folder with examples, a defense run folder with a training curve, and an analysis folder
// (before and after). The numbers are drawn from a seeded generator; tests derive what they expect from
// the files written here, never from the report.
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { encodeWav } from '../../src/audio/wav.ts';
import { createRng } from '../../src/data/rng.ts';

export interface SyntheticOptions {
  models?: string[];
  attacks?: string[];
  seeds?: number[];
  /** a word that tries to become markup, used as an example word, an embedding class and an option value */
  hostileWord?: string;
  /** clean ratios of the extra gnft (default) jobs on the first model x attack */
  ratios?: number[];
}

export interface SyntheticInputs {
  results: string;
  attackRun: string;
  defenseRun: string;
  analysis: string;
  /** result files deliberately broken or of another kind */
  corruptFiles: string[];
  models: string[];
  attacks: string[];
  seeds: number[];
  /** defense settings of the main table as (defense, recipe) */
  settings: [string, string][];
  hostileWord: string;
}

type Metrics = { ca: number; asr: number; ra: number };

const hex16 = (n: number) => n.toString(16).padStart(16, '0');

const machine = { hostname: 'synthetic-host', cpus: 2, cpuModel: 'Test CPU', memGb: 8, node: 'v20.0.0', platform: 'linux-x64' };

function writeJson(file: string, value: unknown): void {
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, `${JSON.stringify(value, null, 2)}\n`);
}

/** A run folder's model.json: an mfcc-16k model of the ten SCD-10 words, with the provenance a run records. */
function writeModelJson(run: string, model: string, provenance?: Record<string, unknown>): void {
  writeJson(path.join(run, 'model.json'), {
    format: 'kwshield-model',
    version: 1,
    model,
    frontEnd: 'mfcc-16k',
    classes: ['yes', 'no', 'up', 'down', 'left', 'right', 'on', 'off', 'stop', 'go'],
    ...(provenance ? { provenance } : {}),
  });
}

/** Writes every input under `root` (which must exist) and says where. */
export async function writeSyntheticInputs(root: string, o: SyntheticOptions = {}): Promise<SyntheticInputs> {
  const models = o.models ?? ['resnet', 'lstm'];
  const attacks = o.attacks ?? ['badnets', 'jingleback'];
  const seeds = o.seeds ?? [0, 1];
  const ratios = o.ratios ?? [0.02, 0.1, 0.2];
  const hostileWord = o.hostileWord ?? '<script>alert(1)</script>';
  const settings: [string, string][] = [
    ['gnft', 'default'],
    ['ft', 'default'],
    ['gnft', 'paper'],
    ['fp', 'default'],
  ];
  const rng = createRng(12345);
  const around = (x: number, spread: number) => Math.min(1, Math.max(0, x + (rng.next() - 0.5) * 2 * spread));
  const metrics = (ca: number, asr: number): Metrics => ({ ca: around(ca, 0.02), asr: around(asr, 0.03), ra: around(1 - asr, 0.03) });
  const results = path.join(root, 'results');
  const data = path.join(root, 'data', 'small-scd10');
  const attackRun = path.join(root, 'runs', `${models[0]}-${attacks[0]}-s0`);
  const defenseRun = path.join(root, 'defended', `${models[0]}-${attacks[0]}-gnft`);
  const analysis = path.join(root, 'analysis', `${models[0]}-${attacks[0]}`);
  let id = 1;
  const base = { format: 'kwshield-result', version: 1, seconds: 12.5, date: '2026-01-02T03:04:05.000Z', machine, versions: { kwshield: '0.1.0' } };
  const job = (extra: Record<string, unknown>) => ({
    data,
    dataName: 'small-scd10',
    words: 'scd10',
    frontEnd: 'mfcc-16k',
    poisonRatio: 0.1,
    target: 'up',
    epochs: 12,
    ...extra,
  });
  const defenseAsr: Record<string, number> = { 'gnft|default': 0.05, 'gnft|paper': 0.08, 'ft|default': 0.7, 'fp|default': 0.45 };
  const defenseCa: Record<string, number> = { 'gnft|default': 0.92, 'gnft|paper': 0.9, 'ft|default': 0.94, 'fp|default': 0.6 };
  for (const model of models) {
    for (const attack of attacks) {
      for (const seed of seeds) {
        const backdoored = metrics(0.95, 0.98);
        const attackId = hex16(id++);
        const attackFolder = model === models[0] && attack === attacks[0] && seed === 0 ? attackRun : undefined;
        writeJson(path.join(results, `${attackId}.json`), {
          ...base,
          id: attackId,
          status: 'ok',
          job: job({ kind: 'attack', model, attack, attackSeed: seed, seed }),
          metrics: backdoored,
          clean: metrics(0.96, 0.01),
          runs: attackFolder ? { model: attackFolder, attack: attackFolder } : {},
        });
        for (const [defense, recipe] of settings) {
          const key = `${defense}|${recipe}`;
          const after = metrics(defenseCa[key], defenseAsr[key]);
          const defenseId = hex16(id++);
          const first = model === models[0] && attack === attacks[0] && seed === 0 && key === 'gnft|default';
          writeJson(path.join(results, `${defenseId}.json`), {
            ...base,
            id: defenseId,
            status: 'ok',
            job: job({ kind: 'defense', model, attack, attackSeed: seed, defense, recipe, cleanRatio: 0.05, seed }),
            metrics: after,
            before: backdoored,
            der: around(0.8, 0.1),
            runs: first ? { model: defenseRun, attack: attackRun, analysis } : {},
          });
        }
        if (model === models[0] && attack === attacks[0]) {
          for (const cleanRatio of ratios) {
            const defenseId = hex16(id++);
            writeJson(path.join(results, 'ratios', `${defenseId}.json`), {
              ...base,
              id: defenseId,
              status: 'ok',
              job: job({ kind: 'defense', model, attack, attackSeed: seed, defense: 'gnft', recipe: 'default', cleanRatio, seed }),
              metrics: metrics(0.8 + cleanRatio, 0.2 - cleanRatio / 2),
              before: backdoored,
              der: around(0.8, 0.1),
              runs: {},
            });
          }
        }
      }
    }
  }
  const failedId = hex16(id++);
  writeJson(path.join(results, `${failedId}.json`), {
    ...base,
    id: failedId,
    status: 'failed',
    error: `out of memory near ${hostileWord}`,
    job: job({ kind: 'attack', model: models[0], attack: attacks[0], attackSeed: 99, seed: 99 }),
    runs: {},
  });
  const corruptFiles = [path.join(results, 'truncated.json'), path.join(results, 'other-tool.json'), path.join(results, 'bad-metrics.json')];
  writeFileSync(corruptFiles[0], '{"format": "kwshield-result", "version": 1, "id": "00');
  writeJson(corruptFiles[1], { format: 'something-else', rows: [] });
  writeJson(corruptFiles[2], {
    ...base,
    id: hex16(id++),
    status: 'ok',
    job: job({ kind: 'attack', model: 'resnet', attack: 'badnets', seed: 0 }),
    metrics: { ca: 'high' },
    runs: {},
  });
  writeFileSync(path.join(results, 'index.sqlite'), 'not json, not read');

  await writeAttackRun(attackRun, { data, model: models[0], attack: attacks[0], hostileWord });
  writeDefenseRun(defenseRun, { parent: attackRun, model: models[0], attack: attacks[0] });
  writeAnalysisFolder(analysis, { model: attackRun, defended: defenseRun, attack: attacks[0], modelFamily: models[0], hostileWord, seed: 7 });
  return { results, attackRun, defenseRun, analysis, corruptFiles, models, attacks, seeds, settings, hostileWord };
}

/** An attack run folder as src/experiments/attack-run.ts writes it, with two example pairs and their features. */
export async function writeAttackRun(run: string, o: { data: string; model: string; attack: string; hostileWord: string }): Promise<void> {
  mkdirSync(path.join(run, 'examples'), { recursive: true });
  const sampleRate = 16000;
  const samples = 4000;
  const words = ['no', o.hostileWord.replace(/\//g, '')];
  const frames = 25;
  const bins = 8;
  const clean = new Float32Array(words.length * frames * bins);
  const triggered = new Float32Array(words.length * frames * bins);
  for (let k = 0; k < words.length; k++) {
    const wave = Float32Array.from({ length: samples }, (_, i) => 0.3 * Math.sin((2 * Math.PI * (300 + 200 * k) * i) / sampleRate));
    const chirp = Float32Array.from(wave, (v, i) => v + 0.2 * Math.sin((2 * Math.PI * (1000 + i / 2) * i) / sampleRate));
    const name = `${String(k).padStart(2, '0')}-${words[k]}`;
    writeFileSync(path.join(run, 'examples', `${name}-clean.wav`), encodeWav(wave, sampleRate));
    writeFileSync(path.join(run, 'examples', `${name}-triggered.wav`), encodeWav(chirp, sampleRate, { bitsPerSample: 32, float: true }));
    for (let t = 0; t < frames; t++) {
      for (let b = 0; b < bins; b++) {
        const v = Math.sin(t / 3 + b + k);
        clean[(k * frames + t) * bins + b] = v;
        triggered[(k * frames + t) * bins + b] = t > frames - 5 && b > bins - 3 ? -20 : v;
      }
    }
  }
  const { saveSafetensors, tensor } = await import('../../src/torch/index.ts');
  const a = tensor(clean, [words.length, frames, bins]);
  const b = tensor(triggered, [words.length, frames, bins]);
  try {
    saveSafetensors(
      path.join(run, 'examples', 'features.safetensors'),
      new Map([
        ['clean', a],
        ['triggered', b],
      ]),
      { frontEnd: 'mfcc-16k' },
    );
  } finally {
    a.dispose();
    b.dispose();
  }
  writeModelJson(run, o.model, { data: o.data, recipe: 'fast', epochs: 12, seed: 0, attack: o.attack });
  writeJson(path.join(run, 'metrics.json'), {
    kind: 'attack',
    out: run,
    attack: o.attack,
    model: o.model,
    frontEnd: 'mfcc-16k',
    data: o.data,
    seed: 0,
    target: 'up',
    poisonRatio: 0.1,
    labelMode: 'dirty',
    poisoned: 30,
    trainClips: 300,
    backdoored: { ca: 0.95, asr: 0.98, ra: 0.02 },
    clean: { ca: 0.96, asr: 0.01, ra: 0.95, run: '/nowhere/clean' },
    epochs: 12,
    seconds: { total: 100, cleanModel: 40, prepare: 1, training: 55, evaluation: 4 },
    examples: [],
    options: { size: 5 },
    created: '2026-01-02T03:04:05.000Z',
  });
  writeJson(path.join(run, 'trigger.json'), { format: 'kwshield-trigger', attack: o.attack, version: 1, options: { size: 5 }, seed: 0, frontEnd: 'mfcc-16k' });
  writeJson(path.join(run, 'poison-plan.json'), {
    format: 'kwshield-poison-plan',
    attack: o.attack,
    labelMode: 'dirty',
    target: 'up',
    targetLabel: 2,
    indices: [1, 2, 3],
  });
}

/** A defense run folder as src/experiments/defend-run.ts writes it, with per-epoch records. */
export function writeDefenseRun(run: string, o: { parent: string; model: string; attack: string }): void {
  const epochs = Array.from({ length: 5 }, (_, epoch) => ({
    phase: 'gnft',
    epoch,
    epochs: 5,
    lr: 0.01,
    loss: 1.5 / (epoch + 1),
    holdoutAccuracy: 0.6 + 0.07 * epoch,
    holdoutLoss: 1 / (epoch + 1),
    seconds: 1,
  }));
  writeModelJson(run, o.model);
  writeJson(path.join(run, 'metrics.json'), {
    kind: 'defense',
    out: run,
    defense: 'gnft',
    recipe: 'default',
    options: { epochs: 5 },
    model: o.model,
    parent: o.parent,
    frontEnd: 'mfcc-16k',
    attack: o.attack,
    cleanRatio: 0.05,
    cleanClips: 150,
    seed: 0,
    report: {
      defense: 'gnft',
      options: {},
      cleanClips: 150,
      fitClips: 120,
      holdoutClips: 30,
      holdoutBefore: 0.55,
      holdoutAfter: 0.88,
      epochs,
      details: {},
      seconds: 5,
    },
    before: { ca: 0.95, asr: 0.98, ra: 0.02 },
    after: { ca: 0.93, asr: 0.04, ra: 0.9 },
    der: 0.96,
    seconds: { total: 6, defense: 5 },
    created: '2026-01-02T03:04:05.000Z',
  });
}

/** An analysis folder from `kwshield analyze`: analysis.json (before) and analysis-after.json. */
export function writeAnalysisFolder(
  dir: string,
  o: { model: string; defended: string; attack: string; modelFamily: string; hostileWord: string; seed: number },
): void {
  const rng = createRng(o.seed);
  const zones = ['clean', 'backdoor', 'hybrid', 'redundant'] as const;
  const zoneOf = (clc: number, blc: number) => (clc > 0 ? (blc > 0 ? 'hybrid' : 'clean') : blc > 0 ? 'backdoor' : 'redundant');
  const one = (label: string, model: string, backdoorShare: number) => {
    const neurons = Array.from({ length: 32 }, (_, index) => {
      const clc = rng.next() - 0.4;
      const blc = rng.next() - 1 + backdoorShare;
      return { layer: index < 16 ? 'layer3.1.conv1' : 'layer3.1.conv2', index: index % 16, clc, blc, zone: zoneOf(clc, blc) };
    });
    const counts = Object.fromEntries(zones.map((z) => [z, neurons.filter((n) => n.zone === z).length]));
    const classes = ['yes', 'no', 'up', o.hostileWord];
    return {
      format: 'kwshield-analysis',
      version: 1,
      model,
      attack: o.attack,
      label,
      modelFamily: o.modelFamily,
      classes,
      gradients: {
        layer: 'layer3.1.conv2',
        norm: 'l1',
        batches: 4,
        neurons: neurons
          .slice(16)
          .map((n) => ({ index: n.index, mean: 0.1 + rng.next() * (n.zone === 'clean' ? 0.2 : 0.6), variance: 0.001 + 0.01 * rng.next(), zone: n.zone })),
      },
      zones: { layers: ['layer3.1.conv1', 'layer3.1.conv2'], neurons, counts },
      embedding: {
        method: 'pca',
        seed: o.seed,
        explained: [0.4, 0.2],
        points: Array.from({ length: 60 }, (_, i) => ({
          x: (i % 4) * 3 + rng.next(),
          y: Math.floor(i / 20) + rng.next(),
          label: classes[i % 4],
          triggered: i % 5 === 0,
        })),
      },
    };
  };
  writeJson(path.join(dir, 'analysis.json'), one('before', o.model, 0.6));
  writeJson(path.join(dir, 'analysis-after.json'), one('after', o.defended, 0.2));
}
