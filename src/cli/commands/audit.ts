import { Option, type Command } from 'commander';
import type { AuditEvent } from '../../postgres/runtime-state/audit-log.js';
import { AdminClient } from '../admin-client.js';
import type { Run } from '../command-runner.js';
import { EXIT } from '../exit-codes.js';
import { integerIn, withAdminOptions, type AdminOptions } from '../options.js';
import { printResult } from '../output.js';
import { formatTable } from '../table.js';

interface AuditOptions extends AdminOptions {
  readonly limit?: number;
  readonly action?: string;
}

/** `dualwrite audit`: the rollout's audit trail of a running process (stage changes, forced advances, verifications, repairs, backfills, replays). */
export function addAuditCommand(program: Command, run: Run): void {
  withAdminOptions(
    program
      .command('audit')
      .description(
        'who moved a stage, forced an advance, verified, repaired, backfilled or replayed the outbox, and why; newest first',
      )
      .addOption(new Option('--limit <n>', 'how many events, 1-1000').argParser(integerIn(1, 1000)).default(50))
      .addOption(
        new Option(
          '--action <action>',
          'only events of this action (stage.change, stage.forced, verify.run, repair, backfill, outbox.replay, outbox.dead_letter, audit.purge)',
        ),
      ),
  ).action(
    run(async (options: AuditOptions) => {
      const query = new URLSearchParams({
        limit: String(options.limit ?? 50),
        ...(options.action ? { action: options.action } : {}),
      });
      const { body } = await AdminClient.fromOptions(options).get<{ events: AuditEvent[] }>(`/admin/audit?${query}`);
      printResult(options.json, body, ({ events }) =>
        formatTable(
          ['when', 'action', 'who', 'from', 'to', 'reason'],
          events.map((event) => [
            event.occurredAt,
            event.action,
            event.principal.username,
            event.from ?? '',
            event.to ?? '',
            event.reason ?? '',
          ]),
        ),
      );
      return EXIT.ok;
    }),
  );
}
