// kwshield eval: clean accuracy (per class, confusion) of a saved model on a data folder's split; with
// --attack-of, also ASR and RA against that attack run's saved trigger (and DER against its backdoored model);
// with --triggered DIR --target WORD, ASR and RA on the user's own triggered clips.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { Command } from '@commander-js/extra-typings';
import { disposeArtifact, getAttack, loadArtifact, loadPlan } from '../../attacks/index.ts';
import { getFrontEnd } from '../../audio/frontends.ts';
import { disposeFeatureSet } from '../../data/feature-set.ts';
import { triggeredFeatureSet } from '../../data/features.ts';
import { defaultCacheDir, disposeSplits, loadSplits } from '../../experiments/data-splits.ts';
import { derBetween, evaluate, evaluateBackdoor } from '../../experiments/evaluate.ts';
import { evaluateTriggeredFolder, readTriggeredFolder, targetLabel } from '../../experiments/triggered-folder.ts';
import { loadModel } from '../../models/checkpoint.ts';
import { percent, report, UsageError } from '../output.ts';
import { checkDataFolder } from '../preflight.ts';

export function evalCommand(): Command {
  return new Command('eval')
    .description('evaluate a saved model (a run folder) on a split of a data folder; --attack-of adds ASR/RA against a saved attack')
    .requiredOption('--model <run>', 'a run folder (kwshield train/attack/defend, or import for your own TorchScript model)')
    .requiredOption('--data <dir>', 'a Speech Commands folder')
    .option('--split <name>', 'train | validation | test', 'test')
    .option('--attack-of <run>', 'an attack run folder (kwshield attack): measure ASR and RA with its trigger on the test split')
    .option('--triggered <dir>', 'your own triggered clips (Speech Commands layout: DIR/<true word>/<clip>.wav): ASR and RA on them, with --target')
    .option('--target <word>', 'the class the trigger sends clips to (with --triggered)')
    .option('--json', 'print the result as one JSON line')
    .action(async (o) => {
      if (!['train', 'validation', 'test'].includes(o.split)) throw new UsageError(`--split must be train, validation or test, got '${o.split}'`);
      if (o.attackOf && o.split !== 'test') throw new UsageError('--attack-of measures the test split; leave --split out');
      if (Boolean(o.triggered) !== Boolean(o.target))
        throw new UsageError('--triggered DIR and --target WORD go together: the folder of triggered clips and the class the trigger aims at');
      if (o.triggered && o.attackOf) throw new UsageError("give --attack-of (kwshield's attack run) or --triggered (your own clips), not both");
      checkDataFolder(o.data);
      const { model, manifest } = loadModel(o.model);
      try {
        if (o.target) targetLabel(o.target, manifest.classes);
        const triggered = o.triggered ? { dir: o.triggered, clips: await readTriggeredFolder(o.triggered, manifest.classes) } : undefined;
        const splits = await loadSplits(o.data, { frontEnd: manifest.frontEnd, words: manifest.classes });
        try {
          const set = splits[o.split as 'train' | 'validation' | 'test'];
          const result = evaluate(model, set);
          const out: Record<string, unknown> = {
            model: o.model,
            split: o.split,
            clips: set.size,
            cleanAccuracy: result.accuracy,
            perClassAccuracy: Object.fromEntries(manifest.classes.map((c, i) => [c, result.perClassAccuracy[i]])),
            confusion: result.confusion,
          };
          if (o.attackOf) out.backdoor = await againstAttack(o.attackOf, o.data, manifest.frontEnd, splits, model);
          const t = triggered
            ? await evaluateTriggeredFolder(model, triggered, o.target as string, manifest.classes, getFrontEnd(manifest.frontEnd))
            : undefined;
          if (t) out.triggered = t;
          const b = out.backdoor as { ca: number; asr: number; ra: number; der?: number; attack: string } | undefined;
          report(Boolean(o.json), out, () =>
            [
              `clean accuracy ${percent(result.accuracy)} on ${set.size} ${o.split} clips`,
              ...manifest.classes.map((c, i) => `  ${c.padEnd(8)} ${percent(result.perClassAccuracy[i])}`),
              ...(b
                ? [
                    `against ${b.attack} (${o.attackOf}): ASR ${percent(b.asr)}  RA ${percent(b.ra)}${b.der !== undefined ? `  DER ${b.der.toFixed(3)} vs its backdoored model` : ''}`,
                  ]
                : []),
              ...(t
                ? [`on ${t.clips} triggered clips of ${t.triggered} (${t.nonTargetClips} not of '${t.target}'): ASR ${percent(t.asr)}  RA ${percent(t.ra)}`]
                : []),
            ].join('\n'),
          );
        } finally {
          disposeSplits(splits);
        }
      } finally {
        model.dispose();
      }
    });
}

async function againstAttack(
  run: string,
  data: string,
  frontEndName: string,
  splits: Awaited<ReturnType<typeof loadSplits>>,
  model: Parameters<typeof evaluateBackdoor>[0],
): Promise<Record<string, unknown>> {
  const artifact = loadArtifact(run);
  try {
    const plan = loadPlan(run);
    const attack = getAttack(artifact.attack);
    const frontEnd = getFrontEnd(frontEndName);
    const problem = attack.frontEndProblem(frontEnd);
    if (problem) throw new Error(`--attack-of ${run}: ${problem}`);
    if (splits.classes[plan.targetLabel] !== plan.target)
      throw new Error(`--attack-of ${run} targets '${plan.target}', which is not class ${plan.targetLabel} of this model`);
    const testClips = splits.dataset.entries.filter((e) => e.split === 'test');
    const triggered = await triggeredFeatureSet(testClips, splits.classes, frontEnd, attack.trigger(artifact, 'test', frontEnd), artifact.seed, {
      cacheDir: path.join(defaultCacheDir(), 'features'),
    });
    try {
      const metrics = evaluateBackdoor(model, splits.test, triggered, plan.targetLabel);
      const attackMetrics = path.join(run, 'metrics.json');
      let der: number | undefined;
      if (existsSync(attackMetrics)) {
        const saved = JSON.parse(readFileSync(attackMetrics, 'utf8'));
        if (saved.backdoored && path.resolve(saved.data) === path.resolve(data)) der = derBetween(saved.backdoored, metrics);
      }
      return { attack: attack.name, target: plan.target, ...metrics, ...(der !== undefined ? { der } : {}) };
    } finally {
      disposeFeatureSet(triggered);
    }
  } finally {
    disposeArtifact(artifact);
  }
}
