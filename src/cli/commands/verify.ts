import type { Command } from 'commander';
import type { VerifyReport } from '../../../verifier/verify.js';
import { AdminClient } from '../admin-client.js';
import type { Run } from '../command-runner.js';
import { EXIT } from '../exit-codes.js';
import { withProcessOrSnapshotOptions, type ProcessOrSnapshotOptions } from '../options.js';
import { printResult } from '../output.js';
import { hasSnapshots } from '../snapshot-stores.js';
import { withSnapshotVerification } from '../snapshot-verification.js';
import { formatVerifyReport } from '../verify-report.js';
import { whileWaiting } from '../waiting-indicator.js';

/** `dualwrite verify`: memory against PostgreSQL, on a running process or from snapshot files. */
export function addVerifyCommand(program: Command, run: Run): void {
  withProcessOrSnapshotOptions(
    program
      .command('verify')
      .summary('compare memory with PostgreSQL (running process or snapshot files)')
      .description(
        "compare memory with PostgreSQL: a running process's (through its admin API) or, given snapshot files, the files with DATABASE_URL; exit 1 when they differ",
      ),
  ).action(
    run(async (options: ProcessOrSnapshotOptions) => {
      const report = hasSnapshots(options) ? await verifySnapshots(options) : await verifyRunningProcess(options);
      return report.consistent ? EXIT.ok : EXIT.failed;
    }),
  );
}

async function verifyRunningProcess(options: ProcessOrSnapshotOptions): Promise<VerifyReport> {
  const client = AdminClient.fromOptions(options);
  const { body: report } = await whileWaiting(
    `verifying ${client.url}`,
    client.post<VerifyReport>('/admin/verify'),
    options.json ? undefined : process.stderr,
  );
  printResult(options.json, report, () => `${client.url}\n${formatVerifyReport(report)}`);
  return report;
}

function verifySnapshots(options: ProcessOrSnapshotOptions): Promise<VerifyReport> {
  return withSnapshotVerification(options, 'verify', async ({ database, report }) => {
    printResult(options.json, { database, ...report }, () => `${database}\n${formatVerifyReport(report)}`);
    return report;
  });
}
