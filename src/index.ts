// The public API of dualwrite: what `import ... from 'dualwrite'` gives. Anything not
// exported here is internal, and deep imports are not part of the contract.

// The composition root: one call assembles the runtime an API embeds.
export { openDualWrite } from './runtime/open-dual-write.js';
export type { DualWriteRuntimeOptions } from './runtime/runtime-options.js';
export type { DualWriteRuntime, RuntimeStore } from './runtime/dual-write-runtime.js';
export type { OperatorRequest } from './runtime/operator-request.js';
export { loadConfig, ConfigError, type DualWriteConfig } from './runtime/config.js';
export {
  judgeMove,
  isAdvance,
  EvidenceRefusedError,
  DEFAULT_EVIDENCE_THRESHOLDS,
  type Evidence,
  type EvidenceCheck,
  type EvidenceThresholds,
  type GateVerdict,
} from './runtime/evidence-gate.js';

// The example HTTP API (fastify), for serving the stores and the admin routes.
export { buildApi, type ApiOptions } from './api/app.js';
export { serve, type ServeOptions, type ServedApi } from './api/serve.js';
export type { AdminRuntime } from './api/admin-runtime.js';

// Ports: the store interfaces, records, stages and flags.
export type { GraphStore } from './stores/graph/graph-store.js';
export type { AgentTaskStore } from './stores/agent-task/agent-task-store.js';
export type { RecordPort, RecordKey, ScanOptions } from './ports/record-port.js';
export type { StoreDescription, MethodSpec, ReadSpec, WriteSpec } from './ports/store-description.js';
export { STAGES, STAGE_POLICIES, type Stage, type Side, type StagePolicy } from './ports/stage.js';
export type { MigrationFlags, EffectiveFlags, FlagSource, FlagReader, FlagRecorder } from './ports/flags.js';

// The domain: records, inputs and the errors every store raises alike.
export {
  DualWriteError,
  RequestRefusedError,
  StoreError,
  ValidationError,
  NotFoundError,
  ConflictError,
  TransitionError,
  UnavailableError,
} from './domain/errors.js';
export type {
  Project,
  ProjectRef,
  ProjectInput,
  DependencyEdge,
  DependencyOptions,
  Contributor,
  ContributorInput,
  Asset,
  AssetInput,
  Contribution,
  ContributionInput,
} from './stores/graph/graph-model.js';
export type { WriteContext } from './domain/write-context.js';
export type {
  AgentTask,
  TaskInput,
  TaskPatch,
  TaskStatus,
  TaskType,
  TaskListQuery,
  TaskUpdateOptions,
  TaskUpdateResult,
} from './stores/agent-task/agent-task-model.js';
export type { EntityCatalog, EntityDefinition } from './domain/records.js';
export type { AgentTaskRecords } from './stores/agent-task/agent-task-records.js';
export type { GraphRecords } from './stores/graph/graph-records.js';

// Store definitions (one per store interface) and both implementations of the built-in ones.
export { GRAPH_DEFINITION } from './stores/graph/graph-store-definition.js';
export { AGENT_TASK_DEFINITION } from './stores/agent-task/agent-task-store-definition.js';
export { BUILT_IN_STORES } from './stores/built-in-stores.js';
export type {
  StoreDefinition,
  AnyStoreDefinition,
  MemoryStoreOf,
  PostgresStoreOf,
  StoreOptions,
} from './stores/store-definition.js';
export { MemoryGraphStore } from './stores/graph/memory-graph-store.js';
export { MemoryAgentTaskStore } from './stores/agent-task/memory-agent-task-store.js';
export { MemoryTables } from './memory/memory-tables.js';
// What a store's memory side gives the verifier: MemoryRangeChecksums serves any store built on MemoryTables.
export { MemoryRangeChecksums } from './memory/memory-range-checksums.js';
export type { RangeChecksums, RangeChecksum, KeyRange } from './ports/range-checksums.js';
export type { RowHashes } from './postgres/row-hash.js';
export { PostgresGraphStore } from './stores/graph/postgres-graph-store.js';
export { PostgresAgentTaskStore } from './stores/agent-task/postgres-agent-task-store.js';
export { TableMapping, type Column, type ColumnType } from './postgres/table-mapping.js';
export { mappedEntity, type PostgresEntity, type EntitySql } from './postgres/entity-sql.js';

// PostgreSQL: opening, migrating, executors, health and the audit trail.
export { openDatabase, type DatabaseConfig, type OpenedDatabase } from './postgres/open-database.js';
export {
  migrate,
  loadMigrations,
  MigrationError,
  type Migration,
  type MigrationReport,
} from './postgres/migrations.js';
export { PgPoolExecutor } from './postgres/pg-pool-executor.js';
export { PgliteExecutor } from './postgres/pglite-executor.js';
export type { SqlExecutor, SqlQueryable, SqlTransaction } from './postgres/sql-executor.js';
export type { PostgresPoolOptions, SslMode } from './postgres/pool-config.js';
export { readServerHealth } from './postgres/operations/server-health.js';
export type { PoolStats, ServerHealth } from './ports/database-health.js';
export {
  AuditLog,
  PROCESS_PRINCIPAL,
  type AuditAction,
  type AuditEvent,
  type AuditEventInput,
  type Principal,
} from './postgres/runtime-state/audit-log.js';

// The dual-write machinery, for wiring a runtime of one's own.
export { createDualWriteStore, type DualWriteStoreOptions } from './dualwrite/dual-write-store.js';
export { DualWriteMetrics, METRIC } from './dualwrite/metrics.js';
export { FileOutbox, type FileOutboxOptions } from './dualwrite/file-outbox.js';
export { RedisOutbox, type RedisOutboxOptions } from './dualwrite/redis-outbox.js';
export type { Outbox, OutboxEntry, MirrorOp } from './dualwrite/outbox.js';
export { isDataError, type DataFailure } from './dualwrite/data-error.js';
export type { HeldEntry } from './dualwrite/held-entries.js';
export type { MirrorMode } from './dualwrite/mirror.js';
export type { GateState } from './dualwrite/stage-gate.js';

// Flag sources.
export { FlagState, type FlagStateOptions } from '../flags/flag-state.js';
export { openFlags, type FlagsConfig } from '../flags/open-flags.js';
export { ManualFlagSource } from '../flags/manual-flags.js';
export { FileFlagSource, type FileFlagOptions } from '../flags/file-flags.js';
export { EnvFlagSource } from '../flags/env-flags.js';
export { UnleashFlagSource, type UnleashFlagOptions } from '../flags/unleash-flags.js';
export { FlagSourceConflictError } from '../flags/migration-flags.js';

// Verification, repair and backfill.
export {
  verify,
  type VerifyReport,
  type VerifyOptions,
  type Difference,
  type DifferenceKind,
  type EntityReport,
} from '../verifier/verify.js';
export { repair, type RepairResult, type RepairOptions, type RepairOutcome } from '../verifier/repair.js';
export {
  backfill,
  backfillStore,
  type BackfillOptions,
  type BackfillReport,
  type BackfillStore,
  type BackfillProgress,
} from '../verifier/backfill.js';
export { verifyTarget, type VerifyTarget, type AnyTarget } from '../verifier/verify-target.js';
export { VerifierLoop, type VerifierLoopOptions } from '../verifier/verifier-loop.js';
export { VerifierMetrics, VERIFY_METRIC } from '../verifier/metrics.js';

// The other migrations, each an opt-in store definition (not among BUILT_IN_STORES).
// Graph jobs: tenant-isolated build and overlay jobs with compare-and-set and event logs.
export type { GraphJobStore } from './stores/graph-job/graph-job-store.js';
export {
  GRAPH_JOB_KINDS,
  GRAPH_JOB_STATUSES,
  NEXT_GRAPH_JOB_STATUSES,
  type GraphJob,
  type GraphJobEvent,
  type GraphJobInput,
  type GraphJobReplacement,
  type GraphJobReplaceOptions,
  type GraphJobEventInput,
  type GraphJobListQuery,
  type GraphJobEventQuery,
  type GraphJobKind,
  type GraphJobStatus,
} from './stores/graph-job/graph-job-model.js';
export { type GraphJobRecords } from './stores/graph-job/graph-job-records.js';
export { GRAPH_JOB_DEFINITION } from './stores/graph-job/graph-job-store-definition.js';
export { MemoryGraphJobStore } from './stores/graph-job/memory-graph-job-store.js';
export { PostgresGraphJobStore } from './stores/graph-job/postgres-graph-job-store.js';
// Dispatch: the dispatch app's SQLite database as the old side.
export { DISPATCH_DEFINITION } from './stores/dispatch/dispatch-store-definition.js';
export type { DispatchStore } from './stores/dispatch/dispatch-store.js';
export {
  DISPATCH_STATUSES,
  type DispatchStatus,
  type DispatchTask,
  type DispatchTaskInput,
  type DispatchClaim,
  type DispatchTaskPatch,
  type DispatchUpdateOptions,
  type DispatchUpdateResult,
  type DispatchTaskQuery,
} from './stores/dispatch/dispatch-model.js';
export {
  DISPATCH_TABLES,
  type DispatchRecords,
  type FileLock,
  type DispatchNode,
  type DispatchEvent,
  type NodeReputation,
  type PeerValidation,
} from './stores/dispatch/dispatch-records.js';
export { SqliteDispatchStore } from './stores/dispatch/sqlite-dispatch-store.js';
export { PostgresDispatchStore } from './stores/dispatch/postgres-dispatch-store.js';
export { SqliteUnavailableError } from './sqlite/better-sqlite3.js';
export { openDispatchDatabase } from './stores/dispatch/sqlite-dispatch-database.js';
export { InvalidRowError } from './stores/dispatch/sqlite-table.js';
export {
  migrateSqlite,
  type MigrateSqliteOptions,
  type MigrateSqliteReport,
  type InvalidCell,
  type TableMigration,
} from './stores/dispatch/migrate-sqlite.js';

// Background jobs: scheduled tasks run as recorded executions under fenced task locks.
export {
  EXECUTION_STATES,
  EXECUTION_TRANSITIONS,
  LOCK_STATES,
  MAX_RESULT_BYTES,
  validateScheduledTasks,
  type ScheduledTask,
  type ScheduledTaskInput,
  type TaskExecution,
  type TaskLock,
  type ExecutionState,
  type LockState,
} from './stores/task-scheduler/task-scheduler-model.js';
export type { TaskSchedulerStore, ExecutionQuery } from './stores/task-scheduler/task-scheduler-store.js';
export { MemoryTaskSchedulerStore } from './stores/task-scheduler/memory-task-scheduler-store.js';
export { PostgresTaskSchedulerStore } from './stores/task-scheduler/postgres-task-scheduler-store.js';
export {
  TaskRunner,
  type TaskRunnerOptions,
  type RunContext,
  type RunTrigger,
} from './stores/task-scheduler/task-runner.js';
