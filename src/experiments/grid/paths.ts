// Where a grid job's files go in the work folder (the results folder only holds <id>.json):
//   WORK/data/<dataName>-<synth id>/          generated data
//   WORK/runs/clean/<model>-<frontEnd>-<key>/ the clean model an attack job compares with (shared by the
//                                            attack jobs of the same data, model, front-end, seed, epochs)
//   WORK/runs/attack/<...>-<id>/              attack runs (backdoored model, trigger, poison plan), and the
//                                            imports of TorchScript models (attack 'own')
//   WORK/runs/defense/<...>-<id>/             defended models
//   WORK/locks/<id>.lock, clean-<key>.lock    who is running what (experiments/lock.ts)
//   WORK/logs/<id>.log                        each job's own output (progress, stages, errors)
import path from 'node:path';
import { type AttackConfig, type DefenseConfig, jobId, type Manifest, type ManifestJob } from './manifest.ts';

const safe = (s: string) => s.replace(/[^A-Za-z0-9._-]+/g, '_');

/** The identity of the clean model an attack job needs. */
export function cleanKey(c: AttackConfig | DefenseConfig): string {
  return jobId({
    kind: 'clean',
    dataName: c.dataName,
    words: c.words,
    synth: c.synth,
    model: c.model,
    frontEnd: c.frontEnd,
    seed: c.attackSeed,
    epochs: c.epochs,
    ...(c.batchSize ? { batchSize: c.batchSize } : {}),
    trainRecipe: c.trainRecipe,
  });
}

export interface JobPaths {
  lock: string;
  log: string;
  /** the run folder (attack and defense jobs) or the data folder (synth jobs) */
  out: string;
  /** attack and defense jobs: the data folder they read */
  data?: string;
  /** attack jobs: the clean model's run folder and its lock */
  clean?: { dir: string; lock: string };
  /** a TorchScript model's jobs: its archive and the user's triggered clips */
  torchscript?: { file: string; triggered?: string };
}

function torchScriptOf(manifest: Manifest, c: AttackConfig | DefenseConfig): JobPaths['torchscript'] {
  if (!c.torchscript) return undefined;
  const t = manifest.torchscript?.find((x) => x.name === c.model);
  if (!t) throw new Error(`the manifest has no TorchScript model '${c.model}'`);
  return { file: t.file, ...(t.triggered ? { triggered: t.triggered } : {}) };
}

export function dataFolder(manifest: Manifest, work: string, dataName: string): string {
  const d = manifest.data.find((x) => x.name === dataName);
  if (!d) throw new Error(`the manifest has no data entry '${dataName}'`);
  if (d.path) return d.path;
  return path.join(path.resolve(work), 'data', `${safe(d.name)}-${d.synthJob}`);
}

export function attackRunFolder(work: string, id: string, c: AttackConfig | DefenseConfig): string {
  return path.join(path.resolve(work), 'runs', 'attack', `${safe(`${c.dataName}-${c.model}-${c.attack}-a${c.attackSeed}`)}-${id}`);
}

export function jobPaths(manifest: Manifest, work: string, job: ManifestJob): JobPaths {
  const w = path.resolve(work);
  const common = { lock: path.join(w, 'locks', `${job.id}.lock`), log: path.join(w, 'logs', `${job.id}.log`) };
  const c = job.config;
  if (c.kind === 'synth') return { ...common, out: dataFolder(manifest, w, c.dataName) };
  const data = dataFolder(manifest, w, c.dataName);
  const torchscript = torchScriptOf(manifest, c);
  if (torchscript) {
    if (c.kind === 'attack') return { ...common, data, out: attackRunFolder(w, job.id, c), torchscript };
    return { ...common, data, out: defenseRunFolder(w, job.id, c), torchscript };
  }
  if (c.kind === 'attack') {
    const key = cleanKey(c);
    return {
      ...common,
      data,
      out: attackRunFolder(w, job.id, c),
      clean: {
        dir: path.join(w, 'runs', 'clean', `${safe(`${c.dataName}-${c.model}-${c.frontEnd}`)}-${key}`),
        lock: path.join(w, 'locks', `clean-${key}.lock`),
      },
    };
  }
  return { ...common, data, out: defenseRunFolder(w, job.id, c) };
}

function defenseRunFolder(work: string, id: string, c: DefenseConfig): string {
  const name = `${c.dataName}-${c.model}-${c.attack}-a${c.attackSeed}-${c.defense}-${c.recipe}-c${c.cleanRatio}-s${c.seed}`;
  return path.join(work, 'runs', 'defense', `${safe(name)}-${id}`);
}
