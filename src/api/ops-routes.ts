import type { FastifyInstance } from 'fastify';
import { STAGE_POLICIES, type Stage } from '../ports/stage.js';
import type { AdminRuntime } from './admin-runtime.js';
import { ANY_QUERY, routeSchema } from './schemas.js';
import { withTimeout } from '../shared/with-timeout.js';

/** Options of the probe and metrics routes. */
export interface OpsRouteOptions {
  /** The runtime to probe and scrape. Without one, /readyz checks nothing and /metrics is not served. */
  readonly runtime?: AdminRuntime;
  /** Longest wait for PostgreSQL's answer to the readiness query. Default 2000 ms. */
  readonly readinessTimeoutMs?: number;
}

/** What readiness found: every check by name with its outcome, and the names of those that failed. */
export interface Readiness {
  readonly ready: boolean;
  readonly stage?: Stage;
  readonly failing: readonly string[];
  readonly checks: Readonly<Record<string, string>>;
}

/**
 * Whether the process cannot serve without PostgreSQL: only while PostgreSQL is
 * authoritative. While memory is, mirror writes are journaled and PostgreSQL reads fall
 * back to memory, so a PostgreSQL outage is no reason to take the (only) replica out of
 * rotation; the outbox metrics and alerts say it.
 */
export function stageNeedsPostgres(stage: Stage): boolean {
  return STAGE_POLICIES[stage].authoritative === 'postgres';
}

/** /healthz (the process runs), /readyz (its dependencies answer) and /metrics (Prometheus text). */
export function opsRoutes(app: FastifyInstance, options: OpsRouteOptions): void {
  const { runtime } = options;
  const timeoutMs = options.readinessTimeoutMs ?? 2000;
  const probeSchema = routeSchema({ querystring: ANY_QUERY });

  app.get('/healthz', { schema: probeSchema }, async () => ({ status: 'ok' }));

  app.get('/readyz', { schema: probeSchema }, async (request, reply) => {
    const readiness: Readiness = runtime
      ? await checkReadiness(runtime, timeoutMs, (check, error) =>
          request.log.warn({ err: error, check }, 'readiness check failed'),
        )
      : { ready: true, failing: [], checks: {} };
    const { ready, ...found } = readiness;
    return reply.status(ready ? 200 : 503).send({ status: ready ? 'ready' : 'not ready', ...found });
  });

  if (runtime) {
    const { registry } = runtime.metrics;
    app.get('/metrics', { schema: probeSchema }, async (_request, reply) =>
      reply.type(registry.contentType).send(await registry.metrics()),
    );
  }
}

/**
 * PostgreSQL answers `SELECT 1` within `timeoutMs` when the stage in force needs it, and
 * the outbox's stats can be read. Failures are reported by name only (the details, which
 * may name hosts, go to `onFailure` for the log), since the probe is unauthenticated.
 */
export async function checkReadiness(
  runtime: AdminRuntime,
  timeoutMs: number,
  onFailure: (check: string, error: unknown) => void,
): Promise<Readiness> {
  const stage = runtime.stage.current.stage;
  const checks: Record<string, string> = {};
  const failing: string[] = [];
  const check = async (name: string, failed: string, probe: () => unknown) => {
    try {
      await probe();
      checks[name] = 'ok';
    } catch (error) {
      onFailure(name, error);
      checks[name] = failed;
      failing.push(name);
    }
  };
  if (stageNeedsPostgres(stage)) {
    await check('postgres', 'unreachable', () =>
      withTimeout(runtime.db.query('SELECT 1'), timeoutMs, () => {
        throw new Error(`no answer within ${timeoutMs} ms`);
      }),
    );
  } else checks.postgres = `not needed in ${stage}`;
  await check('outbox', 'unreadable', () => runtime.outbox.stats());
  return { ready: failing.length === 0, stage, failing, checks };
}
