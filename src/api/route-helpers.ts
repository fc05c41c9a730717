import type { FastifyInstance } from 'fastify';
import { NotFoundError } from '../domain/errors.js';
import { ID_PARAMS, LIMIT_QUERY, listOf, routeSchema } from './schemas.js';

type Schema = Readonly<Record<string, unknown>>;

/** The record, or a 404 naming the key that was looked up. */
export function found<T>(record: T | null, field: string, key: string): T {
  if (record === null) throw new NotFoundError(field, key);
  return record;
}

/** Lists are wrapped, so a page can grow fields (a cursor) without breaking clients. */
export function items<T>(list: readonly T[]): { items: readonly T[] } {
  return { items: list };
}

/** POST `path`: one store call creates the record from the body; 201 with it. */
export function createRoute<Body>(
  app: FastifyInstance,
  path: string,
  schemas: { body: Schema; response: Schema },
  create: (body: Body) => Promise<unknown>,
): void {
  app.post<{ Body: Body }>(
    path,
    { schema: routeSchema({ body: schemas.body, response: { 201: schemas.response } }) },
    async (request, reply) => {
      const created = await create(request.body as Body);
      return reply.status(201).send(created);
    },
  );
}

/** GET `path` with an `:id`: the record, or 404. */
export function getByIdRoute(
  app: FastifyInstance,
  path: string,
  response: Schema,
  get: (id: string) => Promise<unknown>,
): void {
  app.get<{ Params: { id: string } }>(
    path,
    { schema: routeSchema({ params: ID_PARAMS, response: { 200: response } }) },
    async (request) => found(await get(request.params.id), 'id', request.params.id),
  );
}

/** GET `path` with an `:id` whose records are listed (an unknown id lists none, as the store answers). */
export function listByIdRoute(
  app: FastifyInstance,
  path: string,
  item: Schema,
  list: (id: string) => Promise<readonly unknown[]>,
): void {
  app.get<{ Params: { id: string } }>(
    path,
    { schema: routeSchema({ params: ID_PARAMS, response: { 200: listOf(item) } }) },
    async (request) => items(await list(request.params.id)),
  );
}

/** GET `path?limit=`: a page of records, newest first (the store's default limit when absent). */
export function listRoute(
  app: FastifyInstance,
  path: string,
  item: Schema,
  list: (limit: number | undefined) => Promise<readonly unknown[]>,
): void {
  app.get<{ Querystring: { limit?: number } }>(
    path,
    { schema: routeSchema({ querystring: LIMIT_QUERY, response: { 200: listOf(item) } }) },
    async (request) => items(await list(request.query.limit)),
  );
}
