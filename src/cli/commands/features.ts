// kwshield features: run a front-end over a WAV file or a folder of them and save the features.
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { Command } from '@commander-js/extra-typings';
import { applyInBatches, frontEndNames, getFrontEnd } from '../../audio/frontends.ts';
import { loadClip } from '../../data/speech-commands.ts';
import { noGrad, saveSafetensors, tensor, tidy } from '../../torch/index.ts';
import { report } from '../output.ts';
import { checkOutputFile } from '../preflight.ts';
import { createProgress } from '../progress.ts';

function wavFiles(input: string): string[] {
  if (!existsSync(input)) throw new Error(`--in ${input} does not exist`);
  if (statSync(input).isFile()) return [input];
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir).sort()) {
      const full = path.join(dir, entry);
      if (statSync(full).isDirectory()) walk(full);
      else if (entry.toLowerCase().endsWith('.wav')) out.push(full);
    }
  };
  walk(input);
  if (out.length === 0) throw new Error(`--in ${input} holds no .wav files`);
  return out;
}

export function featuresCommand(): Command {
  return new Command('features')
    .description('compute features of WAV files (one safetensors tensor "features" of shape [clips, ...])')
    .requiredOption('--front-end <name>', `one of ${frontEndNames.join(', ')}`)
    .requiredOption('--in <path>', 'a WAV file or a folder of them (searched recursively, sorted by path)')
    .requiredOption('--out <file>', 'output .safetensors file')
    .option('--json', 'print the result as one JSON line')
    .action(async (o) => {
      checkOutputFile(o.out);
      const frontEnd = getFrontEnd(o.frontEnd);
      const files = wavFiles(o.in);
      const data = new Float32Array(files.length * frontEnd.inputSamples);
      const bar = createProgress('read', files.length);
      for (let i = 0; i < files.length; i++) {
        data.set(
          (await loadClip(files[i], { length: frontEnd.inputSamples, sampleRate: frontEnd.sampleRate, resample: true })) as Float32Array,
          i * frontEnd.inputSamples,
        );
        bar.update(i + 1);
      }
      bar.finish();
      const shape = noGrad(() =>
        tidy(() => {
          const features = applyInBatches(frontEnd, tensor(data, [files.length, frontEnd.inputSamples]));
          saveSafetensors(o.out, new Map([['features', features]]), {
            frontEnd: frontEnd.name,
            files: JSON.stringify(files.map((f) => path.relative(o.in, f) || path.basename(f))),
          });
          return features.shape;
        }),
      );
      report(
        Boolean(o.json),
        { out: o.out, frontEnd: frontEnd.name, clips: files.length, shape },
        () => `wrote ${o.out}: features [${shape.join(', ')}] (${frontEnd.name})`,
      );
    });
}
