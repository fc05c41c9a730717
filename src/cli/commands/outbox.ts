import type { Command } from 'commander';
import type { AdminStatus, ReplayAnswer } from '../../api/admin-routes.js';
import { AdminClient } from '../admin-client.js';
import type { Run } from '../command-runner.js';
import { EXIT } from '../exit-codes.js';
import { withAdminOptions, type AdminOptions } from '../options.js';
import { printResult } from '../output.js';
import { formatOutbox, heldLines } from '../status-report.js';

/** `dualwrite outbox show` and `dualwrite outbox replay`: the mirror writes a running process journaled for replay. */
export function addOutboxCommands(program: Command, run: Run): void {
  const outbox = program
    .command('outbox')
    .description("a running process's outbox: mirror writes journaled while their target could not take them");

  withAdminOptions(
    outbox
      .command('show')
      .description(
        'how many entries wait for replay, how old the oldest is, and those PostgreSQL refused for their data, with why',
      ),
  ).action(
    run(async (options: AdminOptions) => {
      const { body } = await AdminClient.fromOptions(options).get<AdminStatus>('/admin/status');
      printResult(options.json, { outbox: body.outbox }, (value) => formatOutbox(value.outbox));
      return EXIT.ok;
    }),
  );

  withAdminOptions(
    outbox
      .command('replay')
      .description(
        'replay one round of entries now, in journal order, retrying those refused for their data (the process also replays by itself); exit 1 when it stopped at a failure or an entry was refused',
      ),
  ).action(
    run(async (options: AdminOptions) => {
      const { body } = await AdminClient.fromOptions(options).post<ReplayAnswer>('/admin/outbox/replay');
      printResult(options.json, body, (round) =>
        [
          `replayed ${round.replayed}, dead-lettered ${round.deadLettered}`,
          ...(round.failure ? [`STOPPED: ${round.failure}`] : []),
          ...heldLines(round.held ?? []),
          formatOutbox(round.outbox),
        ].join('\n'),
      );
      return body.failure || body.held?.length ? EXIT.failed : EXIT.ok;
    }),
  );
}
