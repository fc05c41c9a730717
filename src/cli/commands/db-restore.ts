import type { Command } from 'commander';
import { restoreBackup, type RestoreReport, type RestoreRequest } from '../../postgres/operations/restore.js';
import { poolOptionsFromEnv } from '../../runtime/config.js';
import type { Run } from '../command-runner.js';
import { EXIT } from '../exit-codes.js';
import { jsonOption, type JsonOption } from '../options.js';
import { printResult } from '../output.js';
import { dbCommandError } from './db-errors.js';

interface RestoreOptions extends JsonOption {
  readonly force?: boolean;
}

/** `dualwrite db restore FILE`: a checked backup in place of DATABASE_URL's database, the original kept aside. */
export function addDbRestoreCommand(db: Command, run: Run): void {
  db.command('restore')
    .summary('restore a checked backup through a scratch database')
    .description(
      "restore a backup in place of DATABASE_URL's database: its sha256 is checked against metadata.json beside it, it is restored into a scratch database whose row counts must match the metadata, and only then swapped in (the original renamed <db>_replaced_<time>); refused while other applications are connected, or when the database holds data without --force",
    )
    .argument('<file>', 'a .dump made by dualwrite db backup, with its metadata.json beside it')
    .option('--force', 'replace a database that holds data (it is kept aside, renamed)')
    .addOption(jsonOption())
    .action(
      run(async (file: string, options: RestoreOptions) => {
        const report = await runRestore({ database: poolOptionsFromEnv(), file, force: options.force });
        printResult(options.json, report, formatRestore);
        return EXIT.ok;
      }),
    );
}

/** restoreBackup with its errors as the CLI reports them. */
export async function runRestore(request: RestoreRequest): Promise<RestoreReport> {
  try {
    return await restoreBackup(request);
  } catch (error) {
    throw dbCommandError(error, request.database.connectionString);
  }
}

export function formatRestore(report: RestoreReport): string {
  return [
    `restored ${report.file} into ${report.database} (schema version ${report.schemaVersion})`,
    `rows: ${Object.entries(report.rowCounts)
      .map(([table, count]) => `${table} ${count}`)
      .join(', ')}`,
    ...(report.replacedKeptAs ? [`the database it replaced is kept as ${report.replacedKeptAs}`] : []),
  ].join('\n');
}
