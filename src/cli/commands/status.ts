import type { Command } from 'commander';
import type { AdminStatus } from '../../api/admin-routes.js';
import { AdminClient } from '../admin-client.js';
import type { Run } from '../command-runner.js';
import { EXIT } from '../exit-codes.js';
import { withAdminOptions, type AdminOptions } from '../options.js';
import { printResult } from '../output.js';
import { formatStatus } from '../status-report.js';

/** `dualwrite status`: what an operator checks before and after a stage change. */
export function addStatusCommand(program: Command, run: Run): void {
  withAdminOptions(
    program
      .command('status')
      .description(
        'show a running process: stage in force and requested, mirror, outbox, last verification, connection pool',
      ),
  ).action(
    run(async (options: AdminOptions) => {
      const { body } = await AdminClient.fromOptions(options).get<AdminStatus>('/admin/status');
      printResult(options.json, body, formatStatus);
      return EXIT.ok;
    }),
  );
}
