import type { FastifyInstance, FastifyRequest } from 'fastify';
import { RepairRunNotFoundError, type RepairOutcome, type RepairResult } from '../../verifier/repair.js';
import type { BackfillReport } from '../../verifier/backfill.js';
import { persistentDifferences, type VerifyReport } from '../../verifier/verify.js';
import type { ReplayRound } from '../dualwrite/replayer.js';
import type { EffectiveFlags } from '../ports/flags.js';
import type { AuditAction } from '../postgres/runtime-state/audit-log.js';
import { STAGE_POLICIES, type Stage } from '../ports/stage.js';
import { adminTokenCheck } from './admin-auth.js';
import type { AdminRuntime } from './admin-runtime.js';
import { ApiError } from './errors.js';
import { heldStatus } from './held-status.js';
import {
  AUDIT_QUERY,
  GATE_QUERY,
  JOBS_QUERY,
  REASON_BODY,
  REPAIR_BODY,
  REPAIR_UNDO_BODY,
  RESYNC_BODY,
  routeSchema,
  STAGE_BODY,
} from './schemas.js';

/** Who the flags file records as having changed the stage through this API. */
export const ADMIN_PRINCIPAL = 'admin-token';

/**
 * Operators' routes under /admin, behind the bearer token (checked before anything else
 * about the request, so an unauthenticated caller learns nothing of the schemas):
 * status, stage changes, a verification run, a verification that repairs, an outbox replay
 * round, the last differences.
 */
export function adminRoutes(app: FastifyInstance, runtime: AdminRuntime, adminToken: string | undefined): void {
  const refusal = adminTokenCheck(adminToken);
  void app.register(
    async (admin) => {
      admin.addHook('onRequest', async (request, reply) => {
        const refused = refusal(request.headers.authorization);
        if (refused) {
          reply.header('www-authenticate', 'Bearer realm="dualwrite-admin"');
          throw new ApiError(401, refused);
        }
      });

      admin.get('/status', { schema: routeSchema({}) }, async () => adminStatus(runtime));

      admin.post<{
        Body: { stage: Stage; percent?: number; reason: string; force?: boolean; allowUnavailable?: boolean };
      }>('/stage', { schema: routeSchema({ body: STAGE_BODY }) }, async (request, reply) => {
        const { stage, percent, reason, force, allowUnavailable } = request.body;
        request.log.info(
          { stage, percent, reason, force, allowUnavailable, principal: ADMIN_PRINCIPAL },
          'admin: stage change requested',
        );
        // A refused change throws (409) and leaves nothing behind; once setFlags returns, the change is in force.
        const requested = await runtime.setFlags(
          { stage, readPercent: percent },
          { reason, force, allowUnavailable, ...operator(request) },
        );
        const answer: StageChange = { requested, inForce: runtime.stage.current };
        return reply.send(answer);
      });

      admin.get<{ Querystring: { stage: Stage; percent?: number } }>(
        '/gate',
        { schema: routeSchema({ querystring: GATE_QUERY }) },
        async (request) => runtime.judge({ stage: request.query.stage, readPercent: request.query.percent }),
      );

      admin.post<{ Body: { reason?: string } | undefined }>(
        '/verify',
        { schema: routeSchema({ body: REASON_BODY }) },
        async (request) => {
          const report = await runtime.verifyNow({
            reason: request.body?.reason ?? 'verification requested through the admin API',
            ...operator(request),
          });
          if (!report)
            throw new ApiError(409, `verification skipped: ${verifySkipReason(runtime.stage.current.stage)}`);
          return report;
        },
      );

      // Repairs copy the authoritative side's version onto the other, fenced (verifier/repair.ts); they change data, so they say why.
      admin.post<{ Body: { reason: string; allowDeletes?: number } }>(
        '/repair',
        { schema: routeSchema({ body: REPAIR_BODY }) },
        async (request) => {
          const { reason, allowDeletes } = request.body;
          const report = await runtime.verifyNow({ repair: true, reason, allowDeletes, ...operator(request) });
          if (!report) throw new ApiError(409, `repair skipped: ${verifySkipReason(runtime.stage.current.stage)}`);
          const answer: RepairAnswer = {
            ...report,
            repairs: repairCounts(runtime.verifier.lastRepairs),
            runId: runtime.verifier.lastRepairRunId ?? null,
          };
          return answer;
        },
      );

      admin.post<{ Body: { runId: string; reason: string } }>(
        '/repair/undo',
        { schema: routeSchema({ body: REPAIR_UNDO_BODY }) },
        async (request) => {
          try {
            return await runtime.undoRepair(request.body.runId, { reason: request.body.reason, ...operator(request) });
          } catch (error) {
            if (error instanceof RepairRunNotFoundError) throw new ApiError(404, error.message);
            throw error;
          }
        },
      );

      admin.post<{ Body: { reason?: string } | undefined }>(
        '/outbox/replay',
        { schema: routeSchema({ body: REASON_BODY }) },
        async (request) => {
          const round = await runtime.replayOutbox({
            reason: request.body?.reason ?? 'replay requested through the admin API',
            ...operator(request),
          });
          const answer: ReplayAnswer = { ...round, outbox: runtime.outbox.stats() };
          return answer;
        },
      );

      // Toward PostgreSQL (dual-write): copies what memory holds (never overwriting newer rows), then verifies and repairs.
      // Toward memory (postgres-primary): rebuilds memory from PostgreSQL and verifies, the way back after postgres-only.
      admin.post<{ Body: { reason: string; to?: 'postgres' | 'memory'; allowDeletes?: number } }>(
        '/resync',
        { schema: routeSchema({ body: RESYNC_BODY }) },
        async (request) => {
          const { reason, to = 'postgres', allowDeletes } = request.body;
          const stage = runtime.stage.current.stage;
          const needs: Stage = to === 'postgres' ? 'dual-write' : 'postgres-primary';
          if (stage !== needs)
            throw new ApiError(
              409,
              `a resync of ${to} runs in ${needs}, not in ${stage}: move there first (dualwrite stage set ${needs} --reason ...)`,
            );
          const req = { reason, ...operator(request) };
          if (to === 'memory') {
            const { verify } = await runtime.resyncMemory({ request: req });
            const answer: ResyncAnswer = { to, verify: { ...reportSummary(verify), differences: verify.differences } };
            return answer;
          }
          const { backfill, verify } = await runtime.resyncPostgres({ request: req, allowDeletes });
          const answer: ResyncAnswer = {
            to,
            backfill,
            verify: { ...reportSummary(verify), differences: verify.differences },
          };
          return answer;
        },
      );

      admin.get<{ Querystring: { limit?: number; action?: AuditAction; resourceType?: string } }>(
        '/audit',
        { schema: routeSchema({ querystring: AUDIT_QUERY }) },
        async (request) => ({
          events: await runtime.audit.list(request.query),
        }),
      );

      admin.get<{ Querystring: { limit?: number; task?: string } }>(
        '/jobs',
        { schema: routeSchema({ querystring: JOBS_QUERY }) },
        async (request) => ({
          executions: await runtime.jobs.listExecutions({ limit: request.query.limit, taskName: request.query.task }),
        }),
      );

      admin.get('/differences', { schema: routeSchema({}) }, async () => {
        const report = runtime.verifier.lastReport;
        if (!report)
          throw new ApiError(404, 'no verification has completed in this process yet (POST /admin/verify runs one)');
        return { ...reportSummary(report), differences: report.differences };
      });
    },
    { prefix: '/admin' },
  );
}

/** The principal and request of an admin call, for the audit trail. */
function operator(request: FastifyRequest): { principal: string; requestId: string; clientIp: string } {
  return { principal: ADMIN_PRINCIPAL, requestId: request.id, clientIp: request.ip };
}

/** POST /admin/resync: which side was resynced, the backfill's report (toward PostgreSQL) and the verification after it. */
export interface ResyncAnswer {
  readonly to: 'postgres' | 'memory';
  readonly backfill?: BackfillReport;
  readonly verify: ReturnType<typeof reportSummary> & { readonly differences: VerifyReport['differences'] };
}

/** GET /admin/status: everything an operator checks before and after a stage change. */
export type AdminStatus = ReturnType<typeof adminStatus>;

/** POST /admin/stage: the flags requested now and those in force (the same: a refused change is a 409). */
export interface StageChange {
  readonly requested: EffectiveFlags;
  readonly inForce: EffectiveFlags;
}

/** POST /admin/repair: the run's report (what it found), how many repairs had each outcome, and the run id that undoes them. */
export type RepairAnswer = VerifyReport & {
  readonly repairs: Record<RepairOutcome, number>;
  readonly runId: string | null;
};

/** POST /admin/outbox/replay: the round, and the outbox after it. */
export type ReplayAnswer = ReplayRound & {
  readonly outbox: { readonly depth: number; readonly oldestAgeSeconds: number };
};

/** Everything an operator checks before and after a stage change, in one answer (GET /admin/status, and the status page). */
export function adminStatus(runtime: AdminRuntime) {
  const requested = runtime.flags.current;
  const inForce = runtime.stage.current;
  const gate = runtime.stage.state;
  const lastReport = runtime.verifier.lastReport;
  return {
    stage: {
      inForce: inForce.stage,
      readPercent: inForce.readPercent,
      epoch: gate.epoch,
      refused: gate.refused ?? null,
      lastPauseMs: gate.lastPauseMs ?? null,
    },
    flags: {
      stage: requested.stage,
      readPercent: requested.readPercent,
      source: requested.source,
      refused: requested.refused ?? null,
    },
    mirror: { mode: runtime.mirror.mode, queueDepth: runtime.mirror.depth() },
    outbox: { ...runtime.outbox.stats(), ...heldStatus(runtime) },
    lastVerification: lastReport ? reportSummary(lastReport) : null,
    rollback: runtime.rollbackSafety(),
    convergence: runtime.convergence(),
    pool: runtime.db.poolStats(),
  };
}

/** A verification report without its differences: when, how long, and how many differences persisted or went away on re-check. */
function reportSummary(report: VerifyReport) {
  const count = (pick: (entity: VerifyReport['entities'][number]) => number) =>
    report.entities.reduce((sum, entity) => sum + pick(entity), 0);
  return {
    startedAt: report.startedAt,
    seconds: report.seconds,
    consistent: report.consistent,
    persistentDifferences: count(persistentDifferences),
    transientDifferences: count((entity) => entity.transient),
  };
}

/** How many repairs had each outcome (every outcome present, 0 when none). */
export function repairCounts(repairs: readonly RepairResult[]): Record<RepairOutcome, number> {
  const counts: Record<RepairOutcome, number> = { repaired: 0, skipped_newer: 0, already_equal: 0, withheld_delete: 0 };
  for (const { outcome } of repairs) counts[outcome]++;
  return counts;
}

/** Why VerifierLoop.runOnce() skipped: a stage that writes one side has nothing to compare; else another replica holds the lock. */
function verifySkipReason(stage: Stage): string {
  return STAGE_POLICIES[stage].mirror === null
    ? `only one side is written in ${stage}, so there is nothing to compare`
    : 'another process holds the verifier lock; try again after its run';
}
