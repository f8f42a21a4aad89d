// kwshield data synth | data info
import { Command } from '@commander-js/extra-typings';
import { datasetInfo } from '../../data/speech-commands.ts';
import { isSpeechEngineName, SPEECH_ENGINE_NAMES, type SpeechEngineName } from '../../data/speech-engine.ts';
import { SYNTH_PRESETS, type SynthPreset, synthesizeSpeechCommands } from '../../data/synth.ts';
import { report } from '../output.ts';
import { checkOutputFolder } from '../preflight.ts';
import { createProgress } from '../progress.ts';

export function dataCommand(): Command {
  const data = new Command('data').description('generate or inspect Speech Commands data');
  data
    .command('synth')
    .description("generate a synthetic Speech Commands set with espeak-ng (and flite, if asked) in the real one's layout")
    .option('--preset <preset>', 'tiny | quick | small | full', 'small')
    .option('--words <set>', 'scd10 | scd30', 'scd10')
    .option('--seed <n>', 'random seed', '0')
    .option('--engines <list>', `speech engines, comma-separated: ${SPEECH_ENGINE_NAMES.join(', ')}`, 'espeak-ng')
    .option('--test-engine <engine>', 'hold this engine out: it alone speaks the test split, the others train and validation')
    .requiredOption('--out <dir>', 'output folder')
    .option('--force', 'replace an existing output folder')
    .option('--json', 'print the result as one JSON line')
    .action(async (o) => {
      const presets = Object.keys(SYNTH_PRESETS);
      if (!presets.includes(o.preset)) throw new Error(`--preset must be one of ${presets.join(', ')}, got '${o.preset}'`);
      if (!['scd10', 'scd30'].includes(o.words)) throw new Error(`--words must be scd10 or scd30, got '${o.words}'`);
      // the full preset writes about 750 MB of WAV clips
      checkOutputFolder(o.out, '--out', o.preset === 'full' ? 1024 ** 3 : undefined);
      const engines = o.engines.split(',').map((e) => e.trim());
      for (const e of [...engines, ...(o.testEngine === undefined ? [] : [o.testEngine])])
        if (!isSpeechEngineName(e)) throw new Error(`unknown speech engine '${e}' (known: ${SPEECH_ENGINE_NAMES.join(', ')})`);
      let bar: ReturnType<typeof createProgress> | undefined;
      const summary = await synthesizeSpeechCommands({
        out: o.out,
        preset: o.preset as SynthPreset,
        words: o.words as 'scd10' | 'scd30',
        seed: Number(o.seed),
        engines: engines as SpeechEngineName[],
        testEngine: o.testEngine as SpeechEngineName | undefined,
        force: Boolean(o.force),
        onProgress: (done, total) => {
          bar ??= createProgress('synth', total);
          bar.update(done);
        },
      });
      bar?.finish();
      report(Boolean(o.json), summary, () =>
        [
          `wrote ${summary.clips} clips of ${summary.words.length} words to ${summary.out} in ${summary.seconds.toFixed(0)} s`,
          ...Object.entries(summary.splits).map(
            ([split, x]) =>
              `  ${split.padEnd(10)} ${String(x.clips).padStart(6)} clips, ${x.speakers} speakers (voices drawn from ${x.variants.length} variants held by this split${x.engines ? `; ${x.engines.join(', ')}` : ''})`,
          ),
        ].join('\n'),
      );
    });
  data
    .command('info')
    .description('counts per split and class, sample rates, durations, problems found')
    .argument('<dir>', 'a Speech Commands folder')
    .option('--words <set>', 'scd10 | scd30 | all', 'all')
    .option('--json', 'print the result as one JSON line')
    .action(async (dir, o) => {
      const info = await datasetInfo(dir, { words: o.words as 'scd10' | 'scd30' | 'all' });
      report(Boolean(o.json), info, () => {
        const lines = [`${info.root} (${info.version}, ${info.clips} clips, split: ${info.splitMethod})`];
        for (const [split, s] of Object.entries(info.splits)) lines.push(`  ${split.padEnd(10)} ${String(s.clips).padStart(6)} clips, ${s.speakers} speakers`);
        lines.push(`  words: ${info.words.join(' ')}`);
        lines.push(
          `  sample rates: ${Object.entries(info.sampleRates)
            .map(([r, n]) => `${r} Hz x ${n}`)
            .join(', ')}`,
        );
        lines.push(`  problems: ${info.problemCount}${info.problems.length ? `\n    ${info.problems.slice(0, 10).join('\n    ')}` : ''}`);
        return lines.join('\n');
      });
    });
  return data;
}
