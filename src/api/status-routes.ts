import { createHmac } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type { FastifyBaseLogger, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import {
  elapsedMs,
  executionSummary,
  type ExecutionState,
  type TriggerType,
} from '../stores/task-scheduler/task-scheduler-model.js';
import type { MigrationFlags } from '../ports/flags.js';
import type { AuditAction } from '../postgres/runtime-state/audit-log.js';
import { STAGES, type Stage } from '../ports/stage.js';
import type { GateVerdict } from '../runtime/evidence-gate.js';
import { bearerToken, tokenCheck, type TokenRefusals } from './admin-auth.js';
import type { AdminRuntime } from './admin-runtime.js';
import { adminStatus, type AdminStatus } from './admin-routes.js';
import { ApiError } from './errors.js';
import { routeSchema, strictObject } from './schemas.js';
import type { StatusHistory, StatusHistorySnapshot } from './status-history.js';
import { persistentDifferences } from '../../verifier/verify.js';

/** Options of the status page's routes. */
export interface StatusRouteOptions {
  /** The runtime whose state the page shows. Required. */
  readonly runtime: AdminRuntime;
  /** Its recent past, sampled by the caller. Required. */
  readonly history: StatusHistory;
  /** Tokens that open the page: the read-only status token and the admin token (unset ones are left out). Required. */
  readonly tokens: readonly (string | undefined)[];
}

/** Read percentages of read-shift's steps, in order; after the last comes postgres-primary. */
export const READ_SHIFT_STEPS = [10, 25, 50, 100] as const;

/** Audit events the page lists, newest first. */
const AUDIT_EVENTS_SHOWN = 20;
/** Background job runs the page lists, newest first. */
const JOBS_SHOWN = 20;

/** Holds the page's credential; sent only to /status and below. */
const COOKIE_NAME = 'dualwrite_status';
/** A shift's length: afterwards the page asks for its token again. */
const COOKIE_MAX_AGE_SECONDS = 12 * 60 * 60;

const REFUSALS: TokenRefusals = {
  disabled: 'the status page is disabled: neither a status token nor an admin token is configured',
  missing:
    'the status page needs a token: open /status?token=<status or admin token>, or send Authorization: Bearer <token>',
  wrong:
    'the token is wrong, or the page was opened with a token that has since changed: open /status?token=<token> again',
};

/** GET /status/data: everything the page draws. */
export interface StatusData {
  readonly generatedAt: string;
  /** Stage in force and requested, mirror, outbox, last verification, pool: what GET /admin/status answers. */
  readonly status: AdminStatus;
  /** The next move toward PostgreSQL from the stage in force and the evidence gate's verdict on it now; null at postgres-only. */
  readonly nextStep: (NextStep & { readonly verdict: GateVerdict }) | null;
  /** The last verification's figures per entity (empty before the first one). */
  readonly consistency: readonly EntityConsistency[];
  readonly history: StatusHistorySnapshot;
  /** The newest audit events; `unavailable` says why there are none when the trail could not be read. */
  readonly audit: { readonly events: readonly AuditRow[]; readonly unavailable?: string };
  /** The newest background job runs (verifier, outbox replay rounds that did work, retention); `unavailable` says why there are none when they could not be read. */
  readonly jobs: { readonly executions: readonly JobRow[]; readonly unavailable?: string };
}

export interface NextStep {
  readonly stage: Stage;
  /** Only in read-shift. */
  readonly readPercent?: number;
}

export interface EntityConsistency {
  readonly store: string;
  readonly entity: string;
  readonly consistencyRatio: number;
  readonly persistentDifferences: number;
  readonly transientDifferences: number;
  readonly rowsMemory: number;
  readonly rowsPostgres: number;
}

export interface JobRow {
  readonly id: string;
  readonly task: string;
  readonly state: ExecutionState;
  readonly trigger: TriggerType;
  readonly startedAt: string | null;
  /** Its duration once ended, else how long it has run so far. */
  readonly durationMs: number;
  readonly progress: number;
  /** One line: the error of a run that did not succeed, else its result. */
  readonly summary: string;
  /** Whether the stored result was cut at 64 KB. */
  readonly resultTruncated: boolean;
}

export interface AuditRow {
  readonly occurredAt: string;
  readonly action: AuditAction;
  readonly who: string;
  readonly from: string | null;
  readonly to: string | null;
  readonly reason: string | null;
}

/**
 * The status page (GET /status), the figures it draws (GET /status/data) and the files it
 * loads (GET /status/assets/...), open to the status token and the admin token.
 *
 * A browser cannot send a bearer header when a person opens a link, so GET /status?token=
 * trades a valid token for an HttpOnly, SameSite=Strict cookie and redirects to /status
 * without it (out of the address bar and history); the cookie holds an HMAC of the token,
 * not the token, so it opens nothing but this page. Every other request needs that cookie
 * or `Authorization: Bearer <token>`. The request log redacts the token in the query
 * string (buildApi's serializer).
 */
export function statusRoutes(app: FastifyInstance, options: StatusRouteOptions): void {
  const { runtime, history } = options;
  const checkBearer = tokenCheck(options.tokens, REFUSALS);
  const checkCookie = tokenCheck(
    options.tokens.map((token) => token && cookieValue(token)),
    REFUSALS,
  );
  const refuse = (reply: FastifyReply, refusal: string) => {
    reply.header('www-authenticate', 'Bearer realm="dualwrite-status"');
    return new ApiError(401, refusal);
  };

  void app.register(async (status) => {
    status.addHook('onRequest', async (request, reply) => {
      const offered = pageTokenOffered(request);
      if (offered !== undefined) {
        const refused = checkBearer(offered);
        if (refused) throw refuse(reply, refused);
        return reply
          .header('set-cookie', sessionCookie(cookieValue(offered), request.protocol === 'https'))
          .header('cache-control', 'no-store')
          .header('referrer-policy', 'no-referrer')
          .redirect('/status', 303);
      }
      const bearer = bearerToken(request.headers.authorization);
      const refused =
        bearer !== undefined ? checkBearer(bearer) : checkCookie(cookie(request.headers.cookie, COOKIE_NAME));
      if (refused) throw refuse(reply, refused);
      reply
        .header('cache-control', 'no-store')
        .header('referrer-policy', 'no-referrer')
        .header('x-content-type-options', 'nosniff');
    });

    status.get(
      '/status',
      { schema: routeSchema({ querystring: strictObject({ token: { type: 'string' } }) }) },
      async (_request, reply) =>
        reply
          .type('text/html; charset=utf-8')
          // Everything the page loads comes from this server; nothing inline runs.
          .header(
            'content-security-policy',
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
          )
          .send(STATUS_PAGE_HTML),
    );

    status.get('/status/data', { schema: routeSchema({}) }, async (request) =>
      statusData(runtime, history, request.log),
    );

    status.get<{ Params: { file: string } }>(
      '/status/assets/:file',
      { schema: routeSchema({ params: strictObject({ file: { type: 'string' } }, ['file']) }) },
      async (request, reply) => {
        const asset = ASSETS.get(request.params.file);
        if (!asset) throw new ApiError(404, `no status page asset ${request.params.file}`);
        return reply.type(asset.type).send(await asset.read());
      },
    );
  });
}

/** What the status page draws, now. */
async function statusData(runtime: AdminRuntime, history: StatusHistory, log: FastifyBaseLogger): Promise<StatusData> {
  const next = nextStep(runtime.stage.current);
  const [verdict, audit, jobs] = await Promise.all([
    next ? runtime.judge(next) : undefined,
    auditRows(runtime, log),
    jobRows(runtime, log),
  ]);
  return {
    generatedAt: new Date().toISOString(),
    status: adminStatus(runtime),
    nextStep: next && verdict ? { ...next, verdict } : null,
    consistency: (runtime.verifier.lastReport?.entities ?? []).map((entity) => ({
      store: entity.store,
      entity: entity.entity,
      consistencyRatio: entity.consistencyRatio,
      persistentDifferences: persistentDifferences(entity),
      transientDifferences: entity.transient,
      rowsMemory: entity.rowsMemory,
      rowsPostgres: entity.rowsPostgres,
    })),
    history: history.snapshot(),
    audit,
    jobs,
  };
}

/** The newest audit events as the page lists them. */
async function auditRows(runtime: AdminRuntime, log: FastifyBaseLogger): Promise<StatusData['audit']> {
  const events = await readOrUnavailable(
    'the audit trail',
    () => runtime.audit.list({ limit: AUDIT_EVENTS_SHOWN }),
    log,
  );
  if ('unavailable' in events) return { events: [], unavailable: events.unavailable };
  return {
    events: events.map((event) => ({
      occurredAt: event.occurredAt,
      action: event.action,
      who: event.principal.username,
      from: event.from ?? null,
      to: event.to ?? null,
      reason: event.reason ?? null,
    })),
  };
}

/** The newest background job runs as the page lists them. */
async function jobRows(runtime: AdminRuntime, log: FastifyBaseLogger): Promise<StatusData['jobs']> {
  const executions = await readOrUnavailable(
    'the background jobs',
    () => runtime.jobs.listExecutions({ limit: JOBS_SHOWN }),
    log,
  );
  if ('unavailable' in executions) return { executions: [], unavailable: executions.unavailable };
  const now = new Date().toISOString();
  return {
    executions: executions.map((execution) => ({
      id: execution.id,
      task: execution.taskName,
      state: execution.state,
      trigger: execution.triggerType,
      startedAt: execution.startedAt,
      durationMs: elapsedMs(execution, now),
      progress: execution.progress,
      summary: executionSummary(execution),
      resultTruncated: execution.resultTruncated,
    })),
  };
}

/** What `read` gives, or why it could not be read; the rest of the page is shown when PostgreSQL cannot be read. */
async function readOrUnavailable<T>(
  what: string,
  read: () => Promise<T[]>,
  log: FastifyBaseLogger,
): Promise<T[] | { readonly unavailable: string }> {
  try {
    return await read();
  } catch (error) {
    // The reason may name hosts: it goes to the log, not to the page.
    log.warn({ err: error }, `status page: ${what} could not be read`);
    return { unavailable: `${what} could not be read (PostgreSQL did not answer; see the log)` };
  }
}

/**
 * The next move toward PostgreSQL from `inForce`: the next stage, and in read-shift the
 * next percentage (10, 25, 50, 100, then postgres-primary); undefined at postgres-only.
 */
export function nextStep(inForce: Pick<MigrationFlags, 'stage' | 'readPercent'>): NextStep | undefined {
  if (inForce.stage === 'read-shift') {
    const readPercent = READ_SHIFT_STEPS.find((step) => step > inForce.readPercent);
    return readPercent === undefined ? { stage: 'postgres-primary' } : { stage: 'read-shift', readPercent };
  }
  const stage = STAGES[STAGES.indexOf(inForce.stage) + 1];
  if (stage === undefined) return undefined;
  return stage === 'read-shift' ? { stage, readPercent: READ_SHIFT_STEPS[0] } : { stage };
}

/** The token a person offers in GET /status?token=, to trade for the page's cookie. */
function pageTokenOffered(request: FastifyRequest): string | undefined {
  if (request.method !== 'GET' || request.url.split('?')[0] !== '/status') return undefined;
  const { token } = request.query as { token?: unknown };
  return typeof token === 'string' ? token : undefined;
}

/** What the page's cookie holds for `token`: a value that stands for it on this page only, and cannot be used as a bearer token. */
function cookieValue(token: string): string {
  return createHmac('sha256', token).update('dualwrite status page').digest('base64url');
}

function sessionCookie(value: string, secure: boolean): string {
  return `${COOKIE_NAME}=${value}; Path=/status; Max-Age=${COOKIE_MAX_AGE_SECONDS}; HttpOnly; SameSite=Strict${secure ? '; Secure' : ''}`;
}

/** The value of cookie `name` in a Cookie header, or undefined. */
function cookie(header: string | undefined, name: string): string | undefined {
  for (const pair of (header ?? '').split(';')) {
    const separator = pair.indexOf('=');
    if (separator > 0 && pair.slice(0, separator).trim() === name) return pair.slice(separator + 1).trim();
  }
  return undefined;
}

/** A file the page loads: read once, when first asked for. */
interface Asset {
  readonly type: string;
  read(): Promise<Buffer>;
}

function asset(path: string, type: string): Asset {
  let content: Promise<Buffer> | undefined;
  return {
    type,
    read: () => {
      // A failed read is tried again on the next request rather than remembered.
      content ??= readFile(path).catch((error: unknown) => {
        content = undefined;
        throw error;
      });
      return content;
    },
  };
}

const fromPackage = createRequire(import.meta.url);
const pageFile = (name: string) => fileURLToPath(new URL(`./status-page/${name}`, import.meta.url));

/** uPlot from its package (no CDN: the page works on a closed network), and the page's own script and style. */
const ASSETS: ReadonlyMap<string, Asset> = new Map([
  ['uPlot.iife.min.js', asset(fromPackage.resolve('uplot/dist/uPlot.iife.min.js'), 'text/javascript; charset=utf-8')],
  ['uPlot.min.css', asset(fromPackage.resolve('uplot/dist/uPlot.min.css'), 'text/css; charset=utf-8')],
  ['status.js', asset(pageFile('status.js'), 'text/javascript; charset=utf-8')],
  ['status.css', asset(pageFile('status.css'), 'text/css; charset=utf-8')],
]);

/** The page's shell: src/api/status-page/status.js fills it from /status/data. */
const STATUS_PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>dualwrite status</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/status/assets/uPlot.min.css">
<link rel="stylesheet" href="/status/assets/status.css">
<script src="/status/assets/uPlot.iife.min.js" defer></script>
<script src="/status/assets/status.js" defer></script>
</head>
<body>
<header>
  <h1>dualwrite <span id="stage" class="stage">…</span></h1>
  <p id="flags" class="flags">loading…</p>
  <p id="problem" class="problem" hidden></p>
</header>
<main>
  <section id="next" aria-labelledby="next-title">
    <h2 id="next-title">Next step</h2>
    <p id="next-verdict"></p>
    <ul id="next-checks" class="checks"></ul>
  </section>
  <section id="now" aria-labelledby="now-title">
    <h2 id="now-title">Now</h2>
    <dl id="now-figures" class="figures"></dl>
  </section>
  <section id="consistency" aria-labelledby="consistency-title">
    <h2 id="consistency-title">Consistency at the last verification</h2>
    <p id="consistency-summary"></p>
    <table>
      <thead><tr><th>store</th><th>entity</th><th>consistency</th><th>persistent differences</th><th>transient</th><th>rows memory</th><th>rows PostgreSQL</th></tr></thead>
      <tbody id="consistency-rows"></tbody>
    </table>
  </section>
  <section id="charts" aria-labelledby="charts-title">
    <h2 id="charts-title">The last hour <small id="charts-note"></small></h2>
    <div class="chart-grid">
      <figure class="chart" id="chart-differences"><figcaption>Persistent differences per entity, by verification</figcaption></figure>
      <figure class="chart" id="chart-outbox"><figcaption>Outbox: depth and oldest entry's age (s)</figcaption></figure>
      <figure class="chart" id="chart-mirror"><figcaption>Mirror queue depth</figcaption></figure>
      <figure class="chart" id="chart-latency"><figcaption>Latency per side: p50, p95, p99 (ms, log scale)</figcaption></figure>
      <figure class="chart" id="chart-errors"><figcaption>Error rate per side (%)</figcaption></figure>
      <figure class="chart" id="chart-reads"><figcaption>Reads per second by the side that answered</figcaption></figure>
    </div>
  </section>
  <section id="jobs" aria-labelledby="jobs-title">
    <h2 id="jobs-title">Background jobs <small>(last ${JOBS_SHOWN} runs)</small></h2>
    <p id="jobs-unavailable" class="problem" hidden></p>
    <table>
      <thead><tr><th>task</th><th>state</th><th>started</th><th>duration</th><th>progress</th><th>result</th></tr></thead>
      <tbody id="jobs-rows"></tbody>
    </table>
  </section>
  <section id="audit" aria-labelledby="audit-title">
    <h2 id="audit-title">Audit trail <small>(last ${AUDIT_EVENTS_SHOWN} events)</small></h2>
    <p id="audit-unavailable" class="problem" hidden></p>
    <table>
      <thead><tr><th>time</th><th>action</th><th>who</th><th>from</th><th>to</th><th>reason</th></tr></thead>
      <tbody id="audit-rows"></tbody>
    </table>
  </section>
</main>
<footer><span id="updated"></span></footer>
</body>
</html>
`;
