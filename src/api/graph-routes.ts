import type { FastifyInstance } from 'fastify';
import type {
  AssetInput,
  ContributionInput,
  ContributorInput,
  DependencyOptions,
  ProjectInput,
  ProjectRef,
} from '../stores/graph/graph-model.js';
import type { GraphStore } from '../stores/graph/graph-store.js';
import { createRoute, found, getByIdRoute, items, listByIdRoute, listRoute } from './route-helpers.js';
import {
  ASSET,
  ASSET_BODY,
  CONTRIBUTION,
  CONTRIBUTION_BODY,
  CONTRIBUTOR,
  CONTRIBUTOR_BODY,
  COUNT,
  DEPENDENCY_BODY,
  DEPENDENCY_EDGE,
  listOf,
  PROJECT,
  PROJECT_BODY,
  PROJECT_PARAMS,
  routeSchema,
  SEARCH_QUERY,
} from './schemas.js';

/**
 * Projects, dependencies, contributors, assets and contributions. Each route is one call
 * of the GraphStore interface, so a 4xx from the store means nothing was written.
 */
export function graphRoutes(app: FastifyInstance, graph: GraphStore): void {
  app.get<{ Params: ProjectRef }>(
    '/projects/:ecosystem/:name',
    { schema: routeSchema({ params: PROJECT_PARAMS, response: { 200: PROJECT } }) },
    async (request) =>
      found(await graph.getProject(request.params), 'project', `${request.params.ecosystem}/${request.params.name}`),
  );
  app.put<{ Params: ProjectRef; Body: Omit<ProjectInput, 'ecosystem' | 'name'> | null }>(
    '/projects/:ecosystem/:name',
    { schema: routeSchema({ params: PROJECT_PARAMS, body: PROJECT_BODY, response: { 200: PROJECT } }) },
    async (request) => graph.upsertProject({ ...request.body, ...request.params }),
  );
  app.get<{ Querystring: { q: string; limit?: number } }>(
    '/projects',
    { schema: routeSchema({ querystring: SEARCH_QUERY, response: { 200: listOf(PROJECT) } }) },
    async (request) => items(await graph.search(request.query.q, request.query.limit)),
  );
  app.get('/projects/count', { schema: routeSchema({ response: { 200: COUNT } }) }, async () => ({
    count: await graph.countProjects(),
  }));
  app.post<{ Params: ProjectRef; Body: { to: ProjectRef } & DependencyOptions }>(
    '/projects/:ecosystem/:name/dependencies',
    // 200, not 201: adding an existing edge returns it unchanged, and the store does not say which happened.
    { schema: routeSchema({ params: PROJECT_PARAMS, body: DEPENDENCY_BODY, response: { 200: DEPENDENCY_EDGE } }) },
    async (request) => {
      const { to, ...options } = request.body;
      return graph.addDependency(request.params, to, options);
    },
  );
  app.get<{ Params: ProjectRef }>(
    '/projects/:ecosystem/:name/dependents/count',
    { schema: routeSchema({ params: PROJECT_PARAMS, response: { 200: COUNT } }) },
    async (request) => ({
      count: await graph.countDependents(request.params),
    }),
  );

  createRoute<ContributorInput>(app, '/contributors', { body: CONTRIBUTOR_BODY, response: CONTRIBUTOR }, (input) =>
    graph.createContributor(input),
  );
  getByIdRoute(app, '/contributors/:id', CONTRIBUTOR, (id) => graph.getContributor(id));
  listRoute(app, '/contributors', CONTRIBUTOR, (limit) => graph.listContributors(limit));
  listByIdRoute(app, '/contributors/:id/contributions', CONTRIBUTION, (id) => graph.listContributionsByContributor(id));

  createRoute<AssetInput>(app, '/assets', { body: ASSET_BODY, response: ASSET }, (input) => graph.createAsset(input));
  getByIdRoute(app, '/assets/:id', ASSET, (id) => graph.getAsset(id));
  listRoute(app, '/assets', ASSET, (limit) => graph.listAssets(limit));
  listByIdRoute(app, '/assets/:id/contributions', CONTRIBUTION, (id) => graph.listContributionsByAsset(id));

  createRoute<ContributionInput>(app, '/contributions', { body: CONTRIBUTION_BODY, response: CONTRIBUTION }, (input) =>
    graph.createContribution(input),
  );
  getByIdRoute(app, '/contributions/:id', CONTRIBUTION, (id) => graph.getContribution(id));
}
