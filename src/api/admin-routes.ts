import type { FastifyInstance } from 'fastify';
import type { VerifyReport } from '../../verifier/verify.js';
import { STAGE_POLICIES, type Stage } from '../ports/stage.js';
import { adminTokenCheck } from './admin-auth.js';
import type { AdminRuntime } from './admin-runtime.js';
import { ApiError } from './errors.js';
import { NO_BODY, routeSchema, STAGE_BODY } from './schemas.js';

/** Who the flags file records as having changed the stage through this API. */
export const ADMIN_PRINCIPAL = 'admin-token';

/**
 * Operators' routes under /admin, behind the bearer token (checked before anything else
 * about the request, so an unauthenticated caller learns nothing of the schemas):
 * status, stage changes, a verification run, an outbox replay round, the last differences.
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

      admin.get('/status', { schema: routeSchema({}) }, async () => status(runtime));

      admin.post<{ Body: { stage: Stage; percent?: number; reason: string } }>('/stage', { schema: routeSchema({ body: STAGE_BODY }) }, async (request, reply) => {
        const { stage, percent, reason } = request.body;
        request.log.info({ stage, percent, reason, principal: ADMIN_PRINCIPAL }, 'admin: stage change requested');
        const requested = await runtime.setFlags({ stage, readPercent: percent }, { reason, principal: ADMIN_PRINCIPAL });
        const state = await runtime.stage.settled();
        const inForce = runtime.stage.current;
        // 202 while the requested stage is not in force yet (its transition was refused and is retried).
        const applied = inForce.stage === requested.stage && inForce.readPercent === requested.readPercent;
        return reply.status(applied ? 200 : 202).send({ requested, inForce, refused: state.refused ?? null });
      });

      admin.post('/verify', { schema: routeSchema({ body: NO_BODY }) }, async () => {
        const report = await runtime.verifier.runOnce();
        if (!report) throw new ApiError(409, `verification skipped: ${verifySkipReason(runtime.stage.current.stage)}`);
        return report;
      });

      admin.post('/outbox/replay', { schema: routeSchema({ body: NO_BODY }) }, async () => {
        const round = await runtime.replayer.replayOnce();
        return { ...round, outbox: runtime.outbox.stats() };
      });

      admin.get('/differences', { schema: routeSchema({}) }, async () => {
        const report = runtime.verifier.lastReport;
        if (!report) throw new ApiError(404, 'no verification has completed in this process yet (POST /admin/verify runs one)');
        return { ...reportSummary(report), differences: report.differences };
      });
    },
    { prefix: '/admin' },
  );
}

/** Everything an operator checks before and after a stage change, in one answer. */
function status(runtime: AdminRuntime) {
  const requested = runtime.flags.current;
  const inForce = runtime.stage.current;
  const gate = runtime.stage.state;
  const lastReport = runtime.verifier.lastReport;
  return {
    stage: { inForce: inForce.stage, readPercent: inForce.readPercent, epoch: gate.epoch, refused: gate.refused ?? null, lastPauseMs: gate.lastPauseMs ?? null },
    flags: { stage: requested.stage, readPercent: requested.readPercent, source: requested.source, refused: requested.refused ?? null },
    mirror: { mode: runtime.mirror.mode, queueDepth: runtime.mirror.depth() },
    outbox: runtime.outbox.stats(),
    lastVerification: lastReport ? reportSummary(lastReport) : null,
    pool: runtime.db.poolStats(),
  };
}

/** A verification report without its differences: when, how long, and how many differences persisted or went away on re-check. */
function reportSummary(report: VerifyReport) {
  const count = (pick: (entity: VerifyReport['entities'][number]) => number) => report.entities.reduce((sum, entity) => sum + pick(entity), 0);
  return {
    startedAt: report.startedAt,
    seconds: report.seconds,
    consistent: report.consistent,
    persistentDifferences: count((entity) => entity.differences.missing_in_postgres + entity.differences.missing_in_memory + entity.differences.fields_differ),
    transientDifferences: count((entity) => entity.transient),
  };
}

/** Why VerifierLoop.runOnce() skipped: a stage that writes one side has nothing to compare; else another replica holds the lock. */
function verifySkipReason(stage: Stage): string {
  return STAGE_POLICIES[stage].mirror === null
    ? `only one side is written in ${stage}, so there is nothing to compare`
    : 'another process holds the verifier lock; try again after its run';
}
