// The HTML report: tables, figures and provenance from results folders, run folders and analyses.
export { meanStd, type PaperTable, paperTable, paperTables, type Stat } from './aggregate.ts';
export { type Analysis, analysisFiles, parseAnalysis, readAnalysis } from './analysis-file.ts';
export { escapeHtml } from './escape.ts';
export type { Job, JobKind, Machine, Metrics } from './job.ts';
export { type LoadedInputs, loadInputs, MissingInputError } from './load.ts';
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
export { InputError } from './validate.ts';
