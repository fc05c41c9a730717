import { Option, type Command } from 'commander';
import type { ResyncAnswer } from '../../api/admin-routes.js';
import { AdminClient } from '../admin-client.js';
import { formatBackfillReport } from '../backfill-report.js';
import type { Run } from '../command-runner.js';
import { EXIT } from '../exit-codes.js';
import { nonBlank, withAdminOptions, type AdminOptions } from '../options.js';
import { printResult } from '../output.js';
import { whileWaiting } from '../waiting-indicator.js';

/**
 * `dualwrite resync`: brings a running process's PostgreSQL level with its memory after
 * dual-write began on stores that already held data: backfill (never overwriting a newer
 * row), outbox replay, verification, repair. Run it in dual-write; exit 1 unless the sides
 * end equal.
 */
export function addResyncCommand(program: Command, run: Run): void {
  withAdminOptions(
    program
      .command('resync')
      .summary("copy what a running process's memory holds into PostgreSQL, then verify and repair")
      .description(
        "in dual-write, copy everything the running process's in-memory stores hold into PostgreSQL (rows already there are kept), replay the outbox, verify, and repair what differs; exit 1 unless the sides end equal. Needed once when dual-write starts on stores that already hold data, and after memory-only ran",
      )
      .addOption(new Option('--reason <text>', 'why: recorded in the audit trail').argParser(nonBlank).makeOptionMandatory()),
  ).action(
    run(async (options: AdminOptions & { readonly reason: string }) => {
      const client = AdminClient.fromOptions(options);
      const { body } = await whileWaiting(`resyncing ${client.url}`, client.post<ResyncAnswer>('/admin/resync', { reason: options.reason }), options.json ? undefined : process.stderr);
      printResult(options.json, body, (answer) =>
        [`${client.url}`, formatBackfillReport(answer.backfill), answer.verify.consistent ? 'the sides are equal' : `DIFFERENCES REMAIN: ${answer.verify.persistentDifferences}`].join('\n'),
      );
      return body.verify.consistent ? EXIT.ok : EXIT.failed;
    }),
  );
}
