import type { FastifyInstance } from 'fastify';
import type { AdminRuntime } from './admin-runtime.js';
import { ApiError } from './errors.js';
import { routeSchema, strictObject } from './schemas.js';
import { STATUS_ASSETS } from './status-assets.js';
import { statusPageAuthentication } from './status-auth.js';
import { statusData } from './status-data.js';
import type { StatusHistory } from './status-history.js';
import { STATUS_PAGE_CSP, STATUS_PAGE_HTML } from './status-page-html.js';

/** Options of the status page's routes. */
export interface StatusRouteOptions {
  /** The runtime whose state the page shows. Required. */
  readonly runtime: AdminRuntime;
  /** Its recent past, sampled by the caller. Required. */
  readonly history: StatusHistory;
  /** Tokens that open the page: the read-only status token and the admin token (unset ones are left out). Required. */
  readonly tokens: readonly (string | undefined)[];
}

/**
 * The status page (GET /status), the figures it draws (GET /status/data) and the files it
 * loads (GET /status/assets/...), open to the status token and the admin token (how a
 * person's browser presents them: statusPageAuthentication).
 */
export function statusRoutes(app: FastifyInstance, options: StatusRouteOptions): void {
  const { runtime, history } = options;
  const authenticate = statusPageAuthentication(options.tokens);

  void app.register(async (status) => {
    status.addHook('onRequest', authenticate);

    status.get(
      '/status',
      { schema: routeSchema({ querystring: strictObject({ token: { type: 'string' } }) }) },
      async (_request, reply) =>
        reply
          .type('text/html; charset=utf-8')
          .header('content-security-policy', STATUS_PAGE_CSP)
          .send(STATUS_PAGE_HTML),
    );

    status.get('/status/data', { schema: routeSchema({}) }, async (request) =>
      statusData(runtime, history, request.log),
    );

    status.get<{ Params: { file: string } }>(
      '/status/assets/:file',
      { schema: routeSchema({ params: strictObject({ file: { type: 'string' } }, ['file']) }) },
      async (request, reply) => {
        const asset = STATUS_ASSETS.get(request.params.file);
        if (!asset) throw new ApiError(404, `no status page asset ${request.params.file}`);
        return reply.type(asset.type).send(await asset.read());
      },
    );
  });
}
