// kwshield import: the user's own model (a TorchScript archive) as a run folder that eval, defend, analyze,
// scan and report take with --model. Everything is checked before anything is written.
import { Command } from '@commander-js/extra-typings';
import { importRun, TRUST_WARNING } from '../../experiments/import-run.ts';
import { report } from '../output.ts';

export function importCommand(): Command {
  return new Command('import')
    .description('make a run folder from your own model, a TorchScript archive (an archive is code: import only models you trust)')
    .requiredOption('--torchscript <file>', 'the archive: torch.jit.script(model).save(file), or torch.jit.trace(model, example).save(file)')
    .requiredOption(
      '--input <name>',
      'what the model takes: waveform-16k-1s (the raw one-second 16 kHz clip, [batch, 16000]: a model with its front-end inside), or the front-end it was trained on (mfcc-16k, logmel-16k, ...)',
    )
    .requiredOption('--classes <file|a,b,...>', "the class names in the order of the model's outputs: a file (one per line) or a comma-separated list")
    .requiredOption('--out <dir>', 'the run folder to make')
    .option('--force', 'replace a finished run in --out')
    .option('--json', 'print the result as one JSON line')
    .action((o) => {
      process.stderr.write(`note: ${TRUST_WARNING}\n`);
      const r = importRun({ torchscript: o.torchscript, input: o.input, classes: o.classes, out: o.out, force: o.force });
      report(Boolean(o.json), r, () =>
        [
          `imported ${r.source} (sha256 ${r.sha256.slice(0, 16)}...) into ${r.out}`,
          `  input:      ${r.input} [batch, ${r.inputShape.join(', ')}]`,
          `  classes:    ${r.classes.join(', ')}`,
          `  parameters: ${r.parameters}`,
          `  layers:     ${r.neuronLayers.length} conv/linear neuron layers, classifier ${r.classifier ?? 'none found'}, ${r.batchNorms.length} BatchNorm`,
          `  BatchNorm:  ${r.batchNormNote}`,
          `next: kwshield eval --model ${r.out} --data DIR; kwshield defend --model ${r.out} --data DIR --defense gnft --out RUN`,
        ].join('\n'),
      );
    });
}
