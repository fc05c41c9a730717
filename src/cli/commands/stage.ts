import { Argument, Option, type Command } from 'commander';
import type { AdminStatus, StageChange } from '../../api/admin-routes.js';
import type { GateVerdict } from '../../runtime/evidence-gate.js';
import { STAGES, type Stage } from '../../ports/stage.js';
import { AdminClient } from '../admin-client.js';
import type { Run } from '../command-runner.js';
import { CliError, EXIT } from '../exit-codes.js';
import { integerIn, nonBlank, withAdminOptions, type AdminOptions } from '../options.js';
import { printResult } from '../output.js';
import { describeStage, formatStage } from '../status-report.js';

interface ChangeOptions extends AdminOptions {
  readonly reason: string;
}

interface SetOptions extends ChangeOptions {
  readonly percent?: number;
  readonly force?: boolean;
}

interface RollbackOptions extends ChangeOptions {
  readonly to?: Stage;
  readonly allowUnavailable?: boolean;
}

/** What the CLI asks POST /admin/stage for. */
interface StageRequest {
  readonly stage: Stage;
  readonly percent?: number;
  readonly reason: string;
  readonly force?: boolean;
  readonly allowUnavailable?: boolean;
}

/**
 * `dualwrite stage show`, `dualwrite stage set` and `dualwrite rollback`: the stage of a
 * running process, through its admin API. The runtime applies a change once the writes
 * before it have landed; one that is refused (a safety rule, or PostgreSQL unreachable
 * for a barrier) exits 1 saying why.
 */
export function addStageCommands(program: Command, run: Run): void {
  const stage = program.command('stage').description('show or set the migration stage of a running process');

  withAdminOptions(
    stage.command('show').description('show the stage in force, the stage requested and why they differ, if they do'),
  ).action(
    run(async (options: AdminOptions) => {
      const { body } = await AdminClient.fromOptions(options).get<AdminStatus>('/admin/status');
      printResult(options.json, { stage: body.stage, flags: body.flags }, formatStage);
      return EXIT.ok;
    }),
  );

  withAdminOptions(
    stage
      .command('set')
      .description('request a stage; read-shift needs --percent. Exit 1 when it is refused or not in force yet')
      .addArgument(new Argument('<stage>', 'the stage to move to').choices(STAGES))
      .addOption(percentOption())
      .addOption(
        new Option('--force', 'advance even though the evidence gate refuses (recorded in the audit trail as forced)'),
      )
      .addOption(reasonOption()),
  ).action(
    run(async (target: Stage, options: SetOptions) => {
      checkPercent(target, options.percent);
      return requestStage(
        AdminClient.fromOptions(options),
        { stage: target, percent: options.percent, reason: options.reason, ...(options.force ? { force: true } : {}) },
        { json: options.json },
      );
    }),
  );

  withAdminOptions(
    stage
      .command('gate')
      .description(
        'what the evidence gate says of moving to <stage> now, check by check with its figure; exit 1 when it would refuse',
      )
      .addArgument(new Argument('<stage>', 'the stage to judge a move to').choices(STAGES))
      .addOption(percentOption()),
  ).action(
    run(async (target: Stage, options: AdminOptions & { readonly percent?: number }) => {
      checkPercent(target, options.percent);
      const query = new URLSearchParams({
        stage: target,
        ...(options.percent === undefined ? {} : { percent: String(options.percent) }),
      });
      const { body } = await AdminClient.fromOptions(options).get<GateVerdict>(`/admin/gate?${query}`);
      printResult(options.json, body, formatVerdict);
      return body.allowed ? EXIT.ok : EXIT.failed;
    }),
  );

  withAdminOptions(
    program
      .command('rollback')
      .summary('move a running process back one stage, or to --to')
      .description(
        'move a running process back one stage from the stage in force (postgres-only > postgres-primary > read-shift > dual-write > memory-only), or to --to; read-shift is rolled back to with all keyed reads still from PostgreSQL',
      )
      .addOption(new Option('--to <stage>', 'an earlier stage to go back to').choices(STAGES))
      .addOption(
        new Option(
          '--allow-unavailable',
          'back to memory during a PostgreSQL outage (async mirror): go through now; the keys whose copies toward memory could not be read from PostgreSQL answer 503 until it answers and they land (default: wait for them, refused while they cannot land)',
        ),
      )
      .addOption(reasonOption()),
  ).action(
    run(async (options: RollbackOptions) => {
      const client = AdminClient.fromOptions(options);
      const { body: status } = await client.get<AdminStatus>('/admin/status');
      const target = rollbackTarget(status.stage.inForce, options.to);
      // Reads stay where they are (all on PostgreSQL) until an operator lowers the share.
      const request = {
        stage: target,
        percent: target === 'read-shift' ? 100 : undefined,
        reason: options.reason,
        ...(options.allowUnavailable ? { allowUnavailable: true } : {}),
      };
      return requestStage(client, request, { json: options.json, saying: `rollback from ${status.stage.inForce}: ` });
    }),
  );
}

function percentOption(): Option {
  return new Option('--percent <n>', 'read-shift only: share of keyed reads sent to PostgreSQL, 0-100').argParser(
    integerIn(0, 100),
  );
}

/** read-shift needs a percentage, and no other stage takes one. */
function checkPercent(target: Stage, percent: number | undefined): void {
  if (target === 'read-shift' && percent === undefined)
    throw new CliError(EXIT.usage, 'read-shift needs --percent <n>: the share of keyed reads sent to PostgreSQL');
  if (target !== 'read-shift' && percent !== undefined)
    throw new CliError(EXIT.usage, `--percent applies to read-shift only, not to ${target}`);
}

/** The gate's verdict for people: one line per check. */
function formatVerdict(verdict: GateVerdict): string {
  if (!verdict.advance) return 'not an advance: a step back (or no move) needs no evidence';
  if (verdict.checks.length === 0) return 'allowed: starting dual-write needs no evidence';
  return [
    ...verdict.checks.map((check) => `${check.ok ? 'ok  ' : 'FAIL'} ${check.name}: ${check.detail}`),
    verdict.allowed ? 'ALLOWED' : 'REFUSED (stage set --force overrides, audited as forced)',
  ].join('\n');
}

function reasonOption(): Option {
  return new Option('--reason <text>', 'why: recorded in the flags file with the change')
    .argParser(nonBlank)
    .makeOptionMandatory();
}

/** The stage a rollback moves to: the one before `inForce`, or `to`, which must come before it. */
function rollbackTarget(inForce: Stage, to: Stage | undefined): Stage {
  const index = STAGES.indexOf(inForce);
  if (to === undefined) {
    if (index === 0) throw new CliError(EXIT.failed, `${inForce} is the first stage: there is nothing to roll back to`);
    return STAGES[index - 1]!;
  }
  if (STAGES.indexOf(to) >= index)
    throw new CliError(
      EXIT.usage,
      `--to must name a stage before ${inForce}, the stage in force (${STAGES.slice(0, index).join(', ') || 'there is none'})`,
    );
  return to;
}

/** Asks for `request` and says what is in force now (after `saying`, for people); a refusal is a 409, which exits 1 with its reason. */
async function requestStage(
  client: AdminClient,
  request: StageRequest,
  output: { readonly json?: boolean; readonly saying?: string },
): Promise<number> {
  const { body } = await client.post<StageChange>('/admin/stage', request);
  printResult(
    output.json,
    body,
    () => `${output.saying ?? ''}${describeStage(body.inForce.stage, body.inForce.readPercent)} is in force`,
  );
  return EXIT.ok;
}
