// Fastify, because it brings what this example would otherwise hand-roll: JSON-schema
// validation of params, query and body and schema-driven serialization built in, pino
// logging with redaction, and inject/listen for tests.
import { Ajv } from 'ajv';
import Fastify, {
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyRequest,
  type FastifyServerOptions,
} from 'fastify';
import type { AgentTaskStore } from '../stores/agent-task/agent-task-store.js';
import type { GraphStore } from '../stores/graph/graph-store.js';
import type { AdminRuntime } from './admin-runtime.js';
import { adminRoutes } from './admin-routes.js';
import { ApiError, errorHandler } from './errors.js';
import { graphRoutes } from './graph-routes.js';
import { opsRoutes } from './ops-routes.js';
import { StatusHistory, type StatusHistoryOptions } from './status-history.js';
import { statusRoutes } from './status-routes.js';
import { taskRoutes } from './task-routes.js';

/** Options of buildApi. */
export interface ApiOptions {
  /** The graph store the routes call (the runtime's dual-write `graph`, or any GraphStore). Required. */
  readonly graph: GraphStore;
  /** The task store the routes call (the runtime's dual-write `tasks`, or any AgentTaskStore). Required. */
  readonly tasks: AgentTaskStore;
  /**
   * The dual-write runtime behind /readyz, /metrics, /admin and /status. Default: none; then
   * /readyz checks nothing, and /metrics, /admin and /status are not served.
   */
  readonly runtime?: AdminRuntime;
  /**
   * Bearer token of the /admin routes. Default: none, and every admin request is refused
   * with 401. Never logged: the authorization header is redacted from every log line.
   */
  readonly adminToken?: string;
  /**
   * Read-only token of the status page (/status), which also takes the admin token; it opens
   * nothing else. Default: none, and only the admin token opens the page.
   */
  readonly statusToken?: string;
  /** How the status page's history samples the runtime (the runtime is the one above). Default: every 10 s, kept 1 h. */
  readonly statusHistory?: Omit<StatusHistoryOptions, 'runtime'>;
  /**
   * A pino(-compatible) logger, true for fastify's own pino on stdout, or false for none.
   * Default false. A given logger is used through a child that redacts the authorization
   * header and a `token` query parameter (GET /status?token=).
   */
  readonly logger?: FastifyBaseLogger | boolean;
  /** Longest wait for PostgreSQL's answer to /readyz's `SELECT 1`. Default 2000 ms. */
  readonly readinessTimeoutMs?: number;
}

/** Where a request's authorization header may appear in a log line. */
const REDACT = {
  paths: [
    'headers.authorization',
    'req.headers.authorization',
    'request.headers.authorization',
    'res.request.headers.authorization',
  ],
  censor: '[redacted]',
};

/** Fastify's fields of a request in the log, with a `token` query parameter redacted: GET /status?token= carries one. */
const SERIALIZERS = {
  req: (request: FastifyRequest) => ({
    method: request.method,
    url: request.url.replace(/([?&]token=)[^&#]*/gi, '$1[redacted]'),
    host: request.host,
    remoteAddress: request.ip,
    remotePort: request.socket?.remotePort,
  }),
};

/** Builds the HTTP API (not listening yet: call `listen`, or `inject` in tests). */
export function buildApi(options: ApiOptions): FastifyInstance {
  const app: FastifyInstance = Fastify(loggerOptions(options.logger));
  useStrictBodies(app);
  // The tokens are redacted from every error answer: a 500 carries the error's message.
  app.setErrorHandler(errorHandler([options.adminToken, options.statusToken]));
  app.setNotFoundHandler((request) => {
    throw new ApiError(404, `no route ${request.method} ${request.url.split('?')[0]}`);
  });
  opsRoutes(app, { runtime: options.runtime, readinessTimeoutMs: options.readinessTimeoutMs });
  graphRoutes(app, options.graph);
  taskRoutes(app, options.tasks);
  if (options.runtime) {
    adminRoutes(app, options.runtime, options.adminToken);
    const history = new StatusHistory({
      onError: (error) => app.log.warn({ err: error }, 'status page: a history sample failed'),
      ...options.statusHistory,
      runtime: options.runtime,
    });
    history.start();
    app.addHook('onClose', async () => history.stop());
    statusRoutes(app, { runtime: options.runtime, history, tokens: [options.statusToken, options.adminToken] });
  }
  return app;
}

function loggerOptions(logger: ApiOptions['logger']): FastifyServerOptions & { loggerInstance?: FastifyBaseLogger } {
  if (logger === undefined || logger === false) return { logger: false };
  if (logger === true) return { logger: { redact: REDACT, serializers: SERIALIZERS } };
  return { loggerInstance: logger.child({}, { redact: REDACT, serializers: SERIALIZERS }) };
}

/**
 * Fastify's default Ajv coerces every part and silently drops unknown properties. Here
 * the body is checked as sent (`"5"` is not a number, an unknown field is a 400 naming
 * it), while params and the query string, which arrive as text, are coerced.
 */
function useStrictBodies(app: FastifyInstance): void {
  const common = { useDefaults: true, removeAdditional: false, allErrors: false, allowUnionTypes: true } as const;
  const body = new Ajv({ ...common, coerceTypes: false });
  const textParts = new Ajv({ ...common, coerceTypes: 'array' });
  app.setValidatorCompiler(({ schema, httpPart }) => (httpPart === 'body' ? body : textParts).compile(schema));
}
