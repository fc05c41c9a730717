import { describe, expect, it } from 'vitest';
import { availableBackends, useBackend } from '../support/backends.js';
import { useApiHarness, type ApiHarness, type RequestOptions } from './api-harness.js';

/**
 * The store routes over real HTTP, on a dual-write runtime on embedded PGlite: every
 * route's happy path (the answer is what both sides hold), and every refusal (the status,
 * the field named, and neither side changed).
 */

const CONTRIBUTOR = '10000000-0000-4000-8000-000000000001';
const ASSET = '20000000-0000-4000-8000-000000000001';
const CONTRIBUTION = '30000000-0000-4000-8000-000000000001';
const TASK = 'task_seeded';
const UNKNOWN_UUID = '90000000-0000-4000-8000-000000000009';

/** One record of each kind, written through the API, for the refusals to refer to. */
async function seed(h: ApiHarness): Promise<void> {
  const writes: [string, string, unknown][] = [
    ['PUT', '/projects/npm/react', { description: 'UI library' }],
    ['PUT', '/projects/npm/app', {}],
    ['POST', '/contributors', { id: CONTRIBUTOR, name: 'Ada' }],
    ['POST', '/assets', { id: ASSET, name: 'Docs', assetType: 'doc' }],
    [
      'POST',
      '/contributions',
      { id: CONTRIBUTION, contributorId: CONTRIBUTOR, assetId: ASSET, costAmount: '1.50', coherenceScore: 0.5 },
    ],
    ['POST', '/tasks', { id: TASK, direction: 'd', taskType: 'impl', model: 'm', command: 'c' }],
  ];
  for (const [method, path, body] of writes) expect((await h.call(method, path, { body })).status).toBeLessThan(300);
}

/** The record as both sides hold it must be what the API answered. */
async function expectOnBothSides(
  h: ApiHarness,
  read: (stores: ApiHarness['rt']['memory'] | ApiHarness['rt']['postgres']) => Promise<unknown>,
  answered: unknown,
): Promise<void> {
  await h.rt.mirror.settled();
  expect(await read(h.rt.memory)).toEqual(answered);
  expect(await read(h.rt.postgres)).toEqual(answered);
}

interface Refusal {
  readonly name: string;
  readonly method: string;
  readonly path: string;
  readonly options?: RequestOptions;
  readonly status: number;
  readonly field?: string;
}

const task = (fields: Record<string, unknown> = {}) => ({
  direction: 'd',
  taskType: 'impl',
  model: 'm',
  command: 'c',
  ...fields,
});
const contribution = (fields: Record<string, unknown> = {}) => ({
  contributorId: CONTRIBUTOR,
  assetId: ASSET,
  costAmount: '1.00',
  coherenceScore: '0.50',
  ...fields,
});

const REFUSALS: readonly Refusal[] = [
  // 400: the JSON schema.
  {
    name: 'a project field of the wrong type',
    method: 'PUT',
    path: '/projects/npm/x',
    options: { body: { description: 5 } },
    status: 400,
    field: 'description',
  },
  {
    name: 'an unknown project field',
    method: 'PUT',
    path: '/projects/npm/x',
    options: { body: { colour: 'red' } },
    status: 400,
    field: 'colour',
  },
  {
    name: 'a project body that is not an object',
    method: 'PUT',
    path: '/projects/npm/x',
    options: { body: [1] },
    status: 400,
    field: 'body',
  },
  {
    name: 'malformed JSON',
    method: 'PUT',
    path: '/projects/npm/x',
    options: { body: '{"description":' },
    status: 400,
    field: 'body',
  },
  {
    name: 'a dependency without to',
    method: 'POST',
    path: '/projects/npm/app/dependencies',
    options: { body: {} },
    status: 400,
    field: 'to',
  },
  {
    name: 'a dependency target without a name',
    method: 'POST',
    path: '/projects/npm/app/dependencies',
    options: { body: { to: { ecosystem: 'npm' } } },
    status: 400,
    field: 'to.name',
  },
  { name: 'a search without q', method: 'GET', path: '/projects', status: 400, field: 'q' },
  {
    name: 'a limit that is not an integer',
    method: 'GET',
    path: '/projects?q=r&limit=ten',
    status: 400,
    field: 'limit',
  },
  { name: 'an unknown query parameter', method: 'GET', path: '/contributors?page=2', status: 400, field: 'page' },
  {
    name: 'a contributor without a name',
    method: 'POST',
    path: '/contributors',
    options: { body: {} },
    status: 400,
    field: 'name',
  },
  {
    name: 'contributor metadata that is not an object',
    method: 'POST',
    path: '/contributors',
    options: { body: { name: 'a', metadata: 'x' } },
    status: 400,
    field: 'metadata',
  },
  {
    name: 'an asset without a type',
    method: 'POST',
    path: '/assets',
    options: { body: { name: 'a' } },
    status: 400,
    field: 'assetType',
  },
  {
    name: 'a cost that is neither string nor number',
    method: 'POST',
    path: '/contributions',
    options: { body: contribution({ costAmount: true }) },
    status: 400,
    field: 'costAmount',
  },
  {
    name: 'an unknown task type',
    method: 'POST',
    path: '/tasks',
    options: { body: task({ taskType: 'dance' }) },
    status: 400,
    field: 'taskType',
  },
  {
    name: 'a task without a command',
    method: 'POST',
    path: '/tasks',
    options: { body: { direction: 'd', taskType: 'impl', model: 'm' } },
    status: 400,
    field: 'command',
  },
  {
    name: 'a progress sent as a string (bodies are not coerced)',
    method: 'PATCH',
    path: `/tasks/${TASK}`,
    options: { body: { progressPct: '50' } },
    status: 400,
    field: 'progressPct',
  },
  {
    name: 'a task field that cannot be patched',
    method: 'PATCH',
    path: `/tasks/${TASK}`,
    options: { body: { createdAt: '2020-01-01T00:00:00.000Z' } },
    status: 400,
    field: 'createdAt',
  },
  {
    name: 'an unknown task status in a list',
    method: 'GET',
    path: '/tasks?status=asleep',
    status: 400,
    field: 'status',
  },
  // 400: the stores' own rules.
  {
    name: 'a homepage URL over 500 characters',
    method: 'PUT',
    path: '/projects/npm/x',
    options: { body: { homepageUrl: 'h'.repeat(501) } },
    status: 400,
    field: 'homepageUrl',
  },
  {
    name: 'a project depending on itself',
    method: 'POST',
    path: '/projects/npm/app/dependencies',
    options: { body: { to: { ecosystem: 'NPM', name: 'App' } } },
    status: 400,
    field: 'to',
  },
  { name: 'a search limit over 1000', method: 'GET', path: '/projects?q=r&limit=1001', status: 400, field: 'limit' },
  {
    name: 'a blank contributor name',
    method: 'POST',
    path: '/contributors',
    options: { body: { name: '  ' } },
    status: 400,
    field: 'name',
  },
  {
    name: 'a contributor id that is not a UUID',
    method: 'POST',
    path: '/contributors',
    options: { body: { id: 'ada', name: 'Ada' } },
    status: 400,
    field: 'id',
  },
  { name: 'a contributor looked up by a non-UUID', method: 'GET', path: '/contributors/ada', status: 400, field: 'id' },
  {
    name: 'a cost with more decimals than cents',
    method: 'POST',
    path: '/contributions',
    options: { body: contribution({ costAmount: '1.005' }) },
    status: 400,
    field: 'costAmount',
  },
  {
    name: 'a coherence score above 1',
    method: 'POST',
    path: '/contributions',
    options: { body: contribution({ coherenceScore: 2 }) },
    status: 400,
    field: 'coherenceScore',
  },
  {
    name: 'a progress above 100',
    method: 'PATCH',
    path: `/tasks/${TASK}`,
    options: { body: { progressPct: 150 } },
    status: 400,
    field: 'progressPct',
  },
  { name: 'a negative task list offset', method: 'GET', path: '/tasks?offset=-1', status: 400, field: 'offset' },
  {
    name: 'a timestamp that is not ISO-8601',
    method: 'POST',
    path: '/assets',
    options: { body: { name: 'a', assetType: 't', at: 'yesterday' } },
    status: 400,
    field: 'at',
  },
  // 404.
  { name: 'an unknown project', method: 'GET', path: '/projects/npm/nope', status: 404, field: 'project' },
  { name: 'an unknown contributor', method: 'GET', path: `/contributors/${UNKNOWN_UUID}`, status: 404, field: 'id' },
  { name: 'an unknown asset', method: 'GET', path: `/assets/${UNKNOWN_UUID}`, status: 404, field: 'id' },
  { name: 'an unknown contribution', method: 'GET', path: `/contributions/${UNKNOWN_UUID}`, status: 404, field: 'id' },
  { name: 'an unknown task', method: 'GET', path: '/tasks/task_nope', status: 404, field: 'id' },
  {
    name: 'a patch of an unknown task',
    method: 'PATCH',
    path: '/tasks/task_nope',
    options: { body: { status: 'running' } },
    status: 404,
    field: 'id',
  },
  {
    name: 'a dependency of an unknown project',
    method: 'POST',
    path: '/projects/npm/nope/dependencies',
    options: { body: { to: { ecosystem: 'npm', name: 'react' } } },
    status: 404,
    field: 'from',
  },
  {
    name: 'a dependency on an unknown project',
    method: 'POST',
    path: '/projects/npm/app/dependencies',
    options: { body: { to: { ecosystem: 'npm', name: 'nope' } } },
    status: 404,
    field: 'to',
  },
  {
    name: 'a contribution of an unknown contributor',
    method: 'POST',
    path: '/contributions',
    options: { body: contribution({ contributorId: UNKNOWN_UUID }) },
    status: 404,
    field: 'contributorId',
  },
  {
    name: 'a contribution to an unknown asset',
    method: 'POST',
    path: '/contributions',
    options: { body: contribution({ assetId: UNKNOWN_UUID }) },
    status: 404,
    field: 'assetId',
  },
  { name: 'an unknown route', method: 'GET', path: '/nothing/here', status: 404 },
  // 409 (a failed compare-and-set has a test of its own below).
  {
    name: 'a contributor id taken',
    method: 'POST',
    path: '/contributors',
    options: { body: { id: CONTRIBUTOR, name: 'Bob' } },
    status: 409,
    field: 'id',
  },
  {
    name: 'an asset id taken',
    method: 'POST',
    path: '/assets',
    options: { body: { id: ASSET, name: 'Other', assetType: 'doc' } },
    status: 409,
    field: 'id',
  },
  {
    name: 'a contribution id taken',
    method: 'POST',
    path: '/contributions',
    options: { body: contribution({ id: CONTRIBUTION }) },
    status: 409,
    field: 'id',
  },
  {
    name: 'a task id taken',
    method: 'POST',
    path: '/tasks',
    options: { body: task({ id: TASK }) },
    status: 409,
    field: 'id',
  },
  {
    name: 'a forbidden transition (pending to completed)',
    method: 'PATCH',
    path: `/tasks/${TASK}`,
    options: { body: { status: 'completed' } },
    status: 409,
    field: 'status',
  },
];

for (const factory of availableBackends(['pglite'])) {
  describe(`store routes over HTTP, dual-write on ${factory.name}`, () => {
    const backend = useBackend(factory);
    const api = useApiHarness(backend);

    it('projects: upsert, get, search, count, dependencies and dependents', async () => {
      const h = await api.open();
      const react = await h.call('PUT', '/projects/NPM/React', {
        body: { description: 'A UI Library', homepageUrl: 'https://react.dev' },
      });
      expect(react.status).toBe(200);
      expect(react.body).toMatchObject({
        ecosystem: 'npm',
        name: 'react',
        description: 'A UI Library',
        dependencyCount: 0,
        repositoryUrl: null,
      });
      await expectOnBothSides(h, (side) => side.graph.getProject({ ecosystem: 'npm', name: 'react' }), react.body);
      expect((await h.call('PUT', '/projects/npm/app', { body: {} })).status).toBe(200);

      expect(await h.call('GET', '/projects/npm/react')).toMatchObject({ status: 200, body: react.body });
      expect((await h.call('GET', '/projects?q=ui%20lib')).body).toEqual({ items: [react.body] });
      expect((await h.call('GET', '/projects?q=a&limit=1')).body.items).toHaveLength(1);
      expect((await h.call('GET', '/projects/count')).body).toEqual({ count: 2 });

      const edge = await h.call('POST', '/projects/npm/app/dependencies', {
        body: { to: { ecosystem: 'npm', name: 'React' }, at: '2024-05-01T10:00:00.000Z' },
      });
      expect(edge).toMatchObject({
        status: 200,
        body: {
          from: { ecosystem: 'npm', name: 'app' },
          to: { ecosystem: 'npm', name: 'react' },
          createdAt: '2024-05-01T10:00:00.000Z',
        },
      });
      expect(
        (await h.call('POST', '/projects/npm/app/dependencies', { body: { to: { ecosystem: 'npm', name: 'react' } } }))
          .body,
      ).toEqual(edge.body);
      expect((await h.call('GET', '/projects/npm/react/dependents/count')).body).toEqual({ count: 1 });
      expect((await h.call('GET', '/projects/npm/app')).body.dependencyCount).toBe(1);
      await expectOnBothSides(h, (side) => side.graph.countDependents({ ecosystem: 'npm', name: 'react' }), 1);
    });

    it('contributors, assets and contributions: create, get, list', async () => {
      const h = await api.open();
      const ada = await h.call('POST', '/contributors', {
        body: { name: 'Ada', email: 'ada@example.org', metadata: { b: 1, a: [true] } },
      });
      expect(ada.status).toBe(201);
      expect(ada.body).toMatchObject({
        name: 'Ada',
        email: 'ada@example.org',
        metadata: { a: [true], b: 1 },
        githubUsername: null,
      });
      await expectOnBothSides(h, (side) => side.graph.getContributor(ada.body.id), ada.body);
      expect(await h.call('GET', `/contributors/${ada.body.id}`)).toMatchObject({ status: 200, body: ada.body });
      await h.call('POST', '/contributors', { body: { name: 'Bob' } });
      expect(
        (await h.call('GET', '/contributors?limit=5')).body.items.map((c: { name: string }) => c.name).sort(),
      ).toEqual(['Ada', 'Bob']);
      expect((await h.call('GET', '/contributors?limit=1')).body.items).toHaveLength(1);

      const docs = await h.call('POST', '/assets', { body: { name: 'Docs', assetType: 'doc', description: null } });
      expect(docs).toMatchObject({
        status: 201,
        body: { name: 'Docs', assetType: 'doc', totalCost: '0.00', metadata: {} },
      });
      expect(await h.call('GET', `/assets/${docs.body.id}`)).toMatchObject({ status: 200, body: docs.body });
      expect((await h.call('GET', '/assets')).body).toEqual({ items: [docs.body] });

      const paid = await h.call('POST', '/contributions', {
        body: { contributorId: ada.body.id, assetId: docs.body.id, costAmount: 12.3, coherenceScore: '0.9' },
      });
      expect(paid).toMatchObject({ status: 201, body: { costAmount: '12.30', coherenceScore: '0.90', metadata: {} } });
      await expectOnBothSides(h, (side) => side.graph.getContribution(paid.body.id), paid.body);
      expect(await h.call('GET', `/contributions/${paid.body.id}`)).toMatchObject({ status: 200, body: paid.body });
      expect((await h.call('GET', `/contributors/${ada.body.id}/contributions`)).body).toEqual({ items: [paid.body] });
      expect((await h.call('GET', `/assets/${docs.body.id}/contributions`)).body).toEqual({ items: [paid.body] });
      expect((await h.call('GET', `/assets/${UNKNOWN_UUID}/contributions`)).body).toEqual({ items: [] });
      const asset = await h.call('GET', `/assets/${docs.body.id}`);
      expect(asset.body.totalCost).toBe('12.30');
      await expectOnBothSides(h, (side) => side.graph.getAsset(docs.body.id), asset.body);
    });

    it('tasks: create, get, patch with and without compare-and-set, list, attention, counts', async () => {
      const h = await api.open();
      const created = await h.call('POST', '/tasks', {
        body: {
          direction: 'fix the build',
          taskType: 'heal',
          model: 'm1',
          command: 'npm test',
          context: { pr: 7 },
          tier: 'gold',
        },
      });
      expect(created).toMatchObject({
        status: 201,
        body: { status: 'pending', taskType: 'heal', context: { pr: 7 }, startedAt: null },
      });
      const id = created.body.id as string;
      expect(id).toMatch(/^task_[0-9a-f]{16}$/);
      expect(await h.call('GET', `/tasks/${id}`)).toMatchObject({ status: 200, body: created.body });

      const running = await h.call('PATCH', `/tasks/${id}`, {
        body: { status: 'running', progressPct: 10, expectedStatus: 'pending', at: '2030-01-01T00:00:00.000Z' },
      });
      expect(running).toMatchObject({
        status: 200,
        body: { status: 'running', progressPct: 10, startedAt: '2030-01-01T00:00:00.000Z' },
      });
      await expectOnBothSides(h, (side) => side.tasks.getTask(id), running.body);
      const waiting = await h.call('PATCH', `/tasks/${id}`, {
        body: { status: 'needs_decision', decisionPrompt: 'ship it?', currentStep: null },
      });
      expect(waiting).toMatchObject({ status: 200, body: { status: 'needs_decision', decisionPrompt: 'ship it?' } });
      await h.call('POST', '/tasks', { body: task({ taskType: 'spec' }) });

      expect((await h.call('GET', '/tasks?status=needs_decision&limit=10')).body).toEqual({ items: [waiting.body] });
      expect((await h.call('GET', '/tasks?taskType=spec')).body.items).toHaveLength(1);
      expect((await h.call('GET', '/tasks?limit=1&offset=1')).body.items).toHaveLength(1);
      expect((await h.call('GET', '/tasks/attention?limit=5')).body).toEqual({ items: [waiting.body] });
      expect((await h.call('GET', '/tasks/counts')).body).toEqual({
        pending: 1,
        running: 0,
        completed: 0,
        failed: 0,
        needs_decision: 1,
      });
    });

    it('answers a failed compare-and-set with the task as stored now', async () => {
      const h = await api.open();
      await seed(h);
      const answer = await h.refused(
        'PATCH',
        `/tasks/${TASK}`,
        { body: { status: 'running', expectedStatus: 'needs_decision' } },
        { status: 409, field: 'expectedStatus' },
      );
      expect(answer.body.task).toMatchObject({ id: TASK, status: 'pending' });
    });

    for (const refusal of REFUSALS) {
      it(`refuses ${refusal.name} with ${refusal.status}${refusal.field ? ` naming ${refusal.field}` : ''}, writing nothing`, async () => {
        const h = await api.open();
        await seed(h);
        await h.refused(refusal.method, refusal.path, refusal.options ?? {}, {
          status: refusal.status,
          field: refusal.field,
        });
      });
    }
  });
}
