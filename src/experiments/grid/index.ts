// Experiment grids (docs/scale-out.md): a grid file (grid-file.ts) expands to a manifest of jobs with stable
// ids (manifest.ts); the scheduler (scheduler.ts) runs a shard of them, each in a worker process
// (worker.ts) that writes one result file (result.ts) into a results folder; the store (store.ts) indexes
// a results folder into SQLite and store-table.ts prints it in the paper's layout.
//
//   const manifest = expandGrid(loadGrid('grids/tiny.yaml'));
//   await runGrid({ manifest, results: 'results', work: 'results/work', workers: 2 });
//   collectResults('results', 'results.sqlite');
export { type Grid, GridError, loadGrid, parseGrid } from './grid-file.ts';
export { canonicalJson, expandGrid, jobId, type Manifest, type ManifestJob, parseShard, type Shard, shardJobs } from './manifest.ts';
export { type JobResult, readResult, resultProblem } from './result.ts';
export { formatDuration, type RunGridOptions, type RunGridSummary, runGrid } from './scheduler.ts';
export { type CollectSummary, collectResults, type Filter, parseFilters, queryResults, StoreError } from './store.ts';
export { paperCsv, paperTable, paperText, rowsCsv, rowsText } from './store-table.ts';
