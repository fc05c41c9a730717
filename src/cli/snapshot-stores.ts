import { access } from 'node:fs/promises';
import { MemoryAgentTaskStore } from '../stores/agent-task/memory-agent-task-store.js';
import { MemoryGraphStore } from '../stores/graph/memory-graph-store.js';
import type { SqlExecutor } from '../postgres/sql-executor.js';
import { AGENT_TASK_DEFINITION } from '../stores/agent-task/agent-task-store-definition.js';
import { GRAPH_DEFINITION } from '../stores/graph/graph-store-definition.js';
import { backfillStore, type BackfillStore } from '../../verifier/backfill.js';
import { verifyTarget, type AnyTarget } from '../../verifier/verify-target.js';
import { CliError, EXIT } from './exit-codes.js';
import type { SnapshotOptions } from './options.js';

/**
 * The in-memory stores loaded from the snapshot files a command was given, and what backfill,
 * verify and repair need of them: the one place the CLI names the built-in stores.
 */
export interface SnapshotStores {
  readonly graph?: MemoryGraphStore;
  readonly tasks?: MemoryAgentTaskStore;
}

/** True when the command was given a snapshot file (and so works on files, not on a running process). */
export function hasSnapshots(options: SnapshotOptions): boolean {
  return options.graphSnapshot !== undefined || options.tasksSnapshot !== undefined;
}

/**
 * Loads the snapshot files given. A file that does not exist is a usage error: the stores
 * would load it as empty, and a repair would then delete PostgreSQL's rows to match.
 */
export async function loadSnapshots(options: SnapshotOptions, command: string): Promise<SnapshotStores> {
  if (!hasSnapshots(options))
    throw new CliError(EXIT.usage, `${command} needs --graph-snapshot and/or --tasks-snapshot`);
  for (const path of [options.graphSnapshot, options.tasksSnapshot]) {
    if (path === undefined) continue;
    try {
      await access(path);
    } catch {
      throw new CliError(EXIT.usage, `snapshot file ${path} does not exist or cannot be read`);
    }
  }
  return {
    graph:
      options.graphSnapshot === undefined
        ? undefined
        : await MemoryGraphStore.open({ snapshotPath: options.graphSnapshot }),
    tasks:
      options.tasksSnapshot === undefined
        ? undefined
        : await MemoryAgentTaskStore.open({ snapshotPath: options.tasksSnapshot }),
  };
}

/** What the backfill copies: the stores whose snapshot was given (another store's rows in PostgreSQL are not its business). */
export function backfillStores(stores: SnapshotStores): BackfillStore[] {
  const copied: BackfillStore[] = [];
  if (stores.graph) copied.push(backfillStore(GRAPH_DEFINITION, stores.graph));
  if (stores.tasks) copied.push(backfillStore(AGENT_TASK_DEFINITION, stores.tasks));
  return copied;
}

/** What verify compares: each loaded snapshot against its tables in `db`. */
export function verifyTargets(stores: SnapshotStores, db: SqlExecutor): AnyTarget[] {
  const targets: AnyTarget[] = [];
  if (stores.graph) targets.push(verifyTarget(GRAPH_DEFINITION, stores.graph, GRAPH_DEFINITION.createPostgres(db)));
  if (stores.tasks)
    targets.push(verifyTarget(AGENT_TASK_DEFINITION, stores.tasks, AGENT_TASK_DEFINITION.createPostgres(db)));
  return targets;
}
