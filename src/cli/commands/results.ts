// kwshield results: tables from a results database (kwshield grid collect): the paper's layout (rows
// model x attack, a column group per defense setting with ASR and CA, mean ± std over seeds, n) or one
// row per job; as text, CSV or JSON.
import { Command } from '@commander-js/extra-typings';
import { type Filter, parseFilters, queryResults, StoreError } from '../../experiments/grid/store.ts';
import { paperCsv, paperTable, paperText, rowsCsv, rowsText } from '../../experiments/grid/store-table.ts';
import { collect } from '../args.ts';
import { UsageError } from '../output.ts';

export function resultsCommand(): Command {
  return new Command('results')
    .description("tables of collected results: the paper's layout or one row per job")
    .requiredOption('--db <file>', 'the SQLite file written by kwshield grid collect')
    .option('--where <key=value>', 'keep rows whose column equals the value (repeatable; v1,v2 for any of several), e.g. model=resnet', collect, [] as string[])
    .option('--layout <layout>', 'paper | rows', 'paper')
    .option('--format <format>', 'table | csv | json', 'table')
    .option('--json', 'the same as --format json')
    .action((o) => {
      if (o.layout !== 'paper' && o.layout !== 'rows') throw new UsageError(`--layout must be paper or rows, got '${o.layout}'`);
      const format = o.json ? 'json' : o.format;
      if (!['table', 'csv', 'json'].includes(format)) throw new UsageError(`--format must be table, csv or json, got '${format}'`);
      let filters: Filter[];
      try {
        filters = parseFilters(o.where);
      } catch (e) {
        if (e instanceof StoreError) throw new UsageError(e.message);
        throw e;
      }
      const rows = queryResults(o.db, filters);
      let text: string;
      if (o.layout === 'rows') text = format === 'json' ? JSON.stringify({ layout: 'rows', rows }) : format === 'csv' ? rowsCsv(rows) : rowsText(rows);
      else {
        const table = paperTable(rows);
        text = format === 'json' ? JSON.stringify(table) : format === 'csv' ? paperCsv(table) : paperText(table);
      }
      process.stdout.write(`${text}\n`);
    });
}
