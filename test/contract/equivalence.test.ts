import { isDeepStrictEqual } from 'node:util';
import { describe, expect, it } from 'vitest';
import { StoreError } from '../../src/domain/errors.js';
import type { JsonObject, JsonValue } from '../../src/domain/json.js';
import type { AgentTaskRecords } from '../../src/stores/agent-task/agent-task-records.js';
import type { GraphRecords } from '../../src/stores/graph/graph-records.js';
import { availableBackends, useBackend, type Backend } from '../support/backends.js';

/**
 * One seeded pseudo-random workload, applied to the in-memory stores and to each SQL backend.
 * Every write carries explicit ids and times, so both sides get identical inputs and must
 * produce identical outcomes and identical records.
 */

const SEED = 0x5eed_2026;
const OPERATIONS = 300;

/** mulberry32: a small deterministic PRNG, so the workload is the same on every run. */
class Random {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  /** A float in [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** An integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  chance(p: number): boolean {
    return this.next() < p;
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }

  hex(digits: number): string {
    let text = '';
    for (let i = 0; i < digits; i++) text += this.int(16).toString(16);
    return text;
  }
}

/** One store call. `invalidField` marks an input that is invalid by itself: it must fail with ValidationError on that field. */
interface Operation {
  readonly store: 'graph' | 'tasks';
  readonly method: string;
  readonly args: readonly unknown[];
  readonly invalidField?: string;
}

type Outcome =
  { readonly ok: unknown } | { readonly error: string; readonly field?: string; readonly message?: string };

const GRAPH_WRITES = [
  'upsertProject',
  'addDependency',
  'createContributor',
  'createAsset',
  'createContribution',
] as const;
const TASK_WRITES = ['createTask', 'updateTask'] as const;
const STATUSES = ['pending', 'running', 'completed', 'failed', 'needs_decision'] as const;
const TASK_TYPES = ['spec', 'test', 'impl', 'review', 'heal'] as const;

/** Project keys, including names whose code point, UTF-16 and locale orders differ and names that change when folded. */
const PROJECT_REFS = [
  { ecosystem: 'npm', name: 'react' },
  { ecosystem: 'npm', name: 'left-pad' },
  { ecosystem: 'npm', name: 'a b' },
  { ecosystem: 'npm', name: 'Z' },
  { ecosystem: 'npm', name: 'é' },
  { ecosystem: 'npm', name: '\uFF5E' },
  { ecosystem: 'npm', name: '\u{1F600}' },
  { ecosystem: 'npm', name: '100%' },
  { ecosystem: 'npm-x', name: 'a' },
  { ecosystem: 'PyPI', name: 'Requests' },
  { ecosystem: 'pypi', name: 'İstanbul' },
  { ecosystem: 'go', name: 'ΣΑΣ' },
  { ecosystem: 'cargo', name: 'serde_json' },
  { ecosystem: 'cargo', name: 'never-upserted' },
] as const;
const DESCRIPTIONS = [
  null,
  undefined,
  '',
  'A JavaScript library for building UIs',
  'Pads strings on the LEFT',
  '100% fun_stuff',
  'İstanbul ÇAĞ',
  'Ünïcödé ✓ 😀',
  'HTTP for Humans™',
  'serde_json: JSON for Rust',
  'Σίσυφος',
];
const URLS = [null, undefined, 'https://example.com', 'https://example.com/é?q=1'];
const NAMES = ['Ada', 'Grace Hopper', 'Zoë', '李小龙', '  spaced  '];
const COSTS: readonly (string | number)[] = ['0', '0.10', 12.5, '1.500', ' 7.25 ', 3, '100', '0.01', '12.30'];
const SCORES: readonly (string | number)[] = ['0', '0.5', 1, '1.00', 0.75, '0.99'];
const SPECIAL_TASK_IDS = ['task_Z', 'task_a', 'task_A', 'task_é', 'task_\u{1F600}', 'task_\uFF5E', 'task_ b'];
/** 200 code points, within the 255 limit, but 400 once folded to lowercase ('İ' becomes 'i' + U+0307). */
const LONG_FOLDING_NAME = 'İ'.repeat(200);
/** Instants at the edges of the supported range and around the epoch. */
const EDGE_TIMES = [
  '0001-01-01T00:00:00.000Z',
  '0099-12-31T23:59:59.999Z',
  '9999-12-31T23:59:59.999Z',
  '1969-12-31T23:59:59.999Z',
];
const JSON_SCALARS: readonly JsonValue[] = [
  0,
  -0,
  1,
  -1.5,
  0.1,
  1e21,
  5e-324,
  1.7976931348623157e308,
  2 ** 53,
  'x',
  '',
  'é😀',
  '\u2028',
  'a"b\\c',
  true,
  false,
  null,
];
const JSON_KEYS = ['a', 'b', 'Z', 'é', '😀', '\uFF5E', 'key with space', '10', '2', ''];

function randomJson(rng: Random, depth = 0): JsonObject {
  const object: JsonObject = {};
  for (let i = rng.int(4); i > 0; i--) {
    const roll = rng.next();
    object[rng.pick(JSON_KEYS)] =
      roll < 0.6 || depth >= 2
        ? rng.pick(JSON_SCALARS)
        : roll < 0.8
          ? Array.from({ length: rng.int(3) }, () => rng.pick(JSON_SCALARS))
          : randomJson(rng, depth + 1);
  }
  return object;
}

/** Builds the workload. It tracks the ids it handed out, never the stores' state. */
function workload(seed: number, size: number): Operation[] {
  const rng = new Random(seed);
  const contributors: string[] = [];
  const assets: string[] = [];
  const contributions: string[] = [];
  const tasks: string[] = [];
  let now = Date.UTC(2026, 0, 1);

  /** A write time: mostly increasing, often tied, sometimes spelled with an offset, rarely at the range's edges. */
  const stamp = (): string => {
    now += rng.int(3) * 1000;
    const roll = rng.next();
    if (roll < 0.02) return rng.pick(EDGE_TIMES);
    if (roll < 0.15) return new Date(now + 2 * 3600_000).toISOString().replace('Z', '+02:00');
    return new Date(now).toISOString();
  };
  const freshUuid = (): string => {
    const id = `${rng.hex(8)}-${rng.hex(4)}-4${rng.hex(3)}-${rng.pick(['8', '9', 'a', 'b'])}${rng.hex(3)}-${rng.hex(12)}`;
    return rng.chance(0.1) ? id.toUpperCase() : id;
  };
  const existingOr = (pool: string[], p: number): string =>
    pool.length > 0 && rng.chance(p) ? rng.pick(pool) : freshUuid();
  const projectRef = () => {
    const ref = rng.pick(PROJECT_REFS);
    return rng.chance(0.3) ? { ecosystem: ref.ecosystem.toUpperCase(), name: ref.name.toUpperCase() } : { ...ref };
  };
  const taskId = (): string => (tasks.length > 0 && rng.chance(0.85) ? rng.pick(tasks) : 'task_unknown');
  /** Applies one invalid variant with probability p; returns the field it makes invalid. */
  const maybeInvalid = <T extends object>(
    input: T,
    p: number,
    variants: readonly [string, Partial<Record<keyof T, unknown>>][],
  ) => {
    if (!rng.chance(p)) return { input, invalidField: undefined };
    const [field, change] = rng.pick(variants);
    return { input: { ...input, ...change }, invalidField: field };
  };

  const generators: [number, () => Operation][] = [
    [
      14,
      () => {
        const ref = projectRef();
        const base = {
          ...ref,
          // Names of many 'İ' pass the 255 code point limit but grow past it when folded.
          ...(rng.chance(0.05) ? { name: LONG_FOLDING_NAME } : {}),
          description: rng.pick(DESCRIPTIONS),
          homepageUrl: rng.pick(URLS),
          repositoryUrl: rng.pick(URLS),
          at: stamp(),
        };
        const { input, invalidField } = maybeInvalid(base, 0.1, [
          ['name', { name: '' }],
          ['name', { name: '   ' }],
          ['ecosystem', { ecosystem: 'e'.repeat(101) }],
          ['homepageUrl', { homepageUrl: `https://${'h'.repeat(493)}` }],
          ['description', { description: 'nul\u0000' }],
          ['repositoryUrl', { repositoryUrl: 'x\uD800' }],
          ['at', { at: 'yesterday' }],
        ]);
        return { store: 'graph', method: 'upsertProject', args: [input], invalidField };
      },
    ],
    [
      14,
      () => {
        const from = projectRef();
        const roll = rng.next();
        if (roll < 0.05)
          return {
            store: 'graph',
            method: 'addDependency',
            args: [from, { ...from, name: from.name.toLowerCase() }, { at: stamp() }],
            invalidField: 'to',
          };
        if (roll < 0.08)
          return {
            store: 'graph',
            method: 'addDependency',
            args: [{ ...from, name: '' }, projectRef(), { at: stamp() }],
            invalidField: 'from.name',
          };
        let to = projectRef();
        while (
          to.name.toLowerCase() === from.name.toLowerCase() &&
          to.ecosystem.toLowerCase() === from.ecosystem.toLowerCase()
        )
          to = projectRef();
        return { store: 'graph', method: 'addDependency', args: [from, to, { at: stamp() }] };
      },
    ],
    [
      7,
      () => {
        const id = existingOr(contributors, 0.1);
        const base = {
          id,
          name: rng.pick(NAMES),
          email: rng.pick([null, undefined, 'ada@example.com']),
          githubUsername: rng.pick([null, undefined, 'ada']),
          walletAddress: rng.pick([null, undefined, '0xABC']),
          metadata: rng.chance(0.8) ? randomJson(rng) : rng.pick([null, undefined]),
          at: stamp(),
        };
        const { input, invalidField } = maybeInvalid(base, 0.1, [
          ['name', { name: ' ' }],
          ['id', { id: 'not-a-uuid' }],
          ['metadata', { metadata: [1] }],
          ['email', { email: 'e'.repeat(256) }],
          ['metadata.bad', { metadata: { bad: 'x\u0000' } }],
        ]);
        if (!invalidField) contributors.push(id.toLowerCase());
        return { store: 'graph', method: 'createContributor', args: [input], invalidField };
      },
    ],
    [
      7,
      () => {
        const id = existingOr(assets, 0.1);
        const base = {
          id,
          name: rng.pick(NAMES),
          description: rng.pick(DESCRIPTIONS),
          assetType: rng.pick(['code', 'doc', 'design', 'data']),
          metadata: randomJson(rng),
          at: stamp(),
        };
        const { input, invalidField } = maybeInvalid(base, 0.1, [
          ['assetType', { assetType: 'x'.repeat(51) }],
          ['name', { name: '' }],
          ['assetType', { assetType: '\t' }],
        ]);
        if (!invalidField) assets.push(id.toLowerCase());
        return { store: 'graph', method: 'createAsset', args: [input], invalidField };
      },
    ],
    [
      16,
      () => {
        // Large costs all go to the first asset, so its total overflows NUMERIC(15,2) on the second one.
        const large = assets.length > 0 && rng.chance(0.1);
        const base = {
          id: existingOr(contributions, 0.05),
          contributorId: existingOr(contributors, 0.9),
          assetId: large ? assets[0]! : existingOr(assets, 0.9),
          costAmount: large ? '6000000000000.00' : rng.pick(COSTS),
          coherenceScore: rng.pick(SCORES),
          metadata: rng.chance(0.5) ? randomJson(rng) : undefined,
          timestamp: stamp(),
        };
        const { input, invalidField } = maybeInvalid(base, 0.1, [
          ['costAmount', { costAmount: '-1' }],
          ['costAmount', { costAmount: '1.234' }],
          ['costAmount', { costAmount: 'abc' }],
          ['costAmount', { costAmount: 0.1 + 0.2 }],
          ['coherenceScore', { coherenceScore: '1.01' }],
          ['contributorId', { contributorId: 'nope' }],
          ['timestamp', { timestamp: '2026-02-30T00:00:00Z' }],
        ]);
        if (!invalidField) contributions.push(base.id.toLowerCase());
        return { store: 'graph', method: 'createContribution', args: [input], invalidField };
      },
    ],
    [
      12,
      () => {
        const id = rng.chance(0.2) ? rng.pick(SPECIAL_TASK_IDS) : `task_${rng.hex(6)}`;
        const base = {
          id,
          direction: rng.pick(['write the spec', ' fix it ', 'Ünïcödé 😀']),
          taskType: rng.pick(TASK_TYPES),
          model: rng.pick(['claude', 'gpt', '😀'.repeat(100)]),
          command: rng.pick(['run', 'echo "hi"\n', '']),
          context: rng.chance(0.7) ? randomJson(rng) : rng.pick([null, undefined]),
          tier: rng.pick([undefined, null, 'gold', 't'.repeat(50)]),
          at: stamp(),
        };
        const { input, invalidField } = maybeInvalid(base, 0.1, [
          ['taskType', { taskType: 'deploy' }],
          ['direction', { direction: '  ' }],
          ['model', { model: '😀'.repeat(101) }],
          ['id', { id: 'x'.repeat(51) }],
          ['command', { command: 'a\u0000' }],
        ]);
        if (!invalidField) tasks.push(id);
        return { store: 'tasks', method: 'createTask', args: [input], invalidField };
      },
    ],
    [
      20,
      () => {
        const patch: Record<string, unknown> = {};
        if (rng.chance(0.7)) patch.status = rng.pick(STATUSES);
        if (rng.chance(0.25)) patch.output = rng.pick([null, 'ok', '出力']);
        if (rng.chance(0.25)) patch.progressPct = rng.pick([null, 0, 50, 100]);
        if (rng.chance(0.2)) patch.currentStep = rng.pick([null, 'step 1']);
        if (rng.chance(0.2)) patch.decisionPrompt = rng.pick([null, 'which one?']);
        if (rng.chance(0.2)) patch.decision = rng.pick([null, 'this one']);
        if (rng.chance(0.2)) patch.context = rng.chance(0.8) ? randomJson(rng) : null;
        const options = { ...(rng.chance(0.3) ? { expectedStatus: rng.pick(STATUSES) } : {}), at: stamp() };
        const id = taskId();
        if (rng.chance(0.08)) {
          const [field, badPatch, badOptions] = rng.pick([
            ['progressPct', { progressPct: 101 }, {}],
            ['progressPct', { progressPct: -1 }, {}],
            ['progressPct', { progressPct: 1.5 }, {}],
            ['status', { status: 'done' }, {}],
            ['startedAt', { startedAt: '2026-01-01T00:00:00.000Z' }, {}],
            ['expectedStatus', {}, { expectedStatus: 'paused' }],
          ] as const);
          return {
            store: 'tasks',
            method: 'updateTask',
            args: [id, { ...patch, ...badPatch }, { ...options, ...badOptions }],
            invalidField: field,
          };
        }
        return { store: 'tasks', method: 'updateTask', args: [id, patch, options] };
      },
    ],
    [
      10,
      () => {
        const reads: (() => Operation)[] = [
          () => ({ store: 'graph', method: 'getProject', args: [projectRef()] }),
          () => ({ store: 'graph', method: 'countProjects', args: [] }),
          () => ({ store: 'graph', method: 'countDependents', args: [projectRef()] }),
          () => ({
            store: 'graph',
            method: 'search',
            args: [rng.pick(['', 'a', 'PAD', '%', '_', 'é', 'İ']), 1 + rng.int(5)],
          }),
          () => ({ store: 'graph', method: 'listContributors', args: [1 + rng.int(5)] }),
          () => ({ store: 'graph', method: 'listAssets', args: [1 + rng.int(5)] }),
          () => ({ store: 'graph', method: 'getContributor', args: [existingOr(contributors, 0.8)] }),
          () => ({ store: 'graph', method: 'getAsset', args: [existingOr(assets, 0.8)] }),
          () => ({ store: 'graph', method: 'listContributionsByAsset', args: [existingOr(assets, 0.8)] }),
          () => ({ store: 'graph', method: 'listContributionsByContributor', args: [existingOr(contributors, 0.8)] }),
          () => ({ store: 'tasks', method: 'getTask', args: [taskId()] }),
          () => ({
            store: 'tasks',
            method: 'listTasks',
            args: [
              {
                status: rng.chance(0.5) ? rng.pick(STATUSES) : undefined,
                taskType: rng.chance(0.3) ? rng.pick(TASK_TYPES) : undefined,
                limit: 1 + rng.int(5),
                offset: rng.int(3),
              },
            ],
          }),
          () => ({ store: 'tasks', method: 'attention', args: [1 + rng.int(5)] }),
          () => ({ store: 'tasks', method: 'countByStatus', args: [] }),
        ];
        return rng.pick(reads)();
      },
    ],
  ];

  const total = generators.reduce((sum, [weight]) => sum + weight, 0);
  const operations: Operation[] = [];
  while (operations.length < size) {
    let roll = rng.int(total);
    const [, generate] = generators.find(([weight]) => (roll -= weight) < 0)!;
    operations.push(generate());
  }
  return operations;
}

async function perform(backend: Backend, operation: Operation): Promise<Outcome> {
  const target = backend[operation.store] as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>;
  try {
    // A fresh copy per store, so neither can see what the other did to its input.
    return { ok: await target[operation.method]!(...structuredClone(operation.args)) };
  } catch (error) {
    if (error instanceof StoreError) return { error: error.name, field: error.field };
    return { error: `unexpected ${(error as Error).name}`, message: (error as Error).message };
  }
}

async function performAll(backend: Backend, operations: readonly Operation[]): Promise<Outcome[]> {
  const outcomes: Outcome[] = [];
  for (const operation of operations) outcomes.push(await perform(backend, operation));
  return outcomes;
}

const GRAPH_ENTITIES: readonly (keyof GraphRecords)[] = [
  'projects',
  'dependencies',
  'contributors',
  'assets',
  'contributions',
];

async function allRecords(backend: Backend): Promise<Record<keyof GraphRecords | keyof AgentTaskRecords, unknown[]>> {
  const records = {} as Record<keyof GraphRecords | keyof AgentTaskRecords, unknown[]>;
  for (const entity of GRAPH_ENTITIES) records[entity] = await backend.graph.scanRecords(entity, { limit: 100_000 });
  records.agent_tasks = await backend.tasks.scanRecords('agent_tasks', { limit: 100_000 });
  return records;
}

function describeOperation(operation: Operation): string {
  const text = `${operation.method}(${JSON.stringify(operation.args)})`;
  return text.length > 300 ? `${text.slice(0, 300)}…` : text;
}

/** Operations whose outcomes differ, with both outcomes. */
function differences(
  operations: readonly Operation[],
  expected: readonly Outcome[],
  actual: readonly Outcome[],
  name: string,
) {
  return operations.flatMap((operation, index) =>
    isDeepStrictEqual(expected[index], actual[index])
      ? []
      : [{ index, call: describeOperation(operation), memory: expected[index], [name]: actual[index] }],
  );
}

const SEARCHES = ['', 'react', 'PAD', '%', '_', 'İ', 'i̇', 'ü', '😀', 'ς', 'Σ', 'json', 'a b', 'no-such-thing', '\\'];

/** Reads that cover the final state: every key in the pools, every list and count. */
function finalReads(operations: readonly Operation[]): Operation[] {
  const ids = (method: string, field: string): string[] => [
    ...new Set(
      operations
        .filter((op) => op.method === method && !op.invalidField)
        .map((op) => String((op.args[0] as Record<string, unknown>)[field])),
    ),
  ];
  return [
    { store: 'graph', method: 'countProjects', args: [] },
    ...PROJECT_REFS.flatMap((ref): Operation[] => [
      { store: 'graph', method: 'getProject', args: [ref] },
      { store: 'graph', method: 'countDependents', args: [ref] },
    ]),
    ...SEARCHES.map((query): Operation => ({ store: 'graph', method: 'search', args: [query, 1000] })),
    { store: 'graph', method: 'search', args: [''] },
    { store: 'graph', method: 'listContributors', args: [1000] },
    { store: 'graph', method: 'listAssets', args: [1000] },
    ...ids('createContributor', 'id').map((id): Operation => ({
      store: 'graph',
      method: 'listContributionsByContributor',
      args: [id],
    })),
    ...ids('createAsset', 'id').map((id): Operation => ({
      store: 'graph',
      method: 'listContributionsByAsset',
      args: [id],
    })),
    ...[undefined, ...STATUSES].flatMap((status) =>
      [undefined, ...TASK_TYPES].map((taskType): Operation => ({
        store: 'tasks',
        method: 'listTasks',
        args: [{ status, taskType, limit: 1000 }],
      })),
    ),
    { store: 'tasks', method: 'attention', args: [1000] },
    { store: 'tasks', method: 'countByStatus', args: [] },
  ];
}

const memoryFactory = availableBackends(['memory'])[0]!;
const OPERATIONS_UNDER_TEST = workload(SEED, OPERATIONS);

for (const factory of availableBackends(['pglite', 'postgres'])) {
  describe(`memory and ${factory.name} under one seeded random workload`, () => {
    const memory = useBackend(memoryFactory);
    const sql = useBackend(factory);
    const operations = OPERATIONS_UNDER_TEST;

    it('gives every operation the same outcome: the same result, or the same error class and field', async () => {
      const expected = await performAll(memory.current, operations);
      const actual = await performAll(sql.current, operations);
      expect(differences(operations, expected, actual, factory.name)).toEqual([]);
    });

    it('rejects every deliberately invalid input with ValidationError naming its field, on both stores', async () => {
      for (const backend of [memory.current, sql.current]) {
        const outcomes = await performAll(backend, operations);
        const wrong = operations.flatMap((operation, index) =>
          operation.invalidField &&
          !isDeepStrictEqual(outcomes[index], { error: 'ValidationError', field: operation.invalidField })
            ? [
                {
                  index,
                  store: backend.name,
                  call: describeOperation(operation),
                  expected: operation.invalidField,
                  outcome: outcomes[index],
                },
              ]
            : [],
        );
        expect(wrong).toEqual([]);
      }
    });

    it('exercises every write with successes and failures, and reaches the edge cases it is built for', async () => {
      const outcomes = await performAll(memory.current, operations);
      for (const method of [...GRAPH_WRITES, ...TASK_WRITES]) {
        const results = outcomes.filter((_, index) => operations[index]!.method === method);
        expect({ method, succeeded: results.some((outcome) => 'ok' in outcome) }).toEqual({ method, succeeded: true });
        expect({ method, failed: results.some((outcome) => 'error' in outcome) }).toEqual({ method, failed: true });
      }
      expect(operations.filter((operation) => operation.invalidField).length).toBeGreaterThanOrEqual(10);
      // The edge cases the workload is meant to reach.
      const text = operations.map((operation) => JSON.stringify(operation.args)).join('\n');
      expect(text).toContain(LONG_FOLDING_NAME);
      expect(text).toMatch(/"00\d\d-\d\d-\d\dT/); // a year below 100
      const overflows = outcomes.filter(
        (outcome, index) =>
          !operations[index]!.invalidField &&
          isDeepStrictEqual(outcome, { error: 'ValidationError', field: 'costAmount' }),
      );
      expect(overflows.length).toBeGreaterThanOrEqual(1);
    });

    it('ends with deep-equal records in every entity', async () => {
      await performAll(memory.current, operations);
      await performAll(sql.current, operations);
      const expected = await allRecords(memory.current);
      for (const records of Object.values(expected)) expect(records.length).toBeGreaterThan(0);
      expect(await allRecords(sql.current)).toStrictEqual(expected);
    });

    it('returns the same search, list and count results afterwards', async () => {
      await performAll(memory.current, operations);
      await performAll(sql.current, operations);
      const reads = finalReads(operations);
      const expected = await performAll(memory.current, reads);
      const actual = await performAll(sql.current, reads);
      expect(differences(reads, expected, actual, factory.name)).toEqual([]);
      const searches = expected.filter((_, index) => reads[index]!.method === 'search');
      expect(
        searches.filter((outcome) => 'ok' in outcome && (outcome.ok as unknown[]).length > 0).length,
      ).toBeGreaterThanOrEqual(8);
    });
  });
}
