// The HTML report: tables, figures and provenance from results folders, run folders and analyses.

export { type Analysis, analysisFiles, parseAnalysis, readAnalysis } from '../analysis/analysis-file.ts';
export { InputError } from '../data/json-fields.ts';
export { meanStd, type Stat } from '../experiments/aggregate.ts';
export { escapeHtml } from './escape.ts';
export type { Job, JobKind, Machine, Metrics } from './job.ts';
export { type LoadedInputs, loadInputs, MissingInputError } from './load.ts';
export { type PaperTable, paperTable, paperTables } from './paper-table.ts';
export {
  type BuiltReport,
  buildReport,
  buildReportFrom,
  figuresFolderName,
  type ReportOptions,
  ReportOutputError,
  type ReportPng,
  writeReport,
} from './report.ts';
export { parseResult } from './result-file.ts';
export { readRunFolder } from './run-folder.ts';
