// `kwshield import --torchscript` as a library call: the user's own model, a TorchScript archive, becomes a
// run folder every command takes (--model RUN): model.pt (the archive, copied byte for byte), model.json
// (model 'torchscript', the input it takes, its classes, the archive's sha256 and where it came from, how its
// BatchNorm answers train/eval) and model.safetensors (its parameters and buffers under the archive's names).
//
// Every input is checked before anything is written: the input name, the classes, the output folder, then
// the archive itself (loaded and probed with a batch of silence: it must give finite [batch, classes]
// logits). The folder is assembled beside --out and renamed into place, so a refusal or a crash leaves
// nothing half-written.
//
// Security: a TorchScript archive is code (its forward is a program its author wrote, run with your rights);
// import only models you trust.
import { randomBytes } from 'node:crypto';
import { accessSync, constants, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { type FrontEnd, frontEndNames, getFrontEnd } from '../audio/frontends.ts';
import { writeJsonAtomic } from '../data/atomic.ts';
import type { ModelManifest } from '../models/checkpoint.ts';
import { importTorchScript, TorchScriptImportError, type TorchScriptImportReport } from '../models/torchscript.ts';
import { ARCHIVE_FILE, sha256Of, TORCHSCRIPT_MODEL } from '../models/torchscript-run.ts';
import { saveSafetensors, TorchScriptLoadError, tidy } from '../torch/index.ts';

export const TRUST_WARNING = 'a TorchScript archive is code: its forward runs with your rights; import and run only models you trust';

export interface ImportRunOptions {
  /** the TorchScript archive (torch.jit.script(model).save(...) or torch.jit.trace(...).save(...)) */
  torchscript: string;
  /** the input the model takes: 'waveform-16k-1s' (the raw one-second 16 kHz clip) or a front-end name */
  input: string;
  /** the class names in the order of the model's outputs: a list, a comma-separated string, or a file (one per line) */
  classes: string | string[];
  out: string;
  force?: boolean;
}

export interface ImportRunResult {
  kind: 'import';
  out: string;
  model: typeof TORCHSCRIPT_MODEL;
  source: string;
  sha256: string;
  input: string;
  inputShape: number[];
  classes: string[];
  batchNorm: TorchScriptImportReport['batchNorm'];
  /** what the BatchNorm mode means for fine-tuning, in words */
  batchNormNote: string;
  neuronLayers: string[];
  classifier: string | null;
  batchNorms: string[];
  parameters: number;
  warning: string;
}

export class ImportRunError extends Error {}

/** The input name as a front-end, or a refusal that lists the choices. */
export function inputFrontEnd(name: string): FrontEnd {
  try {
    return getFrontEnd(name);
  } catch {
    throw new ImportRunError(
      `--input: unknown input '${name}'; give waveform-16k-1s for a model that takes the raw one-second 16 kHz clip (its front-end inside), or the front-end whose features it was trained on: ${frontEndNames.join(', ')}`,
    );
  }
}

/** Class names from a list, "a,b,c", or a file with one name per line (blank lines and # comments skipped). */
export function parseClasses(spec: string | string[]): string[] {
  let names: string[];
  let from: string;
  if (Array.isArray(spec)) {
    names = spec.map((s) => s.trim());
    from = '--classes';
  } else if (spec.includes(',')) {
    names = spec.split(',').map((s) => s.trim());
    from = '--classes';
  } else {
    if (!existsSync(spec)) {
      throw new ImportRunError(
        `--classes: ${spec} is neither a file nor a comma-separated list; give a file with one class name per line, or the names as a,b,c in the order of the model's outputs`,
      );
    }
    if (statSync(spec).isDirectory()) throw new ImportRunError(`--classes: ${spec} is a folder; give a file with one class name per line`);
    names = readFileSync(spec, 'utf8')
      .split(/\r?\n/)
      .map((l) => l.replace(/#.*/, '').trim())
      .filter(Boolean);
    from = `--classes file ${spec}`;
    if (names.length === 0) throw new ImportRunError(`${from} is empty; write one class name per line, in the order of the model's outputs`);
  }
  if (names.some((n) => n === '')) throw new ImportRunError(`${from} has an empty class name; list the names as a,b,c`);
  const bad = names.find((n) => /[/\\]/.test(n));
  if (bad) throw new ImportRunError(`${from}: '${bad}' cannot be a class name (it must be a word folder's name in the data, without / or \\)`);
  const dup = names.filter((n, i) => names.indexOf(n) !== i);
  if (dup.length)
    throw new ImportRunError(`${from} lists ${[...new Set(dup)].join(', ')} more than once; each class once, in the order of the model's outputs`);
  if (names.length < 2) throw new ImportRunError(`${from} lists ${names.length} class; a keyword spotter has at least two`);
  return names;
}

/** Refuses an --out that holds a run (without --force), other files, or cannot be written. */
export function checkOutFolder(out: string, force = false): void {
  if (existsSync(out)) {
    if (!statSync(out).isDirectory()) throw new ImportRunError(`--out ${out} is a file; give a folder for the run`);
    const entries = readdirSync(out);
    if (entries.length && !force) {
      throw new ImportRunError(
        existsSync(path.join(out, 'model.json'))
          ? `${out} already holds a finished run; choose another --out, or pass --force to replace it`
          : `${out} is not empty (${entries.slice(0, 3).join(', ')}${entries.length > 3 ? ', ...' : ''}); choose another --out, or pass --force to replace it`,
      );
    }
  }
  // The run is assembled beside --out and renamed into place: its parent must be writable.
  let parent = path.dirname(path.resolve(out));
  while (!existsSync(parent)) parent = path.dirname(parent);
  if (!statSync(parent).isDirectory()) throw new ImportRunError(`--out ${out}: ${parent} is a file, not a folder; choose a folder for the run`);
  try {
    accessSync(parent, constants.W_OK);
  } catch {
    throw new ImportRunError(`--out ${out}: ${parent} is not writable; choose a folder you can write to`);
  }
}

/** What the probe's BatchNorm mode means for the defenses that fine-tune. */
export function batchNormNote(mode: TorchScriptImportReport['batchNorm']): string {
  switch (mode) {
    case 'follows-mode':
      return 'BatchNorm follows train/eval (scripted): fine-tuning adapts its running statistics, as for a built-in model';
    case 'frozen-eval':
      return 'BatchNorm is frozen in eval mode (traced in eval mode): fine-tuning trains the weights, but the running statistics never move; export with torch.jit.script, or trace in train mode, if they should adapt';
    case 'frozen-train':
      return 'BatchNorm always normalises by the batch (traced in train mode): even evaluation uses batch statistics, so predictions depend on what else is in the batch; export with torch.jit.script to get train/eval behaviour';
    case 'mixed':
      return 'BatchNorm layers disagree on train/eval (some frozen by tracing): fine-tuning adapts only those that follow the mode';
    default:
      return 'no BatchNorm with running statistics';
  }
}

/** Loads and probes the archive; archive refusals become ImportRunErrors naming the fix. */
function probe(file: string, frontEnd: FrontEnd, classes: string[]) {
  try {
    return importTorchScript(file, { inputShape: [...frontEnd.outputShape], classes: classes.length });
  } catch (e) {
    if (!(e instanceof TorchScriptLoadError || e instanceof TorchScriptImportError)) throw e;
    const inputHint =
      /cannot take a batch/.test((e as Error).message) && frontEnd.outputShape.length === 1
        ? ` (--input ${frontEnd.name} feeds [batch, ${frontEnd.outputShape[0]}]; a model trained on features needs their front-end, e.g. mfcc-16k [batch, 101, 40])`
        : /cannot take a batch/.test((e as Error).message)
          ? ` (--input ${frontEnd.name} feeds [batch, ${frontEnd.outputShape.join(', ')}]; a model with its own front-end takes waveform-16k-1s [batch, 16000])`
          : '';
    throw new ImportRunError(`${(e as Error).message}${inputHint}`);
  }
}

/** Moves the assembled folder into place, replacing what --out held (checked by checkOutFolder). */
function moveIntoPlace(tmp: string, out: string): void {
  if (!existsSync(out)) {
    renameSync(tmp, out);
    return;
  }
  const old = `${out}.replaced-${process.pid}-${randomBytes(4).toString('hex')}`;
  renameSync(out, old);
  renameSync(tmp, out);
  rmSync(old, { recursive: true, force: true });
}

/**
 * What importRun checks of the archive, without writing anything (a grid checks its TorchScript model entries
 * with it before any job runs): the input name, the classes, then the archive loaded and probed.
 */
export function checkImport(o: Pick<ImportRunOptions, 'torchscript' | 'input' | 'classes'>): {
  frontEnd: FrontEnd;
  classes: string[];
  report: TorchScriptImportReport;
} {
  const frontEnd = inputFrontEnd(o.input);
  const classes = parseClasses(o.classes);
  const { model, report } = probe(o.torchscript, frontEnd, classes);
  model.dispose();
  return { frontEnd, classes, report };
}

export function importRun(o: ImportRunOptions): ImportRunResult {
  const frontEnd = inputFrontEnd(o.input);
  const classes = parseClasses(o.classes);
  checkOutFolder(o.out, o.force);
  const source = path.resolve(o.torchscript);
  const { model, report } = probe(o.torchscript, frontEnd, classes);
  const out = path.resolve(o.out);
  mkdirSync(path.dirname(out), { recursive: true });
  const tmp = path.join(path.dirname(out), `.${path.basename(out)}.import-${process.pid}-${randomBytes(4).toString('hex')}`);
  try {
    mkdirSync(tmp);
    // The archive as the user made it (same bytes, same sha256), not a re-serialisation.
    copyFileSync(source, path.join(tmp, ARCHIVE_FILE));
    const sha256 = sha256Of(path.join(tmp, ARCHIVE_FILE));
    if (sha256 !== report.sha256) throw new ImportRunError(`${source} changed while it was being imported; import it again`);
    tidy(() => saveSafetensors(path.join(tmp, 'model.safetensors'), model.stateDict(), { model: TORCHSCRIPT_MODEL }));
    const created = new Date().toISOString();
    const manifest: ModelManifest = {
      format: 'kwshield-model',
      version: 1,
      model: TORCHSCRIPT_MODEL,
      config: {},
      frontEnd: frontEnd.name,
      inputShape: [...frontEnd.outputShape],
      classes,
      torchscript: {
        archive: ARCHIVE_FILE,
        sha256,
        source,
        sourceSha256: sha256,
        batchNorm: report.batchNorm,
        neuronLayers: report.neuronLayers,
        classifier: report.classifier,
        batchNorms: report.batchNorms,
        parameters: report.parameters,
      },
      provenance: { importedFrom: source, imported: created, created },
    };
    writeJsonAtomic(path.join(tmp, 'model.json'), manifest);
    moveIntoPlace(tmp, out);
    return {
      kind: 'import',
      out: o.out,
      model: TORCHSCRIPT_MODEL,
      source,
      sha256,
      input: frontEnd.name,
      inputShape: [...frontEnd.outputShape],
      classes,
      batchNorm: report.batchNorm,
      batchNormNote: batchNormNote(report.batchNorm),
      neuronLayers: report.neuronLayers,
      classifier: report.classifier,
      batchNorms: report.batchNorms,
      parameters: report.parameters,
      warning: TRUST_WARNING,
    };
  } finally {
    model.dispose();
    rmSync(tmp, { recursive: true, force: true });
  }
}
