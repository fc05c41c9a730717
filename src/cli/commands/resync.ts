import { Option, type Command } from 'commander';
import type { ResyncAnswer } from '../../api/admin-routes.js';
import { AdminClient } from '../admin-client.js';
import { formatBackfillReport } from '../backfill-report.js';
import type { Run } from '../command-runner.js';
import { EXIT } from '../exit-codes.js';
import { integerIn, nonBlank, withAdminOptions, type AdminOptions } from '../options.js';
import { printResult } from '../output.js';
import { whileWaiting } from '../waiting-indicator.js';

/**
 * `dualwrite resync`: brings a running process's PostgreSQL level with its memory after
 * dual-write began on stores that already held data: backfill (never overwriting a newer
 * row), outbox replay, verification, repair (run it in dual-write); or, with `--to memory`,
 * rebuilds memory from PostgreSQL after postgres-only ran (in postgres-primary), the way
 * back. Exit 1 unless the sides end equal.
 */
export function addResyncCommand(program: Command, run: Run): void {
  withAdminOptions(
    program
      .command('resync')
      .summary("copy what a running process's memory holds into PostgreSQL, then verify and repair")
      .description(
        "in dual-write, copy everything the running process's in-memory stores hold into PostgreSQL (rows already there are kept), replay the outbox, verify, and repair what differs; exit 1 unless the sides end equal. Needed once when dual-write starts on stores that already hold data, and after memory-only ran. With --to memory, in postgres-primary: rebuild memory from PostgreSQL and verify, so that rolling back after postgres-only is allowed again",
      )
      .addOption(
        new Option('--reason <text>', 'why: recorded in the audit trail').argParser(nonBlank).makeOptionMandatory(),
      )
      .addOption(
        new Option('--to <side>', 'the side brought level with the other')
          .choices(['postgres', 'memory'])
          .default('postgres'),
      )
      .addOption(
        new Option(
          '--allow-deletes <n>',
          'toward PostgreSQL: delete up to N rows only PostgreSQL holds (default 0: they are kept and reported)',
        ).argParser(integerIn(0)),
      ),
  ).action(
    run(
      async (
        options: AdminOptions & {
          readonly reason: string;
          readonly to: 'postgres' | 'memory';
          readonly allowDeletes?: number;
        },
      ) => {
        const client = AdminClient.fromOptions(options);
        const body = {
          reason: options.reason,
          to: options.to,
          ...(options.allowDeletes !== undefined ? { allowDeletes: options.allowDeletes } : {}),
        };
        const { body: answer } = await whileWaiting(
          `resyncing ${options.to} on ${client.url}`,
          client.post<ResyncAnswer>('/admin/resync', body),
          options.json ? undefined : process.stderr,
        );
        printResult(options.json, answer, (done) =>
          [
            ...(done.backfill ? [formatBackfillReport(done.backfill)] : [`memory rebuilt from PostgreSQL`]),
            done.verify.consistent ? 'the sides are equal' : `DIFFERENCES REMAIN: ${done.verify.persistentDifferences}`,
          ].join('\n'),
        );
        return answer.verify.consistent ? EXIT.ok : EXIT.failed;
      },
    ),
  );
}
