import { randomUUID } from 'node:crypto';
import { Option, type Command } from 'commander';
import { repair, type UndoResult } from '../../../verifier/repair.js';
import { repairCounts, type RepairAnswer } from '../../api/admin-routes.js';
import { AdminClient } from '../admin-client.js';
import type { Run } from '../command-runner.js';
import { CliError, EXIT } from '../exit-codes.js';
import {
  integerIn,
  nonBlank,
  withAdminOptions,
  withProcessOrSnapshotOptions,
  type AdminOptions,
  type ProcessOrSnapshotOptions,
} from '../options.js';
import { printResult } from '../output.js';
import { formatRepairs, repairExitCode } from '../repair-report.js';
import { hasSnapshots } from '../snapshot-stores.js';
import { withSnapshotVerification } from '../snapshot-verification.js';
import { formatVerifyReport } from '../verify-report.js';
import { whileWaiting } from '../waiting-indicator.js';

/** Differences a report keeps for printing, as the admin API's (the repair itself covers all of them). */
const REPORTED = 1000;

type RepairOptions = ProcessOrSnapshotOptions & { readonly reason: string; readonly allowDeletes?: number };

/** `dualwrite repair`: verify, then copy the authoritative version of each persistent difference; `repair undo` puts a run's changes back. */
export function addRepairCommand(program: Command, run: Run): void {
  const command = withProcessOrSnapshotOptions(
    program
      .command('repair')
      // Options after `undo` are undo's own (its --reason), not repair's; its own --reason is checked in the action,
      // as commander would also demand a mandatory one of `repair undo`.
      .enablePositionalOptions()
      .summary('verify, then repair persistent differences (running process or snapshot files)')
      .description(
        "verify, then copy the authoritative side's version of every persistent difference onto the other side, fenced (a newer write is never overwritten): on a running process, or from snapshot files onto DATABASE_URL. A record the authoritative side lacks is deleted from the other only with --allow-deletes at least their number; exit 1 when a difference was left",
      )
      .addOption(reasonOption().makeOptionMandatory(false))
      .addOption(
        new Option(
          '--allow-deletes <n>',
          'delete up to N records that only the non-authoritative side holds (default 0: none is deleted, and the command says how many would be)',
        ).argParser(integerIn(0)),
      ),
  ).action(
    run(async (options: RepairOptions) => {
      if (options.reason === undefined)
        throw new CliError(
          EXIT.usage,
          "required option '--reason <text>' not specified: a repair changes data, say why",
        );
      const answer = hasSnapshots(options) ? await repairSnapshots(options) : await repairRunningProcess(options);
      return repairExitCode(answer);
    }),
  );
  withAdminOptions(
    command
      .command('undo')
      .argument('<run-id>', 'the run id a repair printed (also in dualwrite audit --action repair)')
      .summary('put back what a repair run changed on a running process')
      .description(
        'restore each record a repair run changed to what it was before, where nothing has written it since (newer writes are kept); audited',
      )
      .addOption(reasonOption()),
  ).action(
    run(async (runId: string, options: AdminOptions & { readonly reason: string }) => {
      const client = AdminClient.fromOptions(options);
      const { body } = await client.post<UndoResult>('/admin/repair/undo', { runId, reason: options.reason });
      printResult(
        options.json,
        body,
        (undo) =>
          `undid ${undo.undone} repairs of run ${runId}${undo.skippedNewer > 0 ? `; ${undo.skippedNewer} records were written since and were kept` : ''} (undo run ${undo.runId})`,
      );
      return body.skippedNewer === 0 ? EXIT.ok : EXIT.failed;
    }),
  );
}

function reasonOption(): Option {
  return new Option('--reason <text>', 'why: recorded with each repair and in the audit trail')
    .argParser(nonBlank)
    .makeOptionMandatory();
}

async function repairRunningProcess(options: RepairOptions): Promise<RepairAnswer> {
  const client = AdminClient.fromOptions(options);
  const request = client.post<RepairAnswer>('/admin/repair', {
    reason: options.reason,
    ...(options.allowDeletes !== undefined ? { allowDeletes: options.allowDeletes } : {}),
  });
  const { body: answer } = await whileWaiting(
    `verifying and repairing ${client.url}`,
    request,
    options.json ? undefined : process.stderr,
  );
  printResult(options.json, answer, () =>
    [formatVerifyReport(answer), formatRepairs(answer.repairs, answer.runId)].join('\n'),
  );
  return answer;
}

/** The snapshot is the authoritative side: PostgreSQL is made to match it. */
function repairSnapshots(options: RepairOptions): Promise<RepairAnswer> {
  return withSnapshotVerification(
    { ...options, keepAll: true },
    'repair',
    async ({ database, db, targets, report }) => {
      const runId = randomUUID();
      const repairs = report.consistent
        ? []
        : await repair(report.differences, {
            authoritative: 'memory',
            db,
            targets,
            runId,
            reason: options.reason,
            allowDeletes: options.allowDeletes,
          });
      const answer: RepairAnswer = {
        ...report,
        differences: report.differences.slice(0, REPORTED),
        repairs: repairCounts(repairs),
        runId: repairs.length > 0 ? runId : null,
      };
      printResult(
        options.json,
        { database, ...answer },
        () => `${database}\n${formatVerifyReport(answer)}\n${formatRepairs(answer.repairs, answer.runId)}`,
      );
      return answer;
    },
  );
}
