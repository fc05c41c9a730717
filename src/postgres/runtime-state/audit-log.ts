import { randomUUID } from 'node:crypto';
import type { SqlQueryable } from '../sql-executor.js';
import { timestampText } from '../table-mapping.js';

/** What happened. */
export type AuditAction =
  | 'stage.change'
  | 'stage.forced'
  | 'stage.retreat'
  | 'verify.run'
  | 'repair'
  | 'repair.undo'
  | 'resync.memory'
  | 'backfill'
  | 'outbox.replay'
  | 'outbox.dead_letter'
  | 'audit.purge';

/** Who did it: a person (CLI user), a service (an admin token, the process itself) or nobody known. */
export interface Principal {
  readonly uid: string;
  readonly username: string;
  readonly type: 'user' | 'service' | 'anonymous';
}

/** The process itself, for what it does on its own (a change seen from Unleash, the background verifier). */
export const PROCESS_PRINCIPAL: Principal = { uid: 'dualwrite', username: 'dualwrite process', type: 'service' };

/** Before and after of the change as JSON text, each cut to fit 64 KB, the cut fields listed. */
export interface AuditDiff {
  readonly oldObject?: string;
  readonly newObject?: string;
  readonly oldObjectTruncated: boolean;
  readonly newObjectTruncated: boolean;
  readonly truncatedFields?: readonly string[];
}

export interface AuditEventInput {
  readonly action: AuditAction;
  readonly resourceType: string;
  readonly resourceId: string;
  readonly principal: Principal;
  readonly from?: string;
  readonly to?: string;
  readonly reason?: string;
  readonly requestId?: string;
  readonly clientIp?: string;
  /** The resource before and after, for the diff (each cut at 64 KB). */
  readonly before?: unknown;
  readonly after?: unknown;
  readonly data?: Readonly<Record<string, unknown>>;
}

export interface AuditEvent extends Omit<AuditEventInput, 'before' | 'after'> {
  readonly id: string;
  /** ISO-8601 UTC. */
  readonly occurredAt: string;
  readonly diff?: AuditDiff;
}

export interface AuditLogOptions {
  /** Now; injected so tests decide time. Default: () => new Date(). */
  readonly clock?: () => Date;
  /** New event ids. Default: crypto.randomUUID. */
  readonly ids?: () => string;
  /** Longest diff object, in bytes of JSON text. Default 65536 (64 KB). */
  readonly maxObjectBytes?: number;
}

/**
 * The rollout's append-only audit trail in dualwrite_audit_events (schema 004): PostgreSQL
 * itself refuses UPDATE, DELETE and TRUNCATE; the retention purge is the one way rows go,
 * and it is recorded too.
 */
export class AuditLog {
  private readonly clock: () => Date;
  private readonly ids: () => string;
  private readonly maxObjectBytes: number;

  constructor(
    private readonly db: SqlQueryable,
    options: AuditLogOptions = {},
  ) {
    this.clock = options.clock ?? (() => new Date());
    this.ids = options.ids ?? randomUUID;
    this.maxObjectBytes = options.maxObjectBytes ?? 65536;
  }

  /** Appends one event; its id and time are decided here, before the insert. */
  async record(input: AuditEventInput): Promise<AuditEvent> {
    const event = this.prepare(input);
    await this.insert(event);
    return event;
  }

  /** The event `input` describes, with its id and time decided now (to insert later, or again). */
  prepare(input: AuditEventInput): AuditEvent {
    const { before, after, ...rest } = input;
    const diff = before === undefined && after === undefined ? undefined : diffOf(before, after, this.maxObjectBytes);
    return { ...rest, id: this.ids(), occurredAt: this.clock().toISOString(), ...(diff ? { diff } : {}) };
  }

  /** Inserts a prepared event; inserting it again is a no-op (its id is taken), so a failed insert can be retried. */
  async insert(event: AuditEvent): Promise<void> {
    await this.db.query(
      `INSERT INTO dualwrite_audit_events (id, occurred_at, action, resource_type, resource_id, principal, from_value, to_value, reason, request_id, client_ip, diff, data)
       VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, $8, $9, $10, $11, $12::jsonb, $13::jsonb)
       ON CONFLICT (id) DO NOTHING`,
      [
        event.id,
        event.occurredAt,
        event.action,
        event.resourceType,
        event.resourceId,
        JSON.stringify(event.principal),
        event.from ?? null,
        event.to ?? null,
        event.reason ?? null,
        event.requestId ?? null,
        event.clientIp ?? null,
        event.diff ? JSON.stringify(event.diff) : null,
        event.data ? JSON.stringify(event.data) : null,
      ],
    );
  }

  /** The newest events first (ties by id), optionally of one action or resource type. */
  async list(
    query: { readonly limit?: number; readonly action?: AuditAction; readonly resourceType?: string } = {},
  ): Promise<AuditEvent[]> {
    const rows = await this.db.query<AuditRow>(
      `SELECT id, occurred_at::text AS occurred_at, action, resource_type, resource_id, principal, from_value, to_value, reason, request_id, client_ip, diff, data
       FROM dualwrite_audit_events
       WHERE ($1::text IS NULL OR action = $1) AND ($2::text IS NULL OR resource_type = $2)
       ORDER BY occurred_at DESC, id LIMIT $3`,
      [query.action ?? null, query.resourceType ?? null, query.limit ?? 100],
    );
    return rows.map(toEvent);
  }

  /** Deletes events older than `days` days (at least 1) and records the purge; returns how many went. */
  async purge(days: number, principal: Principal, reason: string): Promise<number> {
    const [row] = await this.db.query<{ removed: string | number }>(
      'SELECT dualwrite_purge_audit_events($1, $2, $3, $4::jsonb, $5) AS removed',
      [days, this.ids(), this.clock().toISOString(), JSON.stringify(principal), reason],
    );
    return Number(row!.removed);
  }
}

interface AuditRow {
  id: string;
  occurred_at: string;
  action: AuditAction;
  resource_type: string;
  resource_id: string;
  principal: Principal | string;
  from_value: string | null;
  to_value: string | null;
  reason: string | null;
  request_id: string | null;
  client_ip: string | null;
  diff: AuditDiff | string | null;
  data: Record<string, unknown> | string | null;
}

function toEvent(row: AuditRow): AuditEvent {
  const json = <T>(value: T | string | null): T | undefined =>
    value === null ? undefined : typeof value === 'string' ? (JSON.parse(value) as T) : value;
  const optional = <K extends string, V>(key: K, value: V | null | undefined) =>
    value === null || value === undefined ? {} : { [key]: value };
  return {
    id: row.id,
    occurredAt: timestampText(row.occurred_at),
    action: row.action,
    resourceType: row.resource_type,
    resourceId: row.resource_id,
    principal: json(row.principal)!,
    ...optional('from', row.from_value),
    ...optional('to', row.to_value),
    ...optional('reason', row.reason),
    ...optional('requestId', row.request_id),
    ...optional('clientIp', row.client_ip),
    ...optional('diff', json(row.diff)),
    ...optional('data', json(row.data)),
  };
}

/**
 * Before and after as JSON text, each at most `maxBytes`. An object too large keeps its
 * shape: its largest field values are cut (strings shortened, anything else replaced by a
 * note of its size), largest first, until it fits; the cut fields are listed.
 */
export function diffOf(before: unknown, after: unknown, maxBytes: number): AuditDiff {
  const old = before === undefined ? undefined : fitted(before, maxBytes);
  const next = after === undefined ? undefined : fitted(after, maxBytes);
  const truncatedFields = [...new Set([...(old?.cut ?? []), ...(next?.cut ?? [])])];
  return {
    ...(old ? { oldObject: old.text } : {}),
    ...(next ? { newObject: next.text } : {}),
    oldObjectTruncated: (old?.cut.length ?? 0) > 0,
    newObjectTruncated: (next?.cut.length ?? 0) > 0,
    ...(truncatedFields.length > 0 ? { truncatedFields } : {}),
  };
}

function fitted(value: unknown, maxBytes: number): { text: string; cut: string[] } {
  const bytes = (text: string) => Buffer.byteLength(text, 'utf8');
  let text = JSON.stringify(value) ?? 'null';
  if (bytes(text) <= maxBytes) return { text, cut: [] };
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    // Not an object with fields: a prefix of its text, marked as cut.
    return {
      text: `${Buffer.from(text)
        .subarray(0, Math.max(0, maxBytes - 32))
        .toString('utf8')
        .replace(/\uFFFD$/, '')}…[truncated]`,
      cut: ['$'],
    };
  }
  const fields = { ...(value as Record<string, unknown>) };
  const cut: string[] = [];
  const sizes = Object.entries(fields)
    .map(([name, field]) => [name, bytes(JSON.stringify(field) ?? '')] as const)
    .sort((a, b) => b[1] - a[1]);
  for (const [name, size] of sizes) {
    if (bytes(text) <= maxBytes) break;
    const over = bytes(text) - maxBytes;
    const field = fields[name];
    fields[name] =
      typeof field === 'string' && size - over > 64
        ? `${field.slice(0, Math.max(0, field.length - over - 32))}…[truncated]`
        : `[truncated: ${size} bytes]`;
    cut.push(name);
    text = JSON.stringify(fields);
  }
  return bytes(text) <= maxBytes ? { text, cut } : fitted(Object.keys(fields), maxBytes);
}
