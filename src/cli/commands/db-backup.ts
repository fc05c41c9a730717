import { Option, type Command } from 'commander';
import { createBackup } from '../../postgres/operations/backup.js';
import { applyRetention } from '../../postgres/operations/backup-retention.js';
import { poolOptionsFromEnv } from '../../runtime/config.js';
import type { Run } from '../command-runner.js';
import { EXIT } from '../exit-codes.js';
import { integerIn, jsonOption, type JsonOption } from '../options.js';
import { printResult } from '../output.js';
import { dbCommandError } from './db-errors.js';

interface BackupOptions extends JsonOption {
  readonly dir: string;
  readonly keep?: number;
  readonly keepDays?: number;
}

/** `dualwrite db backup`: pg_dump of DATABASE_URL's database into --dir, recorded in metadata.json, then the retention policy. */
export function addDbBackupCommand(db: Command, run: Run): void {
  db.command('backup')
    .summary('pg_dump to a folder, recorded in metadata.json, with retention')
    .description(
      "dump DATABASE_URL's database (pg_dump --format=custom) to DIR/<db>-<timestamp>.dump and record it in DIR/metadata.json (time, schema version, size, sha256, server version, row counts); then delete the backups --keep and --keep-days do not keep",
    )
    .requiredOption('--dir <dir>', 'folder of the backups and their metadata.json (created if missing)')
    .addOption(new Option('--keep <n>', 'keep the newest N backups').argParser(integerIn(1)))
    .addOption(new Option('--keep-days <d>', 'keep the backups younger than D days').argParser(integerIn(1)))
    .addOption(jsonOption())
    .action(
      run(async (options: BackupOptions) => {
        const pool = poolOptionsFromEnv();
        let entry;
        try {
          entry = await createBackup({ database: pool, dir: options.dir });
        } catch (error) {
          throw dbCommandError(error, pool.connectionString);
        }
        const deleted = await applyRetention(options.dir, { keep: options.keep, keepDays: options.keepDays });
        const result = { dir: options.dir, backup: entry, deleted: deleted.map((old) => old.file) };
        printResult(options.json, result, (r) =>
          [
            `backed up to ${r.dir}/${r.backup.file}: ${r.backup.sizeBytes} bytes, sha256 ${r.backup.sha256}, schema version ${r.backup.schemaVersion}`,
            `rows: ${Object.entries(r.backup.rowCounts)
              .map(([table, count]) => `${table} ${count}`)
              .join(', ')}`,
            `retention deleted ${r.deleted.length}${r.deleted.length ? `: ${r.deleted.join(', ')}` : ''}`,
          ].join('\n'),
        );
        return EXIT.ok;
      }),
    );
}
