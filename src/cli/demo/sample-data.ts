import type { TaskStatus, TaskType } from '../../stores/agent-task/agent-task-model.js';
import type { AgentTaskStore } from '../../stores/agent-task/agent-task-store.js';
import type { GraphStore } from '../../stores/graph/graph-store.js';

/** Options of sampleWrites. */
export interface SampleOptions {
  /** Number of projects; other entities scale with it. Default 50. */
  readonly projects?: number;
  /** PRNG seed, so the same options give the same writes. Default 1. */
  readonly seed?: number;
  /** Time of the first write; each write is 1 s later. Default 2026-01-01T00:00:00Z. */
  readonly start?: string;
}

/** A store write as data: which method, with which fully decided arguments. */
export type SampleWrite =
  | {
      readonly store: 'graph';
      readonly method: 'upsertProject' | 'createContributor' | 'createAsset' | 'createContribution';
      readonly args: [object];
    }
  | { readonly store: 'graph'; readonly method: 'addDependency'; readonly args: [object, object, object] }
  | { readonly store: 'tasks'; readonly method: 'createTask'; readonly args: [object] }
  | { readonly store: 'tasks'; readonly method: 'updateTask'; readonly args: [string, object, object] };

const ECOSYSTEMS = ['npm', 'PyPI', 'crates', 'Maven'];
const WORDS = ['graph', 'core', 'util', 'fast', 'json', 'http', 'async', 'data', 'stream', 'Café', 'naïve', '日本'];
const TASK_TYPES: TaskType[] = ['spec', 'test', 'impl', 'review', 'heal'];
const LIFECYCLES: TaskStatus[][] = [
  [],
  ['running'],
  ['running', 'completed'],
  ['running', 'failed'],
  ['running', 'needs_decision'],
];

/**
 * A deterministic workload touching every entity, with ids and timestamps decided up
 * front, so applying it to any store gives identical records.
 */
export function sampleWrites(options: SampleOptions = {}): SampleWrite[] {
  const random = mulberry32(options.seed ?? 1);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
  let time = Date.parse(options.start ?? '2026-01-01T00:00:00.000Z');
  const at = () => new Date((time += 1000)).toISOString();
  let serial = 0;
  const uuid = () =>
    `${(options.seed ?? 1).toString(16).padStart(8, '0')}-0000-4000-8000-${(++serial).toString(16).padStart(12, '0')}`;
  const writes: SampleWrite[] = [];
  const projectCount = options.projects ?? 50;

  const projects = Array.from({ length: projectCount }, (_, i) => ({
    ecosystem: pick(ECOSYSTEMS),
    name: `${pick(WORDS)}-${pick(WORDS)}-${i}`,
  }));
  for (const project of projects) {
    writes.push({
      store: 'graph',
      method: 'upsertProject',
      args: [{ ...project, description: `${pick(WORDS)} ${pick(WORDS)} library`, at: at() }],
    });
  }
  for (let i = 0; i < projectCount * 2; i++) {
    const from = pick(projects);
    const to = pick(projects);
    if (from !== to) writes.push({ store: 'graph', method: 'addDependency', args: [from, to, { at: at() }] });
  }
  const contributors = Array.from({ length: Math.max(1, projectCount / 5) }, () => uuid());
  for (const id of contributors) {
    writes.push({
      store: 'graph',
      method: 'createContributor',
      args: [
        {
          id,
          name: `${pick(WORDS)} contributor`,
          metadata: { skills: [pick(WORDS)], level: Math.floor(random() * 5) },
          at: at(),
        },
      ],
    });
  }
  const assets = Array.from({ length: Math.max(1, projectCount / 10) }, () => uuid());
  for (const id of assets) {
    writes.push({
      store: 'graph',
      method: 'createAsset',
      args: [{ id, name: `${pick(WORDS)} asset`, assetType: pick(['code', 'doc', 'design']), at: at() }],
    });
  }
  for (let i = 0; i < projectCount * 2; i++) {
    const cents = Math.floor(random() * 100000);
    writes.push({
      store: 'graph',
      method: 'createContribution',
      args: [
        {
          id: uuid(),
          contributorId: pick(contributors),
          assetId: pick(assets),
          costAmount: (cents / 100).toFixed(2),
          coherenceScore: (Math.floor(random() * 101) / 100).toFixed(2),
          timestamp: at(),
        },
      ],
    });
  }
  for (let i = 0; i < projectCount; i++) {
    const id = `task_${(options.seed ?? 1).toString(16)}${i.toString(16).padStart(10, '0')}`;
    writes.push({
      store: 'tasks',
      method: 'createTask',
      args: [
        {
          id,
          direction: `${pick(WORDS)} the ${pick(WORDS)}`,
          taskType: pick(TASK_TYPES),
          model: 'demo-model',
          command: `run ${i}`,
          at: at(),
        },
      ],
    });
    for (const status of pick(LIFECYCLES))
      writes.push({
        store: 'tasks',
        method: 'updateTask',
        args: [id, { status, progressPct: status === 'running' ? 10 : 100 }, { at: at() }],
      });
  }
  return writes;
}

/** Applies one sample write to the matching store. */
export async function applySampleWrite(
  write: SampleWrite,
  stores: { graph: GraphStore; tasks: AgentTaskStore },
): Promise<unknown> {
  const target = (write.store === 'graph' ? stores.graph : stores.tasks) as unknown as Record<
    string,
    (...args: unknown[]) => Promise<unknown>
  >;
  return target[write.method]!(...write.args);
}

/** Small deterministic PRNG (mulberry32). */
export function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
