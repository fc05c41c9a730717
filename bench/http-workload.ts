import type { AgentTaskStore } from '../src/stores/agent-task/agent-task-store.js';
import type { GraphStore } from '../src/stores/graph/graph-store.js';
import { withConcurrency } from './measure.js';

/** How many records of each kind the API holds before the load starts; reads pick among them. */
export interface HttpSeed {
  readonly projects: number;
  readonly contributors: number;
  readonly tasks: number;
}

/** What the load process (bench/http-load.ts) is asked to do, passed as JSON in its first argument. */
export interface LoadSettings {
  readonly url: string;
  readonly connections: number;
  /** Length of each round. */
  readonly seconds: number;
  /** Rounds run back to back, each reported on a line of its own. */
  readonly rounds: number;
  /** A round of this length run first and not reported (0: none), so the server's code is warm. */
  readonly warmUpSeconds: number;
  /** Requests per second over all connections; 0 sends as fast as the server answers. */
  readonly overallRate: number;
  readonly seed: HttpSeed;
  /** Eight hex digits that make this process's new ids unique in the database. */
  readonly runTag: string;
}

/** One round's figures, as the load process prints them (one JSON line per round). */
export interface LoadRound {
  readonly responses: number;
  readonly seconds: number;
  readonly perSecond: number;
  readonly p50Ms: number;
  readonly p95Ms: number;
  readonly p99Ms: number;
  /** Connection errors and timeouts (no answer at all). */
  readonly errors: number;
  /** Answers other than 2xx. */
  readonly non2xx: number;
}

export const seedProject = (i: number) => ({ ecosystem: 'npm', name: `bench-${i}` });
export const seedContributorId = (i: number) => `00000002-0000-4000-8000-${i.toString(16).padStart(12, '0')}`;
export const seedTaskId = (i: number) => `task_seed_${i}`;

/** Writes the seed records through `graph` and `tasks` (the runtime's dual-write stores, or plain memory ones). */
export async function seedStores(graph: GraphStore, tasks: AgentTaskStore, seed: HttpSeed): Promise<void> {
  await withConcurrency(seed.projects, 16, (i) =>
    graph.upsertProject({ ...seedProject(i), description: `seeded project ${i}` }),
  );
  await withConcurrency(seed.contributors, 16, (i) =>
    graph.createContributor({ id: seedContributorId(i), name: `seeded contributor ${i}` }),
  );
  await withConcurrency(seed.tasks, 16, (i) =>
    tasks.createTask({
      id: seedTaskId(i),
      direction: `seeded task ${i}`,
      taskType: 'impl',
      model: 'bench-model',
      command: 'run',
    }),
  );
}
