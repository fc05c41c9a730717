import { describe, expect, it } from 'vitest';
import type { AgentTask } from '../../src/stores/agent-task/agent-task-model.js';
import type {
  Asset,
  Contribution,
  Contributor,
  DependencyEdge,
  Project,
  ProjectRef,
} from '../../src/stores/graph/graph-model.js';
import type { AgentTaskRecords } from '../../src/stores/agent-task/agent-task-records.js';
import type { GraphRecords } from '../../src/stores/graph/graph-records.js';
import type { RecordKey } from '../../src/ports/record-port.js';
import { availableBackends, useBackend, type Backend } from '../support/backends.js';

type GraphEntity = keyof GraphRecords;
type Entity = GraphEntity | keyof AgentTaskRecords;
type AnyRecord = GraphRecords[GraphEntity] | AgentTask;

const GRAPH_ENTITIES: readonly GraphEntity[] = ['projects', 'dependencies', 'contributors', 'assets', 'contributions'];
const ENTITIES: readonly Entity[] = [...GRAPH_ENTITIES, 'agent_tasks'];
const ALL = { limit: 100_000 };

/** Keys as the port defines them, written out here rather than taken from the code under test. */
function keyOf(entity: Entity, record: AnyRecord): RecordKey {
  switch (entity) {
    case 'projects': {
      const p = record as Project;
      return [p.ecosystem, p.name];
    }
    case 'dependencies': {
      const e = record as DependencyEdge;
      return [e.from.ecosystem, e.from.name, e.to.ecosystem, e.to.name];
    }
    default:
      return [(record as { id: string }).id];
  }
}

function scan(backend: Backend, entity: Entity, options: { after?: RecordKey; limit: number }): Promise<AnyRecord[]> {
  return entity === 'agent_tasks'
    ? backend.tasks.scanRecords(entity, options)
    : backend.graph.scanRecords(entity, options);
}

function getRecord(backend: Backend, entity: Entity, key: RecordKey): Promise<AnyRecord | null> {
  return entity === 'agent_tasks' ? backend.tasks.getRecord(entity, key) : backend.graph.getRecord(entity, key);
}

function putRecord(backend: Backend, entity: Entity, record: AnyRecord): Promise<void> {
  return entity === 'agent_tasks'
    ? backend.tasks.putRecord(entity, record as AgentTask)
    : backend.graph.putRecord(entity, record as GraphRecords[GraphEntity]);
}

function putRecords(backend: Backend, entity: Entity, records: AnyRecord[]): Promise<void> {
  return entity === 'agent_tasks'
    ? backend.tasks.putRecords(entity, records as AgentTask[])
    : backend.graph.putRecords(entity, records as GraphRecords[GraphEntity][]);
}

function deleteRecord(backend: Backend, entity: Entity, key: RecordKey): Promise<boolean> {
  return entity === 'agent_tasks' ? backend.tasks.deleteRecord(entity, key) : backend.graph.deleteRecord(entity, key);
}

/** Every record of every entity, for "nothing else changed" checks. */
async function everything(backend: Backend): Promise<Record<Entity, AnyRecord[]>> {
  const result = {} as Record<Entity, AnyRecord[]>;
  for (const entity of ENTITIES) result[entity] = await scan(backend, entity, ALL);
  return result;
}

const T = (seconds: number): string => new Date(Date.UTC(2026, 0, 2) + seconds * 1000).toISOString();
const uuid = (prefix: string, n = 0): string =>
  `${prefix.padEnd(8, '0')}-0000-4000-8000-${n.toString(16).padStart(12, '0')}`;
const ref = (ecosystem: string, name: string): ProjectRef => ({ ecosystem, name });

function project(ecosystem: string, name: string, fields: Partial<Project> = {}): Project {
  return {
    ecosystem,
    name,
    description: null,
    homepageUrl: null,
    repositoryUrl: null,
    dependencyCount: 0,
    createdAt: T(0),
    updatedAt: T(0),
    ...fields,
  };
}
function edge(from: ProjectRef, to: ProjectRef, createdAt = T(1)): DependencyEdge {
  return { from, to, createdAt };
}
function contributor(id: string, fields: Partial<Contributor> = {}): Contributor {
  return {
    id,
    name: 'Ada',
    email: null,
    githubUsername: null,
    walletAddress: null,
    metadata: {},
    createdAt: T(0),
    updatedAt: T(0),
    ...fields,
  };
}
function asset(id: string, fields: Partial<Asset> = {}): Asset {
  return {
    id,
    name: 'Doc',
    description: null,
    assetType: 'code',
    totalCost: '0.00',
    metadata: {},
    createdAt: T(0),
    updatedAt: T(0),
    ...fields,
  };
}
function contribution(
  id: string,
  contributorId: string,
  assetId: string,
  fields: Partial<Contribution> = {},
): Contribution {
  return {
    id,
    contributorId,
    assetId,
    costAmount: '1.00',
    coherenceScore: '0.50',
    metadata: {},
    timestamp: T(2),
    ...fields,
  };
}
function task(id: string, fields: Partial<AgentTask> = {}): AgentTask {
  return {
    id,
    direction: 'do it',
    taskType: 'impl',
    status: 'pending',
    model: 'm',
    command: 'c',
    output: null,
    context: {},
    progressPct: null,
    currentStep: null,
    decisionPrompt: null,
    decision: null,
    tier: null,
    startedAt: null,
    createdAt: T(0),
    updatedAt: T(0),
    ...fields,
  };
}

/**
 * Names whose code point order differs from UTF-16 order ('\uFF5E' < '\u{1F600}' by code point,
 * the reverse by UTF-16 unit) and from locale order ('z' < 'é', 'Z' < 'a').
 * Project names are folded to lowercase; task ids are not.
 */
const PROJECT_NAMES_IN_ORDER = ['a', 'a b', 'ab', 'f', 'z', 'é', '\uFF5E', '\u{1F600}'];
const PROJECTS_IN_KEY_ORDER: ProjectRef[] = [
  ref('go', 'z'),
  ...PROJECT_NAMES_IN_ORDER.map((name) => ref('npm', name)),
  ref('npm-x', 'a'),
];
const TASK_IDS_IN_ORDER = ['task_A', 'task_Z', 'task_a', 'task_f', 'task_é', 'task_\uFF5E', 'task_\u{1F600}'];
const CONTRIBUTOR_IDS_IN_ORDER = [uuid('0'), uuid('09'), uuid('0a', 5), uuid('a0'), uuid('ff', 1)];
const ASSET_IDS_IN_ORDER = [uuid('1'), uuid('1', 2), uuid('b'), uuid('c'), uuid('ee')];
/** Edges between PROJECTS_IN_KEY_ORDER indexes, listed in key order. */
const EDGES_IN_ORDER: [number, number][] = [
  [0, 1],
  [0, 8],
  [1, 2],
  [1, 7],
  [1, 8],
  [6, 1],
  [7, 9],
  [8, 0],
  [9, 1],
];
const CONTRIBUTIONS_IN_ORDER = Array.from({ length: 9 }, (_, i) => uuid(`${(15 - i).toString(16)}${i}`));

/** Stores a fixture of every entity, inserted in an order unrelated to key order. */
async function seedFixture(backend: Backend): Promise<void> {
  const shuffled = <T>(items: readonly T[]): T[] =>
    items
      .map((item, i) => ({ item, k: (i * 7 + 3) % items.length }))
      .sort((a, b) => a.k - b.k)
      .map((x) => x.item);
  for (const r of shuffled(PROJECTS_IN_KEY_ORDER)) {
    // Spelled in uppercase where that changes something: the store folds keys.
    await backend.graph.upsertProject({ ecosystem: r.ecosystem.toUpperCase(), name: r.name.toUpperCase(), at: T(0) });
  }
  for (const [from, to] of shuffled(EDGES_IN_ORDER)) {
    await backend.graph.addDependency(PROJECTS_IN_KEY_ORDER[from]!, PROJECTS_IN_KEY_ORDER[to]!, { at: T(1) });
  }
  for (const id of shuffled(CONTRIBUTOR_IDS_IN_ORDER))
    await backend.graph.createContributor({ id: id.toUpperCase(), name: `c ${id}`, at: T(0) });
  for (const id of shuffled(ASSET_IDS_IN_ORDER))
    await backend.graph.createAsset({ id, name: `a ${id}`, assetType: 'code', at: T(0) });
  for (const [i, id] of shuffled([...CONTRIBUTIONS_IN_ORDER.entries()])) {
    await backend.graph.createContribution({
      id,
      contributorId: CONTRIBUTOR_IDS_IN_ORDER[i % CONTRIBUTOR_IDS_IN_ORDER.length]!,
      assetId: ASSET_IDS_IN_ORDER[i % ASSET_IDS_IN_ORDER.length]!,
      costAmount: `${i}.25`,
      coherenceScore: '0.5',
      timestamp: T(2 + i),
    });
  }
  for (const id of shuffled(TASK_IDS_IN_ORDER))
    await backend.tasks.createTask({ id, direction: 'd', taskType: 'spec', model: 'm', command: 'c', at: T(0) });
}

const EXPECTED_KEYS: Record<Entity, RecordKey[]> = {
  projects: PROJECTS_IN_KEY_ORDER.map((r) => [r.ecosystem, r.name]),
  dependencies: EDGES_IN_ORDER.map(([from, to]) => {
    const f = PROJECTS_IN_KEY_ORDER[from]!;
    const t = PROJECTS_IN_KEY_ORDER[to]!;
    return [f.ecosystem, f.name, t.ecosystem, t.name];
  }),
  contributors: CONTRIBUTOR_IDS_IN_ORDER.map((id) => [id]),
  assets: ASSET_IDS_IN_ORDER.map((id) => [id]),
  contributions: [...CONTRIBUTIONS_IN_ORDER].sort().map((id) => [id]),
  agent_tasks: TASK_IDS_IN_ORDER.map((id) => [id]),
};

/** A minimal graph for put/delete tests: two projects with an edge, a contributor, an asset, a contribution. */
const P1 = project('npm', 'one', { dependencyCount: 1 });
const P2 = project('npm', 'two');
const E12 = edge(ref('npm', 'one'), ref('npm', 'two'));
const C1 = contributor(uuid('c1'));
const A1 = asset(uuid('a1'), { totalCost: '10.00' });
const K1 = contribution(uuid('d1'), C1.id, A1.id, { costAmount: '10.00' });
const TASK1 = task('task_one');

async function seedSmall(backend: Backend): Promise<void> {
  const records: [Entity, AnyRecord][] = [
    ['projects', P1],
    ['projects', P2],
    ['dependencies', E12],
    ['contributors', C1],
    ['assets', A1],
    ['contributions', K1],
    ['agent_tasks', TASK1],
  ];
  for (const [entity, record] of records) await putRecord(backend, entity, record);
}

for (const factory of availableBackends()) {
  describe(`RecordPort contract on ${factory.name}`, () => {
    const backend = useBackend(factory);

    describe('scanRecords', () => {
      it.each(ENTITIES)('returns %s in code point order of their keys', async (entity) => {
        await seedFixture(backend.current);
        const records = await scan(backend.current, entity, ALL);
        expect(records.map((record) => keyOf(entity, record))).toEqual(EXPECTED_KEYS[entity]);
      });

      const pagings = ENTITIES.flatMap((entity) => [1, 2, 7].map((pageSize) => ({ entity, pageSize })));
      it.each(pagings)(
        'visits every $entity record exactly once when paging with after and limit $pageSize',
        async ({ entity, pageSize }) => {
          await seedFixture(backend.current);
          const visited: AnyRecord[] = [];
          let after: RecordKey | undefined;
          for (let pages = 0; pages < 100; pages++) {
            const page = await scan(
              backend.current,
              entity,
              after === undefined ? { limit: pageSize } : { after, limit: pageSize },
            );
            expect(page.length).toBeLessThanOrEqual(pageSize);
            visited.push(...page);
            if (page.length < pageSize) break;
            after = keyOf(entity, page.at(-1)!);
          }
          expect(visited.map((record) => keyOf(entity, record))).toEqual(EXPECTED_KEYS[entity]);
          expect(visited).toStrictEqual(await scan(backend.current, entity, ALL));
        },
      );

      it.each([
        { entity: 'projects', after: ['npm', 'b'], first: ['npm', 'f'] },
        { entity: 'projects', after: ['npm', 'zz'], first: ['npm', 'é'] },
        { entity: 'projects', after: ['npm', '\uFFFF'], first: ['npm', '\u{1F600}'] },
        { entity: 'agent_tasks', after: ['task_\uFF5F'], first: ['task_\u{1F600}'] },
        { entity: 'agent_tasks', after: ['task_Zz'], first: ['task_a'] },
      ] as const)('starts after $after, a key that is not stored, at $first', async ({ entity, after, first }) => {
        await seedFixture(backend.current);
        const [record] = await scan(backend.current, entity, { after, limit: 1 });
        expect(keyOf(entity, record!)).toEqual(first);
      });

      it.each(ENTITIES)('returns nothing for %s after the last key', async (entity) => {
        await seedFixture(backend.current);
        const keys = EXPECTED_KEYS[entity];
        expect(await scan(backend.current, entity, { after: keys.at(-1)!, limit: 10 })).toEqual([]);
      });
    });

    describe('getRecord and putRecord', () => {
      const roundTrips: { entity: Entity; record: AnyRecord; replacement: AnyRecord }[] = [
        {
          entity: 'projects',
          record: project('pypi', 'requests', {
            description: 'HTTP',
            homepageUrl: 'https://h',
            repositoryUrl: 'https://r',
            dependencyCount: 0,
          }),
          replacement: project('pypi', 'requests', {
            description: null,
            dependencyCount: 42,
            createdAt: T(5),
            updatedAt: T(6),
          }),
        },
        {
          entity: 'contributors',
          record: contributor(uuid('c2'), {
            email: 'a@b',
            githubUsername: 'ada',
            walletAddress: '0x1',
            metadata: { a: [1, { b: null }] },
          }),
          replacement: contributor(uuid('c2'), {
            name: 'Grace',
            metadata: { z: 'é' },
            createdAt: T(7),
            updatedAt: T(8),
          }),
        },
        {
          entity: 'assets',
          record: asset(uuid('a2'), { description: 'd', totalCost: '0.00', metadata: { k: true } }),
          replacement: asset(uuid('a2'), { assetType: 'doc', totalCost: '9999999999999.99', updatedAt: T(9) }),
        },
        {
          entity: 'agent_tasks',
          record: task('task_rt', {
            status: 'running',
            output: 'o',
            context: { x: 1 },
            progressPct: 50,
            currentStep: 's',
            startedAt: T(1),
            tier: 't',
          }),
          replacement: task('task_rt', {
            status: 'needs_decision',
            decisionPrompt: 'p',
            decision: 'd',
            progressPct: 100,
            startedAt: null,
            updatedAt: T(3),
          }),
        },
      ];

      it.each(roundTrips)(
        'stores $entity exactly as given, and overwrites every field',
        async ({ entity, record, replacement }) => {
          await putRecord(backend.current, entity, record);
          expect(await getRecord(backend.current, entity, keyOf(entity, record))).toStrictEqual(record);
          await putRecord(backend.current, entity, replacement);
          expect(await getRecord(backend.current, entity, keyOf(entity, record))).toStrictEqual(replacement);
          expect(await scan(backend.current, entity, ALL)).toStrictEqual([replacement]);
        },
      );

      it.each(roundTrips)(
        'puts many $entity records at once, the last version of a repeated key winning, as putRecord one by one would',
        async ({ entity, record, replacement }) => {
          const others = [1, 2, 3].map(
            (n) =>
              ({
                ...(record as object),
                ...(entity === 'projects'
                  ? { name: `other-${n}` }
                  : { id: entity === 'agent_tasks' ? `task_other_${n}` : uuid('e', n) }),
              }) as AnyRecord,
          );
          await putRecords(backend.current, entity, [record, ...others, replacement]);
          const once = await scan(backend.current, entity, ALL);
          expect(once).toContainEqual(replacement);
          expect(once).not.toContainEqual(record);
          expect(once).toHaveLength(4);
          await putRecords(backend.current, entity, []);
          expect(await scan(backend.current, entity, ALL)).toStrictEqual(once);
        },
      );

      it('puts many contributions at once without adding them to their asset totals again', async () => {
        await seedSmall(backend.current);
        const before = await getRecord(backend.current, 'assets', [A1.id]);
        const batch = [1, 2, 3].map((n) => contribution(uuid('d', n + 10), C1.id, A1.id, { costAmount: '5.00' }));
        await putRecords(backend.current, 'contributions', batch);
        expect(await getRecord(backend.current, 'assets', [A1.id])).toStrictEqual(before);
        for (const c of batch) expect(await getRecord(backend.current, 'contributions', [c.id])).toStrictEqual(c);
        await expect(
          putRecords(backend.current, 'contributions', [
            contribution(uuid('d', 20), uuid('c9'), A1.id),
            contribution(uuid('d', 21), uuid('c9'), A1.id),
          ]),
        ).rejects.toMatchObject({
          name: 'NotFoundError',
          field: 'contributorId',
        });
      });

      it('stores dependencies and contributions exactly as given, and overwrites them', async () => {
        await seedSmall(backend.current);
        const edgeAgain = edge(E12.from, E12.to, T(30));
        const contributionAgain = contribution(K1.id, C1.id, A1.id, {
          costAmount: '3.50',
          coherenceScore: '1.00',
          metadata: { n: 1 },
          timestamp: T(31),
        });
        expect(await getRecord(backend.current, 'dependencies', keyOf('dependencies', E12))).toStrictEqual(E12);
        expect(await getRecord(backend.current, 'contributions', [K1.id])).toStrictEqual(K1);
        await putRecord(backend.current, 'dependencies', edgeAgain);
        await putRecord(backend.current, 'contributions', contributionAgain);
        expect(await scan(backend.current, 'dependencies', ALL)).toStrictEqual([edgeAgain]);
        expect(await scan(backend.current, 'contributions', ALL)).toStrictEqual([contributionAgain]);
      });

      it('keeps dependencyCount and totalCost as given instead of recomputing them', async () => {
        await seedSmall(backend.current);
        const counted = { ...P1, dependencyCount: 7 };
        const totalled = { ...A1, totalCost: '123.45' };
        await putRecord(backend.current, 'projects', counted);
        await putRecord(backend.current, 'assets', totalled);
        await putRecord(backend.current, 'projects', project('npm', 'lonely', { dependencyCount: 3 }));
        expect(await backend.current.graph.getProject(ref('npm', 'one'))).toStrictEqual(counted);
        expect(await backend.current.graph.getAsset(A1.id)).toStrictEqual(totalled);
        expect((await backend.current.graph.getProject(ref('npm', 'lonely')))!.dependencyCount).toBe(3);
      });

      it("does not change the asset's totalCost or updatedAt when putting a contribution", async () => {
        await seedSmall(backend.current);
        const before = await backend.current.graph.getAsset(A1.id);
        await putRecord(
          backend.current,
          'contributions',
          contribution(uuid('d2'), C1.id, A1.id, { costAmount: '5.00', timestamp: T(40) }),
        );
        await putRecord(backend.current, 'contributions', { ...K1, costAmount: '99.00', timestamp: T(41) });
        expect(await backend.current.graph.getAsset(A1.id)).toStrictEqual(before);
        // createContribution, by contrast, adds its cost: the trigger is still active after a put.
        await backend.current.graph.createContribution({
          id: uuid('d3'),
          contributorId: C1.id,
          assetId: A1.id,
          costAmount: '0.50',
          coherenceScore: 0,
          timestamp: T(42),
        });
        expect(await backend.current.graph.getAsset(A1.id)).toStrictEqual({
          ...before,
          totalCost: '10.50',
          updatedAt: T(42),
        });
      });

      it("does not change the source project's dependencyCount or updatedAt when putting an edge", async () => {
        await seedSmall(backend.current);
        const before = await backend.current.graph.getProject(ref('npm', 'two'));
        await putRecord(backend.current, 'dependencies', edge(ref('npm', 'two'), ref('npm', 'one'), T(50)));
        expect(await backend.current.graph.getProject(ref('npm', 'two'))).toStrictEqual(before);
        expect(await backend.current.graph.countDependents(ref('npm', 'one'))).toBe(1);
      });

      it('stores the canonical form of a record given in another spelling', async () => {
        await putRecord(
          backend.current,
          'projects',
          project('NPM', 'Left-Pad', {
            createdAt: '2026-01-02T02:00:00+02:00',
            updatedAt: '2026-01-02T00:00:00.0004Z',
          }),
        );
        await putRecord(
          backend.current,
          'contributors',
          contributor(uuid('c3').toUpperCase(), { metadata: { b: { y: 1, x: -0 }, a: 1 } }),
        );
        await putRecord(backend.current, 'assets', asset(uuid('a3'), { totalCost: ' 5.5 ' }));
        await putRecord(
          backend.current,
          'contributions',
          contribution(uuid('d3'), uuid('c3'), uuid('a3'), { costAmount: '1.500', coherenceScore: '1' }),
        );
        expect(await getRecord(backend.current, 'projects', ['npm', 'left-pad'])).toStrictEqual(
          project('npm', 'left-pad', { createdAt: '2026-01-02T00:00:00.000Z', updatedAt: '2026-01-02T00:00:00.000Z' }),
        );
        const storedContributor = await getRecord(backend.current, 'contributors', [uuid('c3')]);
        expect(storedContributor).toStrictEqual(contributor(uuid('c3'), { metadata: { a: 1, b: { x: 0, y: 1 } } }));
        expect(JSON.stringify((storedContributor as Contributor).metadata)).toBe('{"a":1,"b":{"x":0,"y":1}}');
        expect(await getRecord(backend.current, 'assets', [uuid('a3')])).toMatchObject({ totalCost: '5.50' });
        expect(await getRecord(backend.current, 'contributions', [uuid('d3')])).toMatchObject({
          costAmount: '1.50',
          coherenceScore: '1.00',
        });
      });

      it('round-trips timestamps at the edges of the supported range (years 1 to 9999)', async () => {
        const edges = {
          startedAt: '0001-01-01T00:00:00.000Z',
          createdAt: '0099-12-31T23:59:59.999Z',
          updatedAt: '9999-12-31T23:59:59.999Z',
        };
        await putRecord(backend.current, 'agent_tasks', task('task_old', edges));
        await putRecord(
          backend.current,
          'projects',
          project('npm', 'old', { createdAt: '0050-06-15T12:00:00.000Z', updatedAt: '1969-12-31T23:59:59.999Z' }),
        );
        expect(await getRecord(backend.current, 'agent_tasks', ['task_old'])).toStrictEqual(task('task_old', edges));
        expect(await getRecord(backend.current, 'projects', ['npm', 'old'])).toMatchObject({
          createdAt: '0050-06-15T12:00:00.000Z',
          updatedAt: '1969-12-31T23:59:59.999Z',
        });
      });

      it.each(ENTITIES)('returns null from getRecord for a missing %s key', async (entity) => {
        await seedSmall(backend.current);
        const missing: Record<Entity, RecordKey> = {
          projects: ['npm', 'three'],
          dependencies: ['npm', 'two', 'npm', 'one'],
          contributors: [uuid('c9')],
          assets: [uuid('a9')],
          contributions: [uuid('d9')],
          agent_tasks: ['task_nine'],
        };
        expect(await getRecord(backend.current, entity, missing[entity])).toBeNull();
      });

      it.each([
        {
          problem: 'an edge from a missing project',
          entity: 'dependencies',
          record: edge(ref('npm', 'ghost'), ref('npm', 'two')),
          field: 'from',
        },
        {
          problem: 'an edge to a missing project',
          entity: 'dependencies',
          record: edge(ref('npm', 'one'), ref('npm', 'ghost')),
          field: 'to',
        },
        {
          problem: 'an edge between missing projects',
          entity: 'dependencies',
          record: edge(ref('npm', 'ghost'), ref('npm', 'spook')),
          field: 'from',
        },
        {
          problem: 'a contribution of a missing contributor',
          entity: 'contributions',
          record: contribution(uuid('d5'), uuid('c9'), A1.id),
          field: 'contributorId',
        },
        {
          problem: 'a contribution to a missing asset',
          entity: 'contributions',
          record: contribution(uuid('d5'), C1.id, uuid('a9')),
          field: 'assetId',
        },
        {
          problem: 'a contribution whose contributor and asset are missing',
          entity: 'contributions',
          record: contribution(uuid('d5'), uuid('c9'), uuid('a9')),
          field: 'contributorId',
        },
        {
          problem: 'an overwrite that points a contribution at a missing asset',
          entity: 'contributions',
          record: contribution(K1.id, C1.id, uuid('a9')),
          field: 'assetId',
        },
      ] as const)(
        'rejects $problem with NotFoundError on $field and writes nothing',
        async ({ entity, record, field }) => {
          await seedSmall(backend.current);
          const before = await everything(backend.current);
          await expect(putRecord(backend.current, entity, record)).rejects.toMatchObject({
            name: 'NotFoundError',
            field,
          });
          expect(await everything(backend.current)).toStrictEqual(before);
        },
      );

      it.each([
        {
          problem: 'a negative dependencyCount',
          entity: 'projects',
          record: { ...P2, dependencyCount: -1 },
          field: 'dependencyCount',
        },
        {
          problem: 'a totalCost with three decimals',
          entity: 'assets',
          record: { ...A1, totalCost: '1.005' },
          field: 'totalCost',
        },
        {
          problem: 'a coherenceScore that does not fit NUMERIC(3,2)',
          entity: 'contributions',
          record: { ...K1, coherenceScore: '10.00' },
          field: 'coherenceScore',
        },
        {
          problem: 'a progressPct over 100',
          entity: 'agent_tasks',
          record: { ...TASK1, progressPct: 101 },
          field: 'progressPct',
        },
        { problem: 'an unknown status', entity: 'agent_tasks', record: { ...TASK1, status: 'done' }, field: 'status' },
        {
          problem: 'a negative costAmount',
          entity: 'contributions',
          record: { ...K1, costAmount: '-1.00' },
          field: 'costAmount',
        },
        {
          problem: 'a coherenceScore above 1',
          entity: 'contributions',
          record: { ...K1, coherenceScore: '1.50' },
          field: 'coherenceScore',
        },
        {
          problem: 'an edge from a project to itself',
          entity: 'dependencies',
          record: edge(ref('npm', 'one'), ref('npm', 'one')),
          field: 'to',
        },
        {
          problem: 'a timestamp without a time zone',
          entity: 'contributors',
          record: { ...C1, createdAt: '2026-01-01T00:00:00' },
          field: 'createdAt',
        },
      ] as const)(
        'rejects a record with $problem with ValidationError on $field and writes nothing',
        async ({ entity, record, field }) => {
          await seedSmall(backend.current);
          const before = await everything(backend.current);
          await expect(putRecord(backend.current, entity, record as unknown as AnyRecord)).rejects.toMatchObject({
            name: 'ValidationError',
            field,
          });
          expect(await everything(backend.current)).toStrictEqual(before);
        },
      );
    });

    describe('deleteRecord', () => {
      it('deletes a project together with its edges in and out, leaving other records as they are', async () => {
        await seedFixture(backend.current);
        const before = await everything(backend.current);
        const gone = ref('npm', 'a');
        const touches = (e: DependencyEdge): boolean =>
          (e.from.ecosystem === gone.ecosystem && e.from.name === gone.name) ||
          (e.to.ecosystem === gone.ecosystem && e.to.name === gone.name);
        expect((before.dependencies as DependencyEdge[]).filter(touches).length).toBeGreaterThanOrEqual(2);
        expect(await deleteRecord(backend.current, 'projects', [gone.ecosystem, gone.name])).toBe(true);
        expect(await everything(backend.current)).toStrictEqual({
          ...before,
          projects: (before.projects as Project[]).filter(
            (p) => p.ecosystem !== gone.ecosystem || p.name !== gone.name,
          ),
          dependencies: (before.dependencies as DependencyEdge[]).filter((e) => !touches(e)),
        });
      });

      it.each([
        { entity: 'assets', field: 'assetId', ids: ASSET_IDS_IN_ORDER },
        { entity: 'contributors', field: 'contributorId', ids: CONTRIBUTOR_IDS_IN_ORDER },
      ] as const)('deletes an $entity record together with its contributions only', async ({ entity, field, ids }) => {
        await seedFixture(backend.current);
        const before = await everything(backend.current);
        const id = ids[0]!;
        expect((before.contributions as Contribution[]).filter((c) => c[field] === id).length).toBeGreaterThanOrEqual(
          1,
        );
        expect(await deleteRecord(backend.current, entity, [id])).toBe(true);
        expect(await everything(backend.current)).toStrictEqual({
          ...before,
          [entity]: before[entity].filter((record) => (record as { id: string }).id !== id),
          contributions: (before.contributions as Contribution[]).filter((c) => c[field] !== id),
        });
      });

      it.each([
        { entity: 'dependencies', key: keyOf('dependencies', E12) },
        { entity: 'contributions', key: [K1.id] },
        { entity: 'agent_tasks', key: [TASK1.id] },
      ] as const)('deletes one $entity record without touching the records it refers to', async ({ entity, key }) => {
        await seedSmall(backend.current);
        const before = await everything(backend.current);
        expect(await deleteRecord(backend.current, entity, key)).toBe(true);
        expect(await everything(backend.current)).toStrictEqual({ ...before, [entity]: [] });
      });

      it.each(ENTITIES)('returns false for a missing %s key and changes nothing', async (entity) => {
        await seedSmall(backend.current);
        const missing: Record<Entity, RecordKey> = {
          projects: ['npm', 'three'],
          dependencies: ['npm', 'two', 'npm', 'one'],
          contributors: [uuid('c9')],
          assets: [uuid('a9')],
          contributions: [uuid('d9')],
          agent_tasks: ['task_nine'],
        };
        const before = await everything(backend.current);
        expect(await deleteRecord(backend.current, entity, missing[entity])).toBe(false);
        expect(await everything(backend.current)).toStrictEqual(before);
      });

      it('returns false when deleting the same key twice', async () => {
        await seedSmall(backend.current);
        expect(await deleteRecord(backend.current, 'projects', ['npm', 'one'])).toBe(true);
        expect(await deleteRecord(backend.current, 'projects', ['npm', 'one'])).toBe(false);
      });
    });
  });
}
