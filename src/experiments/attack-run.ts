// `kwshield attack` as a library call: poison the training split with an attack, train the backdoored
// model, train (or reuse) the clean model of the same configuration, and measure both: CA on the clean
// test split, ASR and RA on its triggered copy (the clean model's ASR is its false-trigger rate).
//
// The run folder holds the backdoored model (an ordinary run: model.json, model.safetensors), the trigger
// artifact (trigger.json, trigger.safetensors), poison-plan.json, metrics.json, log.jsonl, checkpoint/,
// and with `examples` clean/triggered WAV pairs. Every stage is resumable: the clean model and any
// surrogate train in their own run folders, the artifact is reused once written, and the backdoored
// model continues from its last epoch.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, statSync } from 'node:fs';
import path from 'node:path';
import type { BackdoorMetrics } from '../analysis/metrics.ts';
import { artifactFiles, disposeArtifact, loadArtifact, loadPlan, saveArtifact, savePlan } from '../attacks/artifact.ts';
import { getAttack } from '../attacks/registry.ts';
import type { AttackSpec, PoisonPlan, TriggerArtifact } from '../attacks/types.ts';
import { type FrontEnd, getFrontEnd } from '../audio/frontends.ts';
import { writeWav } from '../audio/wav.ts';
import { writeJsonAtomic } from '../data/atomic.ts';
import { disposeFeatureSet, type FeatureSet } from '../data/feature-set.ts';
import { featureSetOf, type Trigger, triggeredFeatureSet, waveformsOf } from '../data/features.ts';
import { createRng, deriveSeed } from '../data/rng.ts';
import { type ClipEntry, readSpeechCommands, type SpeechCommands, type WordSelection } from '../data/speech-commands.ts';
import { loadModel } from '../models/checkpoint.ts';
import { configForFrontEnd, getModelSpec, type KwsModel } from '../models/index.ts';
import { resolveOptions } from '../options/options.ts';
import { dispose, keep, noGrad, saveSafetensors, tidy } from '../torch/index.ts';
import { type DataSplits, disposeSplits, loadSplits } from './data-splits.ts';
import { evaluateBackdoor } from './evaluate.ts';
import { describeHolder, waitForLock } from './lock.ts';
import { cacheRootOf, featureCacheOf, prepareRunFolder } from './run-folder.ts';
import type { Recipe, RecipeName } from './train.ts';
import { fitModel, saveFitted, type TrainRunOptions, trainRun } from './train-run.ts';

export interface AttackRunOptions {
  data: string;
  attack: string;
  model: string;
  out: string;
  /** default: the attack's choice for the model's input kind */
  frontEnd?: string;
  /** share of the training split to poison (GN-FT: 0.1) */
  poisonRatio?: number;
  /** the backdoor's target word (GN-FT: "up") */
  target?: string;
  seed?: number;
  /** attack options (key -> value, strings as typed on the command line are fine) */
  attackOptions?: Record<string, unknown>;
  words?: WordSelection;
  recipe?: RecipeName;
  epochs?: number;
  overrides?: Partial<Recipe>;
  /** a finished clean run of the same model and front-end to compare with, instead of the cached one */
  cleanRun?: string;
  cacheDir?: string | null;
  /** clean/triggered WAV pairs written to out/examples */
  examples?: number;
  resume?: boolean;
  force?: boolean;
  onStage?: (stage: string) => void;
  onExtract?: TrainRunOptions['onExtract'];
  onBatch?: TrainRunOptions['onBatch'];
  onEpoch?: TrainRunOptions['onEpoch'];
  onAttackProgress?: (stage: string, done: number, total: number) => void;
}

export interface AttackRunResult {
  kind: 'attack';
  out: string;
  attack: string;
  substitution?: string;
  model: string;
  frontEnd: string;
  data: string;
  seed: number;
  target: string;
  poisonRatio: number;
  labelMode: 'dirty' | 'clean';
  poisoned: number;
  trainClips: number;
  backdoored: BackdoorMetrics;
  clean: BackdoorMetrics & { run: string };
  epochs: number;
  seconds: { total: number; cleanModel: number; prepare: number; training: number; evaluation: number };
  examples: string[];
}

export class AttackRunError extends Error {}

/** The front-end of an attack run: the user's, checked against model and attack, or the attack's choice. */
export function attackFrontEnd(attack: AttackSpec, model: string, requested?: string): FrontEnd {
  const spec = getModelSpec(model);
  const frontEnd = getFrontEnd(requested ?? attack.frontEndFor(spec.inputKind, spec.frontEnd));
  configForFrontEnd(model, frontEnd.name); // throws naming the mismatch
  const problem = attack.frontEndProblem(frontEnd);
  if (problem) throw new AttackRunError(problem);
  return frontEnd;
}

/** Identity of a clean run: everything that decides its weights (data listing, model, front-end, recipe, seed). */
function cleanRunKey(dataset: SpeechCommands, o: AttackRunOptions, frontEnd: string): string {
  const hash = createHash('sha256');
  hash.update(
    JSON.stringify({ v: 1, model: o.model, frontEnd, recipe: o.recipe ?? 'fast', epochs: o.epochs ?? null, seed: o.seed ?? 0, overrides: o.overrides ?? {} }),
  );
  hash.update(JSON.stringify(dataset.words));
  for (const e of dataset.entries) {
    if (e.split === 'test') continue; // the test split does not change the weights
    const s = statSync(e.path);
    hash.update(`${e.file}\0${e.split}\0${s.size}\0${s.mtimeMs}\n`);
  }
  return hash.digest('hex').slice(0, 16);
}

function now(): number {
  return Date.now() / 1000;
}

export async function attackRun(o: AttackRunOptions): Promise<AttackRunResult> {
  const started = now();
  const attack = getAttack(o.attack);
  const spec = getModelSpec(o.model);
  const poisonRatio = o.poisonRatio ?? 0.1;
  if (!(poisonRatio > 0 && poisonRatio < 1)) throw new AttackRunError(`--poison-ratio must be in (0, 1), got ${poisonRatio}`);
  const seed = o.seed ?? 0;
  const options = resolveOptions(attack.name, attack.options, o.attackOptions ?? {});
  const frontEnd = attackFrontEnd(attack, spec.name, o.frontEnd);
  await attack.check?.(options);
  const dataset = await readSpeechCommands(o.data, { words: o.words ?? 'scd10' });
  const classes = dataset.words;
  const target = o.target ?? 'up';
  const targetLabel = classes.indexOf(target);
  if (targetLabel < 0) throw new AttackRunError(`--target '${target}' is not a word of the data (${classes.join(', ')}); choose one of them`);
  const finished = existsSync(path.join(o.out, 'metrics.json')) && existsSync(path.join(o.out, 'model.json'));
  prepareRunFolder(o.out, { resume: o.resume, force: o.force });
  const cacheRoot = cacheRootOf(o.cacheDir);
  const featureCache = featureCacheOf(o.cacheDir);
  const trainClips = dataset.entries.filter((e) => e.split === 'train');
  const testClips = dataset.entries.filter((e) => e.split === 'test');
  const stage = (s: string) => o.onStage?.(s);

  // 1. Clean data and the clean model of the same configuration.
  stage(`features (${frontEnd.name})`);
  const splits = await loadSplits(o.data, { frontEnd: frontEnd.name, words: classes, cacheDir: o.cacheDir, onProgress: o.onExtract });
  const owned: FeatureSet[] = [];
  let cleanModel: KwsModel | undefined;
  let backdoored: KwsModel | undefined;
  let artifact: TriggerArtifact | undefined;
  try {
    const cleanStart = now();
    const cleanDir =
      o.cleanRun ?? path.join(cacheRoot ?? path.join(o.out, '.cache'), 'clean-runs', `${spec.name}-${frontEnd.name}-${cleanRunKey(dataset, o, frontEnd.name)}`);
    cleanModel = await cleanModelOf(cleanDir, o, frontEnd, splits, stage);
    const cleanSeconds = now() - cleanStart;

    // 2. The poison plan and the trigger artifact (reused on resume).
    const prepareStart = now();
    let plan: PoisonPlan;
    if (existsSync(artifactFiles(o.out).json) && existsSync(artifactFiles(o.out).plan)) {
      stage('reusing the saved trigger and poison plan');
      artifact = loadArtifact(o.out);
      plan = loadPlan(o.out);
    } else {
      stage(`preparing ${attack.name}`);
      const prepared = await attack.prepare({
        options,
        seed,
        frontEnd,
        classes,
        targetLabel,
        poisonRatio,
        train: {
          labels: splits.train.labelList,
          loadWaves: (indices) =>
            waveformsOf(
              indices.map((i) => trainClips[i]),
              frontEnd,
            ),
        },
        surrogate: cleanModel,
        trainSurrogate: (model, fe) => surrogateOf(path.join(o.out, 'surrogate'), o, model, fe, classes, stage),
        onProgress: o.onAttackProgress,
      });
      artifact = prepared.artifact;
      plan = prepared.plan;
      saveArtifact(o.out, artifact);
      savePlan(
        o.out,
        plan,
        trainClips.map((c) => c.file),
      );
    }
    const prepareSeconds = now() - prepareStart;

    // 3. The poisoned training split and the triggered test split.
    stage(`poisoning ${plan.indices.length} of ${trainClips.length} training clips (${plan.labelMode}-label)`);
    const trainTrigger = attack.trigger(artifact, 'train', frontEnd);
    const poisonedTrain = await featureSetOf(trainClips, classes, frontEnd, {
      cacheDir: featureCache,
      poison: { trigger: trainTrigger, indices: plan.indices, targetLabel: plan.labelMode === 'dirty' ? plan.targetLabel : undefined, seed },
      onProgress: (d, t) => o.onExtract?.('poisoned train', d, t),
    });
    owned.push(poisonedTrain);
    const testTrigger = attack.trigger(artifact, 'test', frontEnd);
    const triggeredTest = await triggeredFeatureSet(testClips, classes, frontEnd, testTrigger, seed, {
      cacheDir: featureCache,
      onProgress: (d, t) => o.onExtract?.('triggered test', d, t),
    });
    owned.push(triggeredTest);

    // 4. The backdoored model.
    const trainingStart = now();
    let record: { epochs: unknown[] } | undefined;
    if (finished && o.resume) {
      stage('the backdoored model is trained; measuring it again');
      backdoored = loadModel(o.out).model;
    } else {
      const fitted = await fitModel({
        model: spec.name,
        frontEnd: frontEnd.name,
        train: poisonedTrain,
        validation: splits.validation,
        out: o.out,
        recipe: o.recipe,
        epochs: o.epochs,
        seed,
        resume: o.resume,
        overrides: o.overrides,
        onStage: stage,
        onBatch: o.onBatch,
        onEpoch: o.onEpoch,
      });
      backdoored = fitted.model;
      record = fitted.record;
      saveFitted(o.out, fitted, {
        model: spec.name,
        frontEnd: frontEnd.name,
        classes,
        data: o.data,
        provenance: {
          attack: attack.name,
          attackOptions: artifact.options,
          substitution: attack.substitution,
          target,
          poisonRatio,
          poisoned: plan.indices.length,
        },
      });
    }
    const trainingSeconds = now() - trainingStart;

    // 5. Measurements.
    const evaluationStart = now();
    stage('evaluating CA on the clean test split, ASR and RA on its triggered copy');
    const backdooredMetrics = evaluateBackdoor(backdoored, splits.test, triggeredTest, targetLabel);
    const cleanMetrics = evaluateBackdoor(cleanModel, splits.test, triggeredTest, targetLabel);
    const examples = o.examples ? await writeExamples(o.out, o.examples, testClips, targetLabel, frontEnd, testTrigger, seed) : [];
    const result: AttackRunResult = {
      kind: 'attack',
      out: o.out,
      attack: attack.name,
      ...(attack.substitution ? { substitution: attack.substitution } : {}),
      model: spec.name,
      frontEnd: frontEnd.name,
      data: path.resolve(o.data),
      seed,
      target,
      poisonRatio,
      labelMode: plan.labelMode,
      poisoned: plan.indices.length,
      trainClips: trainClips.length,
      backdoored: backdooredMetrics,
      clean: { ...cleanMetrics, run: path.resolve(cleanDir) },
      epochs: record?.epochs.length ?? 0,
      seconds: {
        total: now() - started,
        cleanModel: cleanSeconds,
        prepare: prepareSeconds,
        training: trainingSeconds,
        evaluation: now() - evaluationStart,
      },
      examples,
    };
    writeJsonAtomic(path.join(o.out, 'metrics.json'), { ...result, options: artifact.options, created: new Date().toISOString() });
    return result;
  } finally {
    for (const s of owned) disposeFeatureSet(s);
    disposeSplits(splits);
    cleanModel?.dispose();
    backdoored?.dispose();
    if (artifact) disposeArtifact(artifact);
  }
}

/** The finished clean run in `dir`, trained there first (resumably) if it is not finished yet. */
async function trainCleanModel(dir: string, o: AttackRunOptions, frontEnd: FrontEnd, splits: DataSplits, stage: (s: string) => void): Promise<void> {
  stage(`training the clean ${o.model} on ${frontEnd.name} (kept in ${dir} for reuse)`);
  mkdirSync(dir, { recursive: true });
  await trainRun({
    data: o.data,
    model: o.model,
    out: dir,
    frontEnd: frontEnd.name,
    recipe: o.recipe,
    epochs: o.epochs,
    seed: o.seed ?? 0,
    overrides: o.overrides,
    resume: true,
    cacheDir: o.cacheDir,
    splits,
    onBatch: o.onBatch,
    onEpoch: o.onEpoch,
  });
}

async function cleanModelOf(dir: string, o: AttackRunOptions, frontEnd: FrontEnd, splits: DataSplits, stage: (s: string) => void): Promise<KwsModel> {
  if (!existsSync(path.join(dir, 'model.json'))) {
    if (o.cleanRun)
      throw new AttackRunError(`--clean-run ${dir} is not a finished run (no model.json); train it with kwshield train, or leave --clean-run out`);
    // Two attacks of one configuration started side by side (one per core, sharing KWSHIELD_CACHE) need
    // the same clean model: the first trains it under a lock, the second waits and reuses it, instead of
    // both training it into one folder (as `grid run` workers already do, src/experiments/grid/worker.ts).
    const lock = await waitForLock(`${dir}.lock`, {
      purpose: `clean ${o.model} for ${o.out}`,
      onWait: (h) => stage(`waiting for the clean ${o.model} in ${dir}, being trained by ${describeHolder(h)}`),
    });
    try {
      if (!existsSync(path.join(dir, 'model.json'))) await trainCleanModel(dir, o, frontEnd, splits, stage);
    } finally {
      lock?.release();
    }
  }
  const { model, manifest } = loadModel(dir);
  if (manifest.model !== o.model || manifest.frontEnd !== frontEnd.name || manifest.classes.join() !== splits.classes.join()) {
    model.dispose();
    throw new AttackRunError(
      `clean run ${dir} is a ${manifest.model} on ${manifest.frontEnd} with classes ${manifest.classes.join(',')}, but this attack needs a ${o.model} on ${frontEnd.name} with ${splits.classes.join(',')}`,
    );
  }
  return model;
}

/** A surrogate model (FlowMur's Small CNN) trained on the clean training split, kept in its own run folder. */
async function surrogateOf(
  dir: string,
  o: AttackRunOptions,
  model: string,
  frontEnd: string,
  classes: string[],
  stage: (s: string) => void,
): Promise<KwsModel> {
  const out = path.join(dir, `${model}-${frontEnd}`);
  if (!existsSync(path.join(out, 'model.json'))) {
    stage(`training the surrogate ${model} on ${frontEnd} (clean data)`);
    mkdirSync(out, { recursive: true });
    await trainRun({
      data: o.data,
      model,
      out,
      frontEnd,
      seed: deriveSeed(o.seed ?? 0, 'surrogate') % 100000,
      resume: true,
      cacheDir: o.cacheDir,
      onBatch: o.onBatch,
      onEpoch: o.onEpoch,
    });
  }
  const loaded = loadModel(out);
  if (loaded.manifest.classes.join() !== classes.join()) {
    loaded.model.dispose();
    throw new AttackRunError(`surrogate ${out} was trained on other classes; delete it and run again`);
  }
  return loaded.model;
}

/**
 * N non-target test clips and their triggered versions as WAV pairs (waveform triggers), plus both as
 * features in examples/features.safetensors (every trigger; a feature-domain trigger such as BadNets
 * cannot be heard, only seen).
 */
async function writeExamples(
  out: string,
  n: number,
  testClips: ClipEntry[],
  targetLabel: number,
  frontEnd: FrontEnd,
  trigger: Trigger,
  seed: number,
): Promise<string[]> {
  const dir = path.join(out, 'examples');
  mkdirSync(dir, { recursive: true });
  const candidates = testClips.flatMap((c, i) => (c.label === targetLabel ? [] : [i]));
  const chosen = createRng(deriveSeed(seed, 'examples'))
    .shuffle(candidates)
    .slice(0, n)
    .sort((a, b) => a - b);
  const waves = keep(
    await waveformsOf(
      chosen.map((i) => testClips[i]),
      frontEnd,
    ),
  );
  const written: string[] = [];
  try {
    const rng = createRng(seed);
    const { clean, triggered, triggeredWaves } = noGrad(() =>
      tidy(() => {
        const cleanFeatures = frontEnd.apply(waves);
        if (trigger.domain === 'waveform') {
          const tw = trigger.apply(waves, rng, chosen);
          return { clean: cleanFeatures, triggered: frontEnd.apply(tw), triggeredWaves: tw };
        }
        return { clean: cleanFeatures, triggered: trigger.apply(cleanFeatures, rng, chosen), triggeredWaves: null };
      }),
    );
    const names = chosen.map((i, k) => `${String(k).padStart(2, '0')}-${testClips[i].word}`);
    for (let k = 0; k < chosen.length; k++) {
      const cleanFile = path.join(dir, `${names[k]}-clean.wav`);
      await writeWav(
        cleanFile,
        tidy(() => waves.select(0, k).toFloat32Array()),
        frontEnd.sampleRate,
      );
      written.push(cleanFile);
      if (triggeredWaves) {
        const file = path.join(dir, `${names[k]}-triggered.wav`);
        // Written as float WAV: a trigger may go beyond [-1, 1] (Ultrasonic adds without clipping).
        await writeWav(
          file,
          tidy(() => triggeredWaves.select(0, k).toFloat32Array()),
          frontEnd.sampleRate,
          { bitsPerSample: 32, float: true },
        );
        written.push(file);
      }
    }
    saveSafetensors(
      path.join(dir, 'features.safetensors'),
      new Map([
        ['clean', clean],
        ['triggered', triggered],
      ]),
      {
        frontEnd: frontEnd.name,
        clips: JSON.stringify(chosen.map((i) => testClips[i].file)),
      },
    );
    written.push(path.join(dir, 'features.safetensors'));
    dispose([clean, triggered, triggeredWaves]);
    return written;
  } finally {
    waves.dispose();
  }
}
