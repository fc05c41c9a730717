import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach } from 'vitest';
import { FlagState } from '../../flags/flag-state.js';
import { ManualFlagSource } from '../../flags/manual-flags.js';
import type { WriteContext } from '../../src/domain/write-context.js';
import { FileOutbox } from '../../src/dualwrite/file-outbox.js';
import type { Outbox } from '../../src/dualwrite/outbox.js';
import { DEFAULT_EVIDENCE_THRESHOLDS } from '../../src/runtime/evidence-gate.js';
import { openDualWrite } from '../../src/runtime/open-dual-write.js';
import type { DualWriteRuntime } from '../../src/runtime/dual-write-runtime.js';
import type { DualWriteRuntimeOptions } from '../../src/runtime/runtime-options.js';
import type { Side, Stage } from '../../src/ports/stage.js';
import { entityNames } from '../../src/domain/records.js';
import { AGENT_TASK_ENTITIES, type AgentTaskRecords } from '../../src/stores/agent-task/agent-task-records.js';
import { GRAPH_ENTITIES, type GraphRecords } from '../../src/stores/graph/graph-records.js';
import type { RecordPort } from '../../src/ports/record-port.js';
import { readAll } from '../../src/ports/record-scan.js';
import type { SqlExecutor } from '../../src/postgres/sql-executor.js';

export interface TestRuntimeOptions {
  readonly db: SqlExecutor;
  readonly stage?: Stage;
  readonly readPercent?: number;
  /** Open the flag layer from this environment (openFlags) instead of a ManualFlagSource. */
  readonly env?: NodeJS.ProcessEnv;
  readonly context?: WriteContext;
  readonly mirror?: DualWriteRuntimeOptions['mirror'];
  readonly replayer?: DualWriteRuntimeOptions['replayer'];
  /**
   * Shadow reads. Default: off ({ sampleRate: 0 }), since a sampled read's background
   * PostgreSQL query would land at random in tests that count or cut off PostgreSQL's
   * calls; {} is the runtime's default (the environment's rate, else each stage's).
   */
  readonly shadow?: DualWriteRuntimeOptions['shadow'];
  readonly transitions?: DualWriteRuntimeOptions['stage'];
  readonly lease?: DualWriteRuntimeOptions['lease'];
  /** Where background job runs are recorded. Default: the runtime's (PostgreSQL). */
  readonly jobs?: DualWriteRuntimeOptions['jobs'];
  /** An outbox to use (kept open by its owner), as a restarted process finds its journal. Default: a new FileOutbox. */
  readonly outbox?: Outbox;
  /** The stores to wrap. Default: the built-in GraphStore and AgentTaskStore. */
  readonly stores?: DualWriteRuntimeOptions['stores'];
  /** Existing in-memory stores, by store name. Default: new empty ones. */
  readonly memory?: DualWriteRuntimeOptions['memory'];
  /** The lineage generation the given memory was saved at. */
  readonly memoryGeneration?: number;
  /** Verifier settings; the background loop stays off (run it with rt.verifier.runOnce()). */
  readonly verifier?: Omit<NonNullable<DualWriteRuntimeOptions['verifier']>, 'enabled'>;
}

export interface TestRuntime {
  readonly rt: DualWriteRuntime;
  /** Flips the flags, as an operator would. */
  readonly source: ManualFlagSource;
  /** What the runtime logged, prefixed by level. */
  readonly logs: string[];
}

/**
 * Opens dual-write runtimes over a given database, each with a ManualFlagSource, a
 * FileOutbox in a temporary folder and a logger that collects lines; everything is
 * closed and removed after the test, in reverse order, with whatever else was deferred.
 */
export function useTestRuntimes(): {
  open(options: TestRuntimeOptions): Promise<TestRuntime>;
  defer(cleanup: () => Promise<unknown>): void;
} {
  const cleanups: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });
  const defer = (cleanup: () => Promise<unknown>) => void cleanups.push(cleanup);
  const open = async (options: TestRuntimeOptions): Promise<TestRuntime> => {
    const dir = await mkdtemp(join(tmpdir(), 'dw-runtime-'));
    defer(() => rm(dir, { recursive: true, force: true }));
    let outbox = options.outbox;
    if (!outbox) {
      const opened = await FileOutbox.open({ path: join(dir, 'outbox.jsonl') });
      defer(() => opened.close());
      outbox = opened;
    }
    const logs: string[] = [];
    const logger = {
      info: (line: string) => void logs.push(`info ${line}`),
      warn: (line: string) => void logs.push(`warn ${line}`),
      error: (line: string) => void logs.push(`error ${line}`),
    };
    const source = new ManualFlagSource({
      stage: options.stage ?? 'dual-write',
      readPercent: options.readPercent ?? 0,
    });
    const rt = await openDualWrite({
      db: options.db,
      env: options.env
        ? {
            DUALWRITE_LAST_FLAGS_PATH: join(dir, 'last-flags.json'),
            DUALWRITE_FLAGS_FILE: join(dir, 'flags.json'),
            ...options.env,
          }
        : {},
      flags: options.env ? undefined : new FlagState([source], { logger }),
      outbox,
      logger,
      context: options.context,
      // Probing on every call unless a test sets the circuit: outages here end when the test says so.
      mirror: { breaker: { probeMs: 0 }, ...options.mirror },
      replayer: options.replayer,
      shadow: options.shadow ?? { sampleRate: 0 },
      stage: options.transitions,
      lease: options.lease,
      jobs: options.jobs,
      stores: options.stores,
      memory: options.memory,
      memoryGeneration: options.memoryGeneration,
      verifier: { ...options.verifier, enabled: false },
    });
    defer(() => rt.close());
    return { rt, source, logs };
  };
  return { open, defer };
}

/**
 * The evidence gate's observations, made honestly: `reads` keyed reads (default: the gate's
 * minimum of shadow comparisons), each compared with PostgreSQL, which makes as many timed
 * PostgreSQL calls. Open the runtime with `shadow: { sampleRate: 1 }`, in dual-write or
 * read-shift. Each comparison finishes before the next read, so PostgreSQL's p95 is that of
 * single reads, not of a queue of them.
 */
export async function readForEvidence(
  rt: DualWriteRuntime,
  reads = DEFAULT_EVIDENCE_THRESHOLDS.minShadowComparisons,
): Promise<void> {
  for (let n = 0; n < reads; n++) {
    await rt.graph.getProject({ ecosystem: 'npm', name: `evidence-read-${n}` });
    await rt.shadow.settle();
  }
}

/** Every record of one side of a runtime, entity by entity. */
export async function dumpSide(rt: DualWriteRuntime, side: Side): Promise<Record<string, unknown[]>> {
  return dumpStores(rt[side]);
}

/** Every record of a pair of stores, entity by entity. */
export async function dumpStores(stores: {
  readonly graph: RecordPort<GraphRecords>;
  readonly tasks: RecordPort<AgentTaskRecords>;
}): Promise<Record<string, unknown[]>> {
  const out: Record<string, unknown[]> = {};
  for (const entity of entityNames(GRAPH_ENTITIES)) out[entity] = await readAll(stores.graph, entity);
  for (const entity of entityNames(AGENT_TASK_ENTITIES)) out[entity] = await readAll(stores.tasks, entity);
  return out;
}
