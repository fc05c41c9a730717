import { access } from 'node:fs/promises';
import { Option, type Command } from 'commander';
import { SqliteUnavailableError, type SqliteDatabase } from '../../sqlite/better-sqlite3.js';
import { openDispatchDatabase } from '../../stores/dispatch/sqlite-dispatch-database.js';
import { migrateSqlite, type MigrateSqliteReport } from '../../stores/dispatch/migrate-sqlite.js';
import type { Run } from '../command-runner.js';
import { openCliDatabase } from '../database.js';
import { CliError, EXIT } from '../exit-codes.js';
import { integerIn, jsonOption, type JsonOption } from '../options.js';
import { printNote, printResult } from '../output.js';
import { formatTable } from '../table.js';
import { rowProgress } from '../verify-progress.js';

interface MigrateSqliteCommandOptions extends JsonOption {
  readonly from: string;
  readonly batchSize?: number;
}

/** `dualwrite migrate-sqlite --from dispatch.db`: the dispatch app's SQLite database into PostgreSQL. */
export function addMigrateSqliteCommand(program: Command, run: Run): void {
  program
    .command('migrate-sqlite')
    .summary("copy the dispatch app's SQLite database into PostgreSQL")
    .description(
      "copy every table of the dispatch app's SQLite database (dispatch.db) into PostgreSQL (DATABASE_URL, schema 007): batched, never overwriting a row already there, so a re-run inserts nothing; rows with a cell PostgreSQL cannot hold as it is (a date or JSON that does not parse, an integer out of range) are not copied and are listed by table, key and column; then the row counts of both sides are compared and the SERIAL sequences set past the copied ids. Exit 1 when a row was invalid or the counts differ. Needs better-sqlite3 (an optional peer dependency)",
    )
    .addOption(new Option('--from <file>', 'the SQLite database file (opened read-only)').makeOptionMandatory())
    .addOption(new Option('--batch-size <n>', 'rows per INSERT (default 1000)').argParser(integerIn(1)))
    .addOption(jsonOption())
    .action(
      run(async (options: MigrateSqliteCommandOptions) => {
        const sqlite = await openSqlite(options.from);
        try {
          const { db, description } = await openCliDatabase();
          const progress = options.json ? undefined : rowProgress('migrate-sqlite');
          try {
            const report = await migrateSqlite(sqlite, db, {
              batchSize: options.batchSize,
              onProgress: progress && ((event) => progress.update(event.table, event.rowsDone, event.rows)),
            });
            progress?.finish();
            printResult(
              options.json,
              { from: options.from, database: description, ...report },
              () => `${options.from} -> ${description}\n${formatReport(report)}`,
            );
            if (!options.json) for (const line of notes(report)) printNote(line);
            return report.countsMatch && report.invalidCells.length === 0 ? EXIT.ok : EXIT.failed;
          } finally {
            await db.close();
          }
        } finally {
          sqlite.close();
        }
      }),
    );
}

async function openSqlite(path: string): Promise<SqliteDatabase> {
  try {
    await access(path);
  } catch {
    throw new CliError(EXIT.usage, `--from ${path}: no such file`);
  }
  try {
    return openDispatchDatabase(path, { readonly: true });
  } catch (error) {
    if (error instanceof SqliteUnavailableError) throw new CliError(EXIT.usage, error.message);
    throw new CliError(EXIT.usage, `--from ${path}: cannot open it as a SQLite database: ${(error as Error).message}`);
  }
}

function formatReport(report: MigrateSqliteReport): string {
  const tables = formatTable(
    ['table', 'sqlite rows', 'postgres rows', 'inserted', 'already there', 'invalid', 'counts'],
    report.tables.map((t) => [
      t.table,
      t.sqliteRows,
      t.postgresRows,
      t.inserted,
      t.alreadyPresent,
      t.invalidRows,
      t.countsMatch ? 'match' : 'DIFFER',
    ]),
  );
  if (report.invalidCells.length === 0) return tables;
  const invalid = formatTable(
    ['table', 'key', 'column', 'value', 'problem'],
    report.invalidCells.map((cell) => [
      cell.table,
      cell.key.join(', '),
      cell.column,
      cell.value === null ? 'NULL' : JSON.stringify(cell.value),
      cell.problem,
    ]),
  );
  return `${tables}\n\ninvalid cells (their rows were not copied):\n${invalid}`;
}

function notes(report: MigrateSqliteReport): string[] {
  const lines: string[] = [];
  if (report.totals.inserted === 0 && report.totals.invalidRows === 0)
    lines.push('nothing to insert: every row is already in PostgreSQL');
  if (report.totals.invalidRows > 0)
    lines.push(`${report.totals.invalidRows} rows were not copied: fix them in SQLite and run the same command again`);
  const differ = report.tables.filter((t) => !t.countsMatch).map((t) => t.table);
  if (differ.length > 0) lines.push(`row counts differ in ${differ.join(', ')}`);
  return lines;
}
