import type { Command } from 'commander';
import { repair } from '../../../verifier/repair.js';
import { repairCounts, type RepairAnswer } from '../../api/admin-routes.js';
import { AdminClient } from '../admin-client.js';
import type { Run } from '../command-runner.js';
import { withProcessOrSnapshotOptions, type ProcessOrSnapshotOptions } from '../options.js';
import { printResult } from '../output.js';
import { formatRepairs, repairExitCode } from '../repair-report.js';
import { hasSnapshots } from '../snapshot-stores.js';
import { withSnapshotVerification } from '../snapshot-verification.js';
import { formatVerifyReport } from '../verify-report.js';
import { whileWaiting } from '../waiting-indicator.js';

/** Differences a report keeps for printing, as the admin API's (the repair itself covers all of them). */
const REPORTED = 1000;

/** `dualwrite repair`: verify, then copy the authoritative version of each persistent difference. */
export function addRepairCommand(program: Command, run: Run): void {
  withProcessOrSnapshotOptions(
    program
      .command('repair')
      .summary('verify, then repair persistent differences (running process or snapshot files)')
      .description(
        "verify, then copy the authoritative side's version of every persistent difference onto the other side, fenced (a newer write is never overwritten): on a running process, or from snapshot files onto DATABASE_URL; exit 1 when a difference was left",
      ),
  ).action(
    run(async (options: ProcessOrSnapshotOptions) => {
      const answer = hasSnapshots(options) ? await repairSnapshots(options) : await repairRunningProcess(options);
      return repairExitCode(answer);
    }),
  );
}

async function repairRunningProcess(options: ProcessOrSnapshotOptions): Promise<RepairAnswer> {
  const client = AdminClient.fromOptions(options);
  const { body: answer } = await whileWaiting(`verifying and repairing ${client.url}`, client.post<RepairAnswer>('/admin/repair'), options.json ? undefined : process.stderr);
  printResult(options.json, answer, () => `${client.url}\n${formatVerifyReport(answer)}\n${formatRepairs(answer.repairs)}`);
  return answer;
}

/** The snapshot is the authoritative side: PostgreSQL is made to match it. */
function repairSnapshots(options: ProcessOrSnapshotOptions): Promise<RepairAnswer> {
  return withSnapshotVerification({ ...options, keepAll: true }, 'repair', async ({ database, db, targets, report }) => {
    const repairs = report.consistent ? [] : await repair(report.differences, { authoritative: 'memory', db, targets });
    const answer: RepairAnswer = { ...report, differences: report.differences.slice(0, REPORTED), repairs: repairCounts(repairs) };
    printResult(options.json, { database, ...answer }, () => `${database}\n${formatVerifyReport(answer)}\n${formatRepairs(answer.repairs)}`);
    return answer;
  });
}
