// Everything a report is built from, read from the paths the user gave: results folders (one
// kwshield-result JSON per job, nested folders allowed), run folders (attack or defense runs: a
// metrics.json), analysis folders (analysis.json, and analysis-<label>.json for compared models), or
// single JSON files of those formats. Links in result files (runs.model, runs.attack, runs.analysis)
// are followed for curves, examples and analyses. Corrupt or unknown files are skipped with a warning;
// a path that does not exist is an error.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { type Analysis, analysisFiles, analysisFormat, parseAnalysis } from '../analysis/analysis-file.ts';
import { InputError, isObject } from '../data/json-fields.ts';
import type { Job } from './job.ts';
import { isResultJson, parseResult } from './result-file.ts';
import { type DefenseCurve, type ExampleSet, examplesOf, isRunFolder, isUnfinishedRun, readRunFolder } from './run-folder.ts';

export interface LoadedInputs {
  jobs: Job[];
  curves: DefenseCurve[];
  examples: ExampleSet[];
  analyses: Analysis[];
  /** what was skipped or could not be followed, one line each */
  warnings: string[];
  /** files skipped because they were corrupt or of an unknown kind */
  skipped: number;
}

/** An input path that does not exist or cannot be read: the command fails naming it (exit 1). */
export class MissingInputError extends Error {}

export interface LoadOptions {
  /** analysis folders (or analysis JSON files) given besides the inputs */
  analysis?: string[];
}

const inputHelp =
  'give a results folder (one JSON per job, from kwshield grid run), a run folder (from kwshield attack or defend) or an analysis folder (from kwshield analyze)';

const maxDepth = 6;

interface State {
  out: LoadedInputs;
  /** jobs read from run folders; kept only when no result file describes the same run */
  runJobs: Job[];
  seenRuns: Set<string>;
  seenFiles: Set<string>;
}

function skip(s: State, message: string): void {
  s.out.warnings.push(`skipped ${message}`);
  s.out.skipped++;
}

/** Runs `read`, turning an InputError into a skipped file. */
function orSkip(s: State, read: () => void): void {
  try {
    read();
  } catch (err) {
    if (!(err instanceof InputError)) throw err;
    skip(s, err.message);
  }
}

function readRun(s: State, dir: string, asJob: boolean): void {
  const run = path.resolve(dir);
  if (s.seenRuns.has(run)) return;
  s.seenRuns.add(run);
  orSkip(s, () => {
    const folder = readRunFolder(run);
    if (asJob) s.runJobs.push(folder.job);
    if (folder.curve) s.out.curves.push(folder.curve);
    if (folder.examples) s.out.examples.push(folder.examples);
    // A defense run's examples live in its parent attack run.
    if (folder.job.kind === 'defense' && folder.job.runs.attack) linkedExamples(s, folder.job.runs.attack, folder.job);
  });
}

function linkedExamples(s: State, dir: string, job: Job): void {
  const run = path.resolve(dir);
  if (s.seenRuns.has(run) || !existsSync(run)) return;
  s.seenRuns.add(run);
  const set = examplesOf(run, { ...job, kind: 'attack', runs: { model: run, attack: run } });
  if (set) s.out.examples.push(set);
}

function readAnalysisFolder(s: State, dir: string): void {
  for (const file of analysisFiles(dir)) readJsonFile(s, file);
}

function readJsonFile(s: State, file: string): void {
  if (s.seenFiles.has(file)) return;
  s.seenFiles.add(file);
  let value: unknown;
  try {
    value = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    skip(s, `${file}: not valid JSON (${(err as Error).message})`);
    return;
  }
  orSkip(s, () => {
    if (isResultJson(value)) s.out.jobs.push(parseResult(value, file));
    else if (isObject(value) && value.format === analysisFormat) s.out.analyses.push(parseAnalysis(value, file));
    else if (path.basename(file) === 'metrics.json') readRun(s, path.dirname(file), true);
    else skip(s, `${file}: not a kwshield result file (no "format": "kwshield-result")`);
  });
}

function readFolder(s: State, dir: string, depth: number): void {
  if (isRunFolder(dir)) readRun(s, dir, true);
  else if (existsSync(path.join(dir, 'analysis.json'))) readAnalysisFolder(s, dir);
  else if (isUnfinishedRun(dir)) s.out.warnings.push(`${dir}: a run folder without metrics.json (still running, or interrupted); left out`);
  else if (depth <= maxDepth) readEntries(s, dir, depth);
}

function readEntries(s: State, dir: string, depth: number): void {
  for (const name of readdirSync(dir).sort()) {
    if (name.startsWith('.')) continue; // temp files of atomic writes, hidden folders
    const full = path.join(dir, name);
    const info = statSync(full, { throwIfNoEntry: false });
    if (info?.isDirectory()) readFolder(s, full, depth + 1);
    else if (info?.isFile() && name.endsWith('.json')) readJsonFile(s, full);
  }
}

function readInput(s: State, input: string, flag = ''): void {
  const full = path.resolve(input);
  const info = statSync(full, { throwIfNoEntry: false });
  if (!info) throw new MissingInputError(`${flag}${input}: no such file or folder; ${inputHelp}`);
  try {
    if (info.isDirectory()) readdirSync(full);
    else readFileSync(full);
  } catch (err) {
    throw new MissingInputError(`${flag}${input}: cannot read it (${(err as NodeJS.ErrnoException).code ?? String(err)}); check its permissions`);
  }
  if (info.isDirectory()) readFolder(s, full, 0);
  else if (full.endsWith('.json')) readJsonFile(s, full);
  else throw new MissingInputError(`${flag}${input}: not a folder or a .json file; ${inputHelp}`);
}

/** Follows the run and analysis folders result files point at. */
function followLinks(s: State): void {
  for (const job of s.out.jobs) {
    for (const [key, link] of Object.entries(job.runs)) {
      if (!link) continue;
      if (!existsSync(link)) {
        s.out.warnings.push(`${job.source}: runs.${key} ${link} does not exist (moved, or on another machine); what only it holds is left out`);
        continue;
      }
      if (key === 'analysis') {
        if (statSync(link).isDirectory()) readAnalysisFolder(s, path.resolve(link));
        else readJsonFile(s, path.resolve(link));
      } else if (isRunFolder(link)) readRun(s, link, false);
    }
  }
}

export function loadInputs(inputs: readonly string[], opts: LoadOptions = {}): LoadedInputs {
  const s: State = {
    out: { jobs: [], curves: [], examples: [], analyses: [], warnings: [], skipped: 0 },
    runJobs: [],
    seenRuns: new Set(),
    seenFiles: new Set(),
  };
  for (const input of inputs) readInput(s, input);
  for (const dir of opts.analysis ?? []) readInput(s, dir, '--analysis ');
  followLinks(s);
  // A run folder that a result file already describes is the same job: keep the result's record.
  const described = new Set(s.out.jobs.flatMap((j) => (j.runs.model ? [path.resolve(j.runs.model)] : [])));
  for (const job of s.runJobs) if (!described.has(job.source)) s.out.jobs.push(job);
  return s.out;
}
