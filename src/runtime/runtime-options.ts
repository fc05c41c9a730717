import type pg from 'pg';
import type { Registry } from 'prom-client';
import type { FlagState, FlagStateOptions } from '../../flags/flag-state.js';
import type { VerifierLoopOptions } from '../../verifier/verifier-loop.js';
import type { WriteContext } from '../domain/write-context.js';
import type { Clock, IdGenerator } from '../domain/time.js';
import type { MirrorOptions } from '../dualwrite/mirror.js';
import type { Outbox } from '../dualwrite/outbox.js';
import type { ReplayerOptions } from '../dualwrite/replayer.js';
import type { ShadowOptions } from '../dualwrite/shadow.js';
import type { StageGateOptions } from '../dualwrite/stage-gate.js';
import type { MemoryAgentTaskStore } from '../stores/agent-task/memory-agent-task-store.js';
import type { MemoryGraphStore } from '../stores/graph/memory-graph-store.js';
import type { RuntimeLeaseOptions } from '../postgres/runtime-state/runtime-lease.js';
import type { SqlExecutor } from '../postgres/sql-executor.js';
import type { TaskSchedulerStore } from '../stores/task-scheduler/task-scheduler-store.js';
import type { AnyStoreDefinition } from '../stores/store-definition.js';
import type { RetreatThresholds } from './auto-retreat.js';
import type { DualWriteConfig } from './config.js';
import type { EvidenceThresholds } from './evidence-gate.js';

/** Options of openDualWrite; everything not given is read from the environment. */
export interface DualWriteRuntimeOptions {
  /** The configuration. Default: loadConfig(env), every environment variable parsed and validated at once. */
  readonly config?: DualWriteConfig;
  /** Where the configuration is read from when `config` is not given. Default process.env. */
  readonly env?: NodeJS.ProcessEnv;
  /**
   * The stores to wrap, each given by its definition, in dependency order (a store whose
   * records reference another's comes after it). Default: the GraphStore and the
   * AgentTaskStore (BUILT_IN_STORES).
   */
  readonly stores?: readonly AnyStoreDefinition[];
  /**
   * The application's existing in-memory stores, by store name (built by the store's
   * definition, or compatible with it). Default: for each store not given, a new empty one
   * (definition.createMemory()).
   */
  readonly memory?: {
    readonly graph?: MemoryGraphStore;
    readonly tasks?: MemoryAgentTaskStore;
    readonly [store: string]: object | undefined;
  };
  /**
   * The lineage generation the given memory was saved at (`runtime.lineage.generation`,
   * read after close() and kept with the snapshot). A process that starts where memory is
   * written after PostgreSQL has been mirrored rebuilds memory from PostgreSQL before it
   * serves, unless this equals the lineage's generation (no process started or moved
   * authority since the memory was saved). Default: none, so such a start rebuilds.
   */
  readonly memoryGeneration?: number;
  /**
   * The database: an open, migrated SqlExecutor (used as it is); the application's
   * node-postgres pool (migrated, used as it is, never ended: its search_path must reach
   * dualwrite's tables); or a connection string (opened with the POSTGRES_* pool settings).
   * Default: openDatabase(config.database) (DATABASE_URL or embedded PGlite).
   */
  readonly db?: SqlExecutor | pg.Pool | string;
  /** Metrics registry. Default: a new Registry. */
  readonly registry?: Registry;
  /**
   * Flags, or a function building them with the runtime's metrics and logger (so refusals
   * and the stage gauge are exported). Default: openFlags(config.flags) (Unleash, the flags file, env, last known).
   */
  readonly flags?: FlagState | ((options: FlagStateOptions) => FlagState);
  /**
   * Outbox. Default: when REDIS_URL is set, the RedisOutbox, falling back to a FileOutbox at
   * DUALWRITE_OUTBOX_PATH while Redis cannot be written; else that FileOutbox
   * (.dualwrite/outbox.jsonl).
   */
  readonly outbox?: Outbox;
  /**
   * The async mirror's write-ahead log (IntentLog): where it lives, or false to do without
   * it (an async write then survives a crash only once mirrored or journaled). Default path:
   * intents.jsonl beside a file outbox, else DUALWRITE_INTENT_LOG_PATH or .dualwrite/intents.jsonl.
   */
  readonly intentLog?: { readonly path?: string } | false;
  /** Mirror settings. Default mode: DUALWRITE_MIRROR_MODE or "sync". */
  readonly mirror?: Omit<MirrorOptions, 'outbox' | 'metrics' | 'logger' | 'transactions' | 'fence' | 'intentLog'>;
  readonly replayer?: Omit<ReplayerOptions, 'metrics' | 'logger'>;
  /**
   * The lease that keeps a second process off this database (each keeps its own memory).
   * Default: on, DUALWRITE_LEASE_TTL_MS (15 s) lifetime, waiting that plus 5 s at start for a crashed holder's to run out.
   */
  readonly lease?: RuntimeLeaseOptions | false;
  /** Stage transitions: how long writes may wait for one (default 5000 ms) and how often a refused one is retried (default 1000 ms). */
  readonly stage?: Pick<StageGateOptions, 'timeoutMs' | 'retryMs' | 'drainQueueLimit'>;
  /** Shadow reads. Default sample rate: DUALWRITE_SHADOW_SAMPLE_RATE, else each stage's default (5% in dual-write and read-shift, where the evidence gate needs comparisons). */
  readonly shadow?: ShadowOptions;
  readonly context?: WriteContext;
  readonly logger?: Pick<Console, 'info' | 'warn' | 'error'>;
  /**
   * The background verifier. Default: runs every DUALWRITE_VERIFY_INTERVAL_MS (300000; 0
   * disables), repairs when DUALWRITE_REPAIR=true, locked by Redis when REDIS_URL is set.
   */
  readonly verifier?: Partial<Omit<VerifierLoopOptions, 'db' | 'targets' | 'metrics'>> & { readonly enabled?: boolean };
  /**
   * Proving the sides equal after an outbox loss: the first pause before a failed attempt is
   * made again (default 2000 ms, doubling) and the longest (default 30000 ms); an attempt is
   * also made as soon as a mirror target answers again.
   */
  readonly recovery?: { readonly retryMs?: number; readonly maxRetryMs?: number };
  /**
   * The evidence an operator's advance needs (setFlags): thresholds (DEFAULT_EVIDENCE_THRESHOLDS)
   * and the window figures are measured over (default 5 minutes).
   */
  readonly evidence?: Partial<EvidenceThresholds> & { readonly windowMs?: number };
  /**
   * Automatic retreat: while memory is authoritative, reads go back to memory (dual-write)
   * and the mirror journals instead of waiting when PostgreSQL's error rate or p95 crosses
   * its threshold over the window (default 60 s). Default: DUALWRITE_AUTO_RETREAT (off).
   */
  readonly autoRetreat?:
    boolean | (Partial<RetreatThresholds> & { readonly windowMs?: number; readonly checkMs?: number });
  /**
   * The background jobs' record: each verifier run, each outbox replay round that did work
   * and each daily retention run is an execution under a task lock. Default: kept in
   * PostgreSQL (task_executions, task_locks), times from the system clock, random ids,
   * locks of 30 s renewed every 10 s.
   */
  readonly jobs?: {
    readonly store?: TaskSchedulerStore;
    readonly clock?: Clock;
    readonly ids?: IdGenerator;
    readonly lockTtlMs?: number;
  };
}
