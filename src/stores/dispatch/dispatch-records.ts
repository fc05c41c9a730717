import { ValidationError } from '../../domain/errors.js';
import { assertObject } from '../../domain/object.js';
import { canonicalJsonValue, type JsonValue } from '../../domain/json.js';
import { integerIn } from '../../domain/limits.js';
import type { EntityCatalog, RecordKey } from '../../domain/records.js';
import { requireText, describe } from '../../domain/text.js';
import { canonicalTimestamp } from '../../domain/time.js';

/**
 * The dispatch app's six tables, column for column, as one catalog: the records, their
 * validation, both stores' SQL and the SQLite migration are all derived from it.
 */

/** How a column's values are typed, the same on SQLite and PostgreSQL (schema/007_dispatch.sql says which SQL type each is). */
export type DispatchColumnKind =
  /** TEXT. */
  | 'text'
  /** INTEGER in PostgreSQL: 32 bits. */
  | 'integer'
  /** BIGINT: epoch seconds; records keep integers JavaScript holds exactly. */
  | 'bigint'
  /** REAL / DOUBLE PRECISION: finite numbers, -0 as 0. */
  | 'real'
  /** A date: TEXT in SQLite, TIMESTAMPTZ in PostgreSQL; records hold canonical ISO-8601 UTC with milliseconds. */
  | 'timestamp'
  /** JSON text in SQLite, JSONB in PostgreSQL; records hold the canonical JSON value. */
  | 'json'
  /** INTEGER PRIMARY KEY AUTOINCREMENT / SERIAL: 1 to 2^31-1. */
  | 'serial';

export interface DispatchColumn {
  readonly column: string;
  /** The record field (the column in camelCase). */
  readonly field: string;
  readonly kind: DispatchColumnKind;
  readonly notNull: boolean;
  /** The values a CHECK constraint allows, if any. */
  readonly oneOf?: readonly string[];
}

export interface DispatchTable<R = Record<string, unknown>> {
  readonly table: string;
  /** Key columns, in key order. */
  readonly key: readonly string[];
  readonly columns: readonly DispatchColumn[];
  /** Phantom: the record type. */
  readonly record?: R;
}

export const DISPATCH_STATUSES = ['pending', 'claimed', 'running', 'completed', 'failed', 'deadletter'] as const;
export type DispatchStatus = (typeof DISPATCH_STATUSES)[number];

export interface DispatchTask {
  readonly id: string;
  readonly project: string;
  readonly specFile: string;
  readonly specHash: string | null;
  readonly status: DispatchStatus | null;
  readonly node: string | null;
  readonly pid: number | null;
  readonly attempt: number | null;
  readonly maxRetries: number | null;
  readonly startedAt: string | null;
  readonly completedAt: string | null;
  readonly collectedAt: string | null;
  readonly heartbeatAt: string | null;
  readonly error: string | null;
  readonly logFile: string | null;
  readonly durationSeconds: number | null;
  readonly dependsOn: JsonValue;
  readonly modifies: JsonValue;
  readonly exclusive: number | null;
  readonly priority: number | null;
  readonly leaseOwner: string | null;
  /** Epoch seconds. */
  readonly leaseExpiresAt: number | null;
  readonly visibilityTimeout: number | null;
  readonly idempotencyKey: string | null;
  /** Epoch seconds of the last write. */
  readonly updatedAt: number | null;
  readonly estimatedMinutes: number | null;
  readonly artifactHash: string | null;
  readonly artifactPatch: string | null;
  readonly locAdded: number | null;
  readonly locRemoved: number | null;
  readonly filesChanged: number | null;
  readonly peerValidated: string | null;
  readonly peerNode: string | null;
  readonly peerResult: string | null;
}

export interface FileLock {
  readonly filePath: string;
  readonly taskId: string;
  readonly lockedAt: string;
}

export interface DispatchNode {
  readonly name: string;
  readonly sshHost: string | null;
  readonly slots: number | null;
  readonly apiMode: string | null;
  readonly workDir: string | null;
  readonly runningCount: number | null;
  readonly lastSeen: string | null;
  readonly enabled: number | null;
}

export interface DispatchEvent {
  readonly id: number;
  readonly timestamp: string;
  readonly taskId: string | null;
  readonly eventType: string | null;
  readonly node: string | null;
  readonly details: string | null;
}

export interface NodeReputation {
  readonly node: string;
  readonly score: number | null;
  readonly totalTasks: number | null;
  readonly passedValidations: number | null;
  readonly failedValidations: number | null;
  readonly fakeSuccesses: number | null;
  readonly lastUpdated: string | null;
  readonly quarantined: number | null;
  readonly quarantineReason: string | null;
  readonly quarantineAt: string | null;
}

export interface PeerValidation {
  readonly id: number;
  readonly taskId: string;
  readonly project: string;
  readonly executorNode: string;
  readonly validatorNode: string | null;
  readonly status: string | null;
  readonly result: string | null;
  readonly createdAt: string | null;
  readonly completedAt: string | null;
}

export interface DispatchRecords {
  tasks: DispatchTask;
  file_locks: FileLock;
  nodes: DispatchNode;
  events: DispatchEvent;
  node_reputation: NodeReputation;
  peer_validations: PeerValidation;
}

export type DispatchEntity = keyof DispatchRecords & string;

type ColumnOptions = { readonly notNull?: boolean; readonly oneOf?: readonly string[] };

function column(name: string, kind: DispatchColumnKind, options: ColumnOptions = {}): DispatchColumn {
  return {
    column: name,
    field: name.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase()),
    kind,
    notNull: options.notNull ?? kind === 'serial',
    ...(options.oneOf ? { oneOf: options.oneOf } : {}),
  };
}

const required = { notNull: true } as const;

/** Every table of the dispatch database, in the order the migration copies them. */
export const DISPATCH_TABLES: { readonly [E in DispatchEntity]: DispatchTable<DispatchRecords[E]> } = {
  tasks: {
    table: 'tasks',
    key: ['id'],
    columns: [
      column('id', 'text', required),
      column('project', 'text', required),
      column('spec_file', 'text', required),
      column('spec_hash', 'text'),
      column('status', 'text', { oneOf: DISPATCH_STATUSES }),
      column('node', 'text'),
      column('pid', 'integer'),
      column('attempt', 'integer'),
      column('max_retries', 'integer'),
      column('started_at', 'timestamp'),
      column('completed_at', 'timestamp'),
      column('collected_at', 'timestamp'),
      column('heartbeat_at', 'timestamp'),
      column('error', 'text'),
      column('log_file', 'text'),
      column('duration_seconds', 'real'),
      column('depends_on', 'json'),
      column('modifies', 'json'),
      column('exclusive', 'integer'),
      column('priority', 'integer'),
      column('lease_owner', 'text'),
      column('lease_expires_at', 'bigint'),
      column('visibility_timeout', 'integer'),
      column('idempotency_key', 'text'),
      column('updated_at', 'bigint'),
      column('estimated_minutes', 'integer'),
      column('artifact_hash', 'text'),
      column('artifact_patch', 'text'),
      column('loc_added', 'integer'),
      column('loc_removed', 'integer'),
      column('files_changed', 'integer'),
      column('peer_validated', 'text'),
      column('peer_node', 'text'),
      column('peer_result', 'text'),
    ],
  },
  file_locks: {
    table: 'file_locks',
    key: ['file_path', 'task_id'],
    columns: [
      column('file_path', 'text', required),
      column('task_id', 'text', required),
      column('locked_at', 'timestamp', required),
    ],
  },
  nodes: {
    table: 'nodes',
    key: ['name'],
    columns: [
      column('name', 'text', required),
      column('ssh_host', 'text'),
      column('slots', 'integer'),
      column('api_mode', 'text'),
      column('work_dir', 'text'),
      column('running_count', 'integer'),
      column('last_seen', 'timestamp'),
      column('enabled', 'integer'),
    ],
  },
  events: {
    table: 'events',
    key: ['id'],
    columns: [
      column('id', 'serial'),
      column('timestamp', 'timestamp', required),
      column('task_id', 'text'),
      column('event_type', 'text'),
      column('node', 'text'),
      column('details', 'text'),
    ],
  },
  node_reputation: {
    table: 'node_reputation',
    key: ['node'],
    columns: [
      column('node', 'text', required),
      column('score', 'integer'),
      column('total_tasks', 'integer'),
      column('passed_validations', 'integer'),
      column('failed_validations', 'integer'),
      column('fake_successes', 'integer'),
      column('last_updated', 'timestamp'),
      column('quarantined', 'integer'),
      column('quarantine_reason', 'text'),
      column('quarantine_at', 'timestamp'),
    ],
  },
  peer_validations: {
    table: 'peer_validations',
    key: ['id'],
    columns: [
      column('id', 'serial'),
      column('task_id', 'text', required),
      column('project', 'text', required),
      column('executor_node', 'text', required),
      column('validator_node', 'text'),
      column('status', 'text'),
      column('result', 'text'),
      column('created_at', 'timestamp'),
      column('completed_at', 'timestamp'),
    ],
  },
};

/** The dispatch entities in catalog order. */
export const DISPATCH_ENTITY_NAMES = Object.keys(DISPATCH_TABLES) as DispatchEntity[];

/** Width of a serial key part: 2^31-1 has 10 digits, so zero-padded keys order as the numbers do. */
export const SERIAL_KEY_WIDTH = 10;

/** The canonical value of one column, or a ValidationError naming its field. Absent (undefined) is null. */
export function canonicalCell(column: DispatchColumn, value: unknown): unknown {
  const { field } = column;
  if (value === undefined || value === null) {
    if (column.notNull) throw new ValidationError(field, 'is required');
    return null;
  }
  switch (column.kind) {
    case 'text': {
      const text = requireText(field, value);
      if (column.oneOf && !column.oneOf.includes(text))
        throw new ValidationError(field, `must be one of ${column.oneOf.join(', ')}, got ${JSON.stringify(text)}`);
      return text;
    }
    case 'integer':
      return integerIn(field, value, -2147483648, 2147483647, 'a 32-bit integer');
    case 'serial':
      return integerIn(field, value, 1, 2147483647, 'an integer from 1 to 2147483647');
    case 'bigint':
      return integerIn(
        field,
        value,
        Number.MIN_SAFE_INTEGER,
        Number.MAX_SAFE_INTEGER,
        'an integer JavaScript holds exactly (|n| < 2^53)',
      );
    case 'real':
      if (typeof value !== 'number' || !Number.isFinite(value))
        throw new ValidationError(field, `must be a finite number, got ${describe(value)} ${String(value)}`);
      return value + 0;
    case 'timestamp':
      return canonicalTimestamp(field, value);
    case 'json':
      return canonicalJsonValue(field, value);
  }
}

/** The column of `table` holding record field `field`. */
export function columnOfField(table: DispatchTable<unknown>, field: string): DispatchColumn {
  const found = table.columns.find((c) => c.field === field);
  if (!found) throw new ValidationError(field, `is not a field of ${table.table}`);
  return found;
}

/** The key of a record: each key column's value as text, serial ids zero-padded so text order is number order. */
export function dispatchKeyOf(table: DispatchTable<unknown>, record: object): RecordKey {
  const fields = record as Record<string, unknown>;
  return table.key.map((name) => {
    const keyColumn = table.columns.find((c) => c.column === name)!;
    const value = fields[keyColumn.field];
    return keyColumn.kind === 'serial' ? String(value).padStart(SERIAL_KEY_WIDTH, '0') : String(value);
  });
}

/** Key parts as the values of their columns (serial ids as numbers), for SQL parameters. */
export function dispatchKeyValues(table: DispatchTable<unknown>, key: RecordKey): (string | number)[] {
  if (key.length !== table.key.length)
    throw new TypeError(`${table.table} keys have ${table.key.length} parts, got ${key.length}`);
  return table.key.map((name, index) =>
    table.columns.find((c) => c.column === name)!.kind === 'serial' ? Number(key[index]) : key[index]!,
  );
}

function normalizer<R>(table: DispatchTable<R>): (raw: unknown) => R {
  return (raw) => {
    assertObject(table.table, raw);
    const fields = raw as Record<string, unknown>;
    const record: Record<string, unknown> = {};
    for (const c of table.columns) record[c.field] = canonicalCell(c, fields[c.field]);
    return record as R;
  };
}

/** The dispatch records, keyed and validated; no table references another (the schema has no foreign keys). */
export const DISPATCH_ENTITIES: EntityCatalog<DispatchRecords> = Object.fromEntries(
  DISPATCH_ENTITY_NAMES.map((entity) => {
    const table = DISPATCH_TABLES[entity] as DispatchTable<unknown>;
    return [entity, { keyOf: (record: object) => dispatchKeyOf(table, record), normalize: normalizer(table) }];
  }),
) as unknown as EntityCatalog<DispatchRecords>;
