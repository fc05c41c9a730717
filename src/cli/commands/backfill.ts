import { Option, type Command } from 'commander';
import { backfill } from '../../../verifier/backfill.js';
import { createProgressReporter } from '../../../verifier/progress.js';
import { formatBackfillReport } from '../backfill-report.js';
import type { Run } from '../command-runner.js';
import { cliPrincipal, openCliDatabase } from '../database.js';
import { AuditLog } from '../../postgres/runtime-state/audit-log.js';
import { EXIT } from '../exit-codes.js';
import { abortOnInterrupt } from '../interrupt.js';
import { integerIn, jsonOption, snapshotFileOptions, type JsonOption, type SnapshotOptions } from '../options.js';
import { printNote, printResult } from '../output.js';
import { backfillStores, loadSnapshots } from '../snapshot-stores.js';

interface BackfillCommandOptions extends SnapshotOptions, JsonOption {
  readonly batchSize?: number;
  readonly restart?: boolean;
}

/** `dualwrite backfill`: snapshot files into PostgreSQL, resumable after Ctrl-C. */
export function addBackfillCommand(program: Command, run: Run): void {
  const command = program
    .command('backfill')
    .summary('copy snapshot files into PostgreSQL (resumable)')
    .description(
      'copy snapshot files of the in-memory stores into PostgreSQL (DATABASE_URL): batched, resumable, never overwriting a row already there; exit 1 when the counts differ. Ctrl-C stops after the batch in flight (exit 130): run the same command again to resume',
    );
  for (const option of snapshotFileOptions()) command.addOption(option);
  command
    .addOption(
      new Option('--batch-size <n>', 'records per batch, each one transaction (default 5000)').argParser(integerIn(1)),
    )
    .addOption(new Option('--restart', 'ignore the checkpoints of an earlier run and copy from the first record again'))
    .addOption(jsonOption())
    .action(
      run(async (options: BackfillCommandOptions) => {
        const stores = await loadSnapshots(options, 'backfill');
        const { db, description } = await openCliDatabase();
        const progress = options.json ? undefined : createProgressReporter();
        const interrupt = abortOnInterrupt('stopping after the batch in flight');
        try {
          const report = await backfill({
            stores: backfillStores(stores),
            db,
            batchSize: options.batchSize,
            restart: options.restart,
            onProgress: progress?.onProgress,
            signal: interrupt.signal,
          });
          progress?.finish();
          await new AuditLog(db).record({
            action: 'backfill',
            resourceType: 'backfill',
            resourceId: report.entities.map((entity) => `${entity.store}.${entity.entity}`).join(','),
            principal: cliPrincipal(),
            reason: 'dualwrite backfill from snapshot files',
            data: {
              copied: report.totals.copied,
              scanned: report.totals.scanned,
              countsMatch: report.countsMatch,
              interrupted: report.interrupted,
            },
          });
          printResult(
            options.json,
            { database: description, ...report },
            () => `${description}\n${formatBackfillReport(report)}`,
          );
          if (report.interrupted) {
            printNote(
              `interrupted after ${report.totals.scanned.toLocaleString('en-US')} rows; run the same command again${options.restart ? ' without --restart' : ''} to resume`,
            );
            return EXIT.interrupted;
          }
          return report.countsMatch ? EXIT.ok : EXIT.failed;
        } finally {
          interrupt.dispose();
          await db.close();
        }
      }),
    );
}
