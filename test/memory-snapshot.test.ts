import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Contributor } from '../src/stores/graph/graph-model.js';
import { entityNames } from '../src/domain/records.js';
import { AGENT_TASK_ENTITIES, type AgentTaskRecords } from '../src/stores/agent-task/agent-task-records.js';
import { GRAPH_ENTITIES, type GraphRecords } from '../src/stores/graph/graph-records.js';
import { MemoryAgentTaskStore } from '../src/stores/agent-task/memory-agent-task-store.js';
import { MemoryGraphStore } from '../src/stores/graph/memory-graph-store.js';
import { SnapshotError } from '../src/memory/snapshot-file.js';
import { ManualClock, SequenceIds } from './support/clock.js';

const ALL = { limit: 100_000 };

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'dw-snapshot-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

function context() {
  return { clock: new ManualClock(), ids: new SequenceIds() };
}

/** A graph with every entity, several records each, non-ASCII text and nested metadata. */
async function populatedGraph(snapshotPath?: string) {
  const graph = new MemoryGraphStore({ ...context(), snapshotPath });
  for (const [ecosystem, name, description] of [
    ['npm', 'React', 'UI library — 日本'],
    ['npm', 'left-pad', null],
    ['npm', 'lodash', 'utilities'],
    ['PyPI', 'requests', 'HTTP for humans'],
  ] as const) {
    await graph.upsertProject({ ecosystem, name, description });
  }
  await graph.addDependency({ ecosystem: 'npm', name: 'react' }, { ecosystem: 'npm', name: 'left-pad' });
  await graph.addDependency({ ecosystem: 'npm', name: 'lodash' }, { ecosystem: 'npm', name: 'left-pad' });
  await graph.addDependency({ ecosystem: 'pypi', name: 'requests' }, { ecosystem: 'npm', name: 'lodash' });
  const ada = await graph.createContributor({
    name: 'Ada',
    email: 'ada@example.com',
    metadata: { z: [1, { é: '日本' }], a: true },
  });
  const grace = await graph.createContributor({ name: 'Grace', githubUsername: 'grace' });
  const doc = await graph.createAsset({ name: 'Doc', assetType: 'doc', description: 'the docs' });
  const code = await graph.createAsset({ name: 'Code', assetType: 'code', metadata: { lang: 'ts' } });
  await graph.createContribution({ contributorId: ada.id, assetId: doc.id, costAmount: '0.10', coherenceScore: 0.5 });
  await graph.createContribution({ contributorId: grace.id, assetId: doc.id, costAmount: 2.5, coherenceScore: '1' });
  await graph.createContribution({
    contributorId: ada.id,
    assetId: code.id,
    costAmount: '3',
    coherenceScore: '0.75',
    metadata: { pr: 12 },
  });
  return { graph, ada, grace, doc, code };
}

async function populatedTasks(snapshotPath?: string) {
  // Explicit ids: a task id is decided from the first 16 hex digits of ids.uuid(), which
  // are the same for every SequenceIds uuid.
  const tasks = new MemoryAgentTaskStore({ ...context(), snapshotPath });
  const spec = await tasks.createTask({
    id: 'task_spec',
    direction: 'write the spec',
    taskType: 'spec',
    model: 'm1',
    command: 'spec it',
    context: { b: 1, a: [null] },
  });
  const impl = await tasks.createTask({
    id: 'task_impl',
    direction: 'implement',
    taskType: 'impl',
    model: 'm2',
    command: 'do it',
    tier: 'gold',
  });
  await tasks.createTask({ id: 'task_review', direction: 'review', taskType: 'review', model: 'm1', command: 'look' });
  await tasks.updateTask(spec.id, { status: 'running', progressPct: 40, currentStep: 'drafting' });
  await tasks.updateTask(impl.id, { status: 'running' });
  await tasks.updateTask(impl.id, { status: 'needs_decision', decisionPrompt: 'which db?', output: 'half done' });
  return tasks;
}

async function scanGraph(graph: MemoryGraphStore) {
  const scans: Partial<Record<keyof GraphRecords, unknown[]>> = {};
  for (const entity of entityNames(GRAPH_ENTITIES)) scans[entity] = await graph.scanRecords(entity, ALL);
  return scans;
}

async function scanTasks(tasks: MemoryAgentTaskStore) {
  const scans: Partial<Record<keyof AgentTaskRecords, unknown[]>> = {};
  for (const entity of entityNames(AGENT_TASK_ENTITIES)) scans[entity] = await tasks.scanRecords(entity, ALL);
  return scans;
}

async function temporaryFiles(path: string): Promise<string[]> {
  return (await readdir(path)).filter((name) => name.endsWith('.tmp'));
}

describe('MemoryGraphStore snapshot round trip', () => {
  it('reloads every entity with records identical to the saved store', async () => {
    const path = join(dir, 'graph.json');
    const { graph } = await populatedGraph();
    await graph.saveSnapshot(path);
    const reloaded = await MemoryGraphStore.open({ snapshotPath: path });
    const before = await scanGraph(graph);
    for (const entity of entityNames(GRAPH_ENTITIES)) expect(before[entity]!.length, entity).toBeGreaterThan(0);
    expect(await scanGraph(reloaded)).toEqual(before);
  });

  it('rebuilds the dependents and contribution indexes on load', async () => {
    const path = join(dir, 'graph.json');
    const { graph, ada, grace, doc, code } = await populatedGraph();
    await graph.saveSnapshot(path);
    const reloaded = await MemoryGraphStore.open({ snapshotPath: path });
    for (const name of ['left-pad', 'lodash', 'react']) {
      const ref = { ecosystem: 'npm', name };
      expect(await reloaded.countDependents(ref), name).toBe(await graph.countDependents(ref));
    }
    expect(await reloaded.countDependents({ ecosystem: 'npm', name: 'left-pad' })).toBe(2);
    for (const asset of [doc, code]) {
      expect(await reloaded.listContributionsByAsset(asset.id)).toEqual(await graph.listContributionsByAsset(asset.id));
    }
    expect(await reloaded.listContributionsByAsset(doc.id)).toHaveLength(2);
    for (const contributor of [ada, grace]) {
      expect(await reloaded.listContributionsByContributor(contributor.id)).toEqual(
        await graph.listContributionsByContributor(contributor.id),
      );
    }
  });

  it('keeps maintaining derived values and cascades after reload', async () => {
    const path = join(dir, 'graph.json');
    const { graph, ada, doc } = await populatedGraph();
    await graph.saveSnapshot(path);
    const reloaded = await MemoryGraphStore.open({ ...context(), snapshotPath: path });

    const existing = (await graph.scanRecords('dependencies', ALL))[0]!;
    expect(await reloaded.addDependency(existing.from, existing.to)).toEqual(existing);
    expect((await reloaded.getProject(existing.from))!.dependencyCount).toBe(1);

    await reloaded.createContribution({
      id: '00000000-0000-4000-8000-0000000000ff',
      contributorId: ada.id,
      assetId: doc.id,
      costAmount: '1.00',
      coherenceScore: 1,
    });
    expect((await reloaded.getAsset(doc.id))!.totalCost).toBe('3.60');

    expect(await reloaded.deleteRecord('assets', [doc.id])).toBe(true);
    expect(await reloaded.listContributionsByAsset(doc.id)).toEqual([]);
    expect((await reloaded.scanRecords('contributions', ALL)).map((c) => c.assetId)).not.toContain(doc.id);
  });

  it('saves to the snapshotPath it was opened with, creating missing directories', async () => {
    const path = join(dir, 'nested', 'deeper', 'graph.json');
    const { graph } = await populatedGraph(path);
    await graph.saveSnapshot();
    expect(await scanGraph(await MemoryGraphStore.open({ snapshotPath: path }))).toEqual(await scanGraph(graph));
  });
});

describe('MemoryAgentTaskStore snapshot round trip', () => {
  it('reloads tasks identical to the saved store, with the same counts and list order', async () => {
    const path = join(dir, 'tasks.json');
    const tasks = await populatedTasks();
    await tasks.saveSnapshot(path);
    const reloaded = await MemoryAgentTaskStore.open({ snapshotPath: path });
    const before = await scanTasks(tasks);
    expect(before.agent_tasks).toHaveLength(3);
    expect(await scanTasks(reloaded)).toEqual(before);
    expect(await reloaded.countByStatus()).toEqual({
      pending: 1,
      running: 1,
      completed: 0,
      failed: 0,
      needs_decision: 1,
    });
    expect(await reloaded.listTasks()).toEqual(await tasks.listTasks());
    expect(await reloaded.attention()).toEqual(await tasks.attention());
  });

  it('keeps enforcing the task lifecycle after reload', async () => {
    const path = join(dir, 'tasks.json');
    const tasks = await populatedTasks();
    await tasks.saveSnapshot(path);
    const reloaded = await MemoryAgentTaskStore.open({ ...context(), snapshotPath: path });
    const waiting = (await reloaded.listTasks({ status: 'needs_decision' }))[0]!;
    await expect(reloaded.updateTask(waiting.id, { status: 'completed' })).rejects.toMatchObject({
      name: 'TransitionError',
      field: 'status',
    });
    const resumed = await reloaded.updateTask(waiting.id, { status: 'running', decision: 'postgres' });
    expect(resumed.updated).toBe(true);
    expect(resumed.task.startedAt).toBe(waiting.startedAt);
  });
});

describe('snapshot writes are atomic', () => {
  it('leaves only the snapshot file in the directory after repeated saves, holding the latest data', async () => {
    const path = join(dir, 'graph.json');
    const { graph } = await populatedGraph();
    await graph.saveSnapshot(path);
    await graph.upsertProject({ ecosystem: 'cargo', name: 'serde' });
    await graph.saveSnapshot(path);
    expect(await readdir(dir)).toEqual(['graph.json']);
    expect(
      await (await MemoryGraphStore.open({ snapshotPath: path })).getProject({ ecosystem: 'cargo', name: 'serde' }),
    ).not.toBeNull();
  });

  it('removes the temporary file and leaves the target untouched when the rename fails', async () => {
    // The target is a non-empty directory: rename(file, dir) fails even for root.
    const path = join(dir, 'graph.json');
    await mkdir(path);
    await writeFile(join(path, 'keep.txt'), 'keep');
    const { graph } = await populatedGraph();
    await expect(graph.saveSnapshot(path)).rejects.toMatchObject({
      code: expect.stringMatching(/^(EISDIR|ENOTEMPTY|EEXIST)$/),
    });
    expect(await temporaryFiles(dir)).toEqual([]);
    expect(await readdir(path)).toEqual(['keep.txt']);
  });

  it('keeps the previous snapshot byte for byte and removes the temporary file when writing the new one fails', async () => {
    const path = join(dir, 'graph.json');
    const { graph, ada } = await populatedGraph();
    await graph.saveSnapshot(path);
    const previous = await readFile(path);
    // A value JSON cannot serialize makes the write fail after the temporary file was
    // opened, the same path a full disk or a failed fsync takes.
    graph.tables.put('contributors', { ...ada, metadata: { n: 1n } } as unknown as Contributor);
    await expect(graph.saveSnapshot(path)).rejects.toThrow(TypeError);
    expect(await readFile(path)).toEqual(previous);
    expect(await temporaryFiles(dir)).toEqual([]);
  });
});

type StoreKind = 'graph' | 'tasks';

const OPEN: Record<StoreKind, (snapshotPath: string) => Promise<unknown>> = {
  graph: (snapshotPath) => MemoryGraphStore.open({ snapshotPath }),
  tasks: (snapshotPath) => MemoryAgentTaskStore.open({ snapshotPath }),
};

async function validSnapshot(kind: StoreKind, path: string): Promise<string> {
  await (kind === 'graph' ? (await populatedGraph()).graph : await populatedTasks()).saveSnapshot(path);
  return readFile(path, 'utf8');
}

type Doc = { format: unknown; version: unknown; entities: Record<string, Record<string, unknown>[]> };

function edit(change: (doc: Doc) => void): (text: string) => string {
  return (text) => {
    const doc = JSON.parse(text) as Doc;
    change(doc);
    return JSON.stringify(doc);
  };
}

const UNKNOWN_UUID = '00000000-0000-4000-8000-00000000abcd';

describe('a corrupt snapshot makes open() throw SnapshotError', () => {
  const cases: { case: string; kind: StoreKind; corrupt: (text: string) => string; mentions: string[] }[] = [
    {
      case: 'truncated JSON',
      kind: 'graph',
      corrupt: (text) => text.slice(0, Math.floor(text.length / 2)),
      mentions: ['not valid JSON'],
    },
    { case: 'an empty file', kind: 'tasks', corrupt: () => '', mentions: ['not valid JSON'] },
    { case: 'a JSON array', kind: 'graph', corrupt: () => '[]', mentions: ['dualwrite-snapshot'] },
    {
      case: 'a wrong format tag',
      kind: 'graph',
      corrupt: edit((doc) => (doc.format = 'other-tool')),
      mentions: ['dualwrite-snapshot version 1'],
    },
    {
      case: 'an unknown version',
      kind: 'tasks',
      corrupt: edit((doc) => (doc.version = 2)),
      mentions: ['dualwrite-snapshot version 1'],
    },
    {
      case: 'no entities',
      kind: 'graph',
      corrupt: edit((doc) => delete (doc as Partial<Doc>).entities),
      mentions: ['no entities'],
    },
    {
      case: 'an entity that is not a list',
      kind: 'graph',
      corrupt: edit((doc) => ((doc.entities as Record<string, unknown>).projects = {})),
      mentions: ['projects'],
    },
    {
      case: 'a bad uuid',
      kind: 'graph',
      corrupt: edit((doc) => (doc.entities.contributors![1]!.id = 'not-a-uuid')),
      mentions: ['contributors[1]', 'id'],
    },
    {
      case: 'a cost with three decimals',
      kind: 'graph',
      corrupt: edit((doc) => (doc.entities.contributions![0]!.costAmount = '1.005')),
      mentions: ['contributions[0]', 'costAmount'],
    },
    {
      case: 'a timestamp without a time zone',
      kind: 'graph',
      corrupt: edit((doc) => (doc.entities.projects![2]!.createdAt = '2026-01-01T00:00:00')),
      mentions: ['projects[2]', 'createdAt'],
    },
    {
      case: 'a negative dependency count',
      kind: 'graph',
      corrupt: edit((doc) => (doc.entities.projects![0]!.dependencyCount = -1)),
      mentions: ['projects[0]', 'dependencyCount'],
    },
    {
      case: 'a record that is not an object',
      kind: 'graph',
      corrupt: edit((doc) => (doc.entities.assets![1] = 'asset' as never)),
      mentions: ['assets[1]'],
    },
    // CHECK constraints of schema 001 that PostgreSQL enforces on the same records.
    {
      case: 'a negative cost',
      kind: 'graph',
      corrupt: edit((doc) => (doc.entities.contributions![1]!.costAmount = '-1.00')),
      mentions: ['contributions[1]', 'costAmount'],
    },
    {
      case: 'a coherence score above 1',
      kind: 'graph',
      corrupt: edit((doc) => (doc.entities.contributions![2]!.coherenceScore = '1.50')),
      mentions: ['contributions[2]', 'coherenceScore'],
    },
    // Foreign keys of schema 001: a record whose reference is not in the file.
    {
      case: 'a contribution to a missing asset',
      kind: 'graph',
      corrupt: edit((doc) => (doc.entities.contributions![0]!.assetId = UNKNOWN_UUID)),
      mentions: ['contributions[0]', 'assetId'],
    },
    {
      case: 'a dependency on a missing project',
      kind: 'graph',
      corrupt: edit((doc) => (doc.entities.dependencies![1]!.to = { ecosystem: 'npm', name: 'ghost' })),
      mentions: ['dependencies[1]', 'to'],
    },
    {
      case: 'an unknown task status',
      kind: 'tasks',
      corrupt: edit((doc) => (doc.entities.agent_tasks![1]!.status = 'done')),
      mentions: ['agent_tasks[1]', 'status'],
    },
    {
      case: 'a progress above 100',
      kind: 'tasks',
      corrupt: edit((doc) => (doc.entities.agent_tasks![2]!.progressPct = 101)),
      mentions: ['agent_tasks[2]', 'progressPct'],
    },
  ];

  it.each(cases)('rejects $case, naming the file and the record ($kind store)', async ({ kind, corrupt, mentions }) => {
    const path = join(dir, `${kind}.json`);
    await writeFile(path, corrupt(await validSnapshot(kind, path)));
    const error = await OPEN[kind](path).then(
      () => undefined,
      (thrown: unknown) => thrown,
    );
    expect(error).toBeInstanceOf(SnapshotError);
    expect(error).toMatchObject({ name: 'SnapshotError' });
    const message = (error as Error).message;
    expect(message).toContain(path);
    for (const mention of mentions) expect(message).toContain(mention);
  });

  it.each(['graph', 'tasks'] as const)('rejects a path that cannot be read as a file (%s store)', async (kind) => {
    const path = join(dir, 'is-a-directory');
    await mkdir(path);
    await expect(OPEN[kind](path)).rejects.toThrow(SnapshotError);
    await expect(OPEN[kind](path)).rejects.toThrow(path);
  });
});

describe('a missing snapshot file', () => {
  it('opens an empty graph store that saves to that path', async () => {
    const path = join(dir, 'not-yet', 'graph.json');
    const graph = await MemoryGraphStore.open({ ...context(), snapshotPath: path });
    for (const entity of entityNames(GRAPH_ENTITIES)) expect(await graph.scanRecords(entity, ALL), entity).toEqual([]);
    await graph.upsertProject({ ecosystem: 'npm', name: 'first' });
    await graph.saveSnapshot();
    expect(await (await MemoryGraphStore.open({ snapshotPath: path })).countProjects()).toBe(1);
  });

  it('opens an empty task store that saves to that path', async () => {
    const path = join(dir, 'tasks.json');
    const tasks = await MemoryAgentTaskStore.open({ ...context(), snapshotPath: path });
    expect(await tasks.scanRecords('agent_tasks', ALL)).toEqual([]);
    await tasks.createTask({ direction: 'first', taskType: 'test', model: 'm', command: 'c' });
    await tasks.saveSnapshot();
    expect(
      await (await MemoryAgentTaskStore.open({ snapshotPath: path })).scanRecords('agent_tasks', ALL),
    ).toHaveLength(1);
  });
});
