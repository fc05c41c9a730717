import type { RecordKey } from '../ports/record-port.js';
import type { Side } from '../ports/stage.js';
import type { DataFailure } from './data-error.js';

/** One record a mirror write copies to its target. */
export interface RecordCopy {
  readonly entity: string;
  readonly key: RecordKey;
  /**
   * The record as the authoritative side held it right after the write (null: gone).
   * Absent: read from the authoritative side when the copy is applied, so copies applied
   * in order never step back to an older state whatever order the writes' answers came in.
   */
  readonly record?: object | null;
}

/**
 * A mirror write as data: the records a write changed, to copy to the target in order.
 * Copies rather than re-run calls: a copy converges with whatever a backfill or an
 * earlier copy already wrote, where a re-run call would count a total twice.
 */
export interface MirrorOp {
  /** Which wrapped store ("graph", "tasks"). */
  readonly store: string;
  readonly target: Side;
  /** The write this mirrors, for people and metrics. */
  readonly method: string;
  /** Records to put (or delete, when null) on the target, referenced ones first. */
  readonly records: readonly RecordCopy[];
  /** Ordering key: ops with the same key are applied in submission order. */
  readonly key: string;
  /** Ordering keys of earlier writes this one depends on (the rows it references): applied after them. */
  readonly requires?: readonly string[];
  /** Stage epoch the write was acknowledged in (see StageGate); for fencing and for people. */
  readonly epoch: number;
  /**
   * The mirror write's identity across copies of its outbox entry: an append that timed out
   * but landed, or one retried after a reconnect, leaves two, and the write must be counted
   * as replayed once. Set when it is journaled; absent on entries of older versions.
   */
  readonly opId?: string;
}

export interface OutboxEntry extends MirrorOp {
  /** Assigned by the outbox; entries are replayed in id order. */
  readonly id: string;
  /** When it was journaled (ISO-8601). */
  readonly journaledAt: string;
  /** Why the mirror write failed, for people. */
  readonly reason: string;
  /**
   * Set when the target refused the write for its data (a constraint, a value it cannot
   * take): what it said the last time, so operators see why it waits. Absent on entries
   * journaled for an outage, and on those of older versions.
   */
  readonly lastError?: DataFailure;
}

/** A mirror write to journal and why it could not be applied. */
export interface JournalItem {
  readonly op: MirrorOp;
  readonly reason: string;
  /** The target refused it for its data: what it said (see OutboxEntry.lastError). */
  readonly lastError?: DataFailure;
}

/** The op an entry journals, without what the outbox added (to move it into another outbox). */
export function journalItemOf(entry: OutboxEntry): JournalItem {
  const { id: _id, journaledAt: _at, reason, lastError, ...op } = entry;
  return { op, reason, ...(lastError ? { lastError } : {}) };
}

/** The entry an outbox builds for an item: the op, its id and time, why, and the target's refusal when there was one. */
export function entryOf(item: JournalItem, id: string, journaledAt: string): OutboxEntry {
  return { ...item.op, id, journaledAt, reason: item.reason, ...(item.lastError ? { lastError: item.lastError } : {}) };
}

/**
 * Durable journal of mirror writes that failed, replayed in order once the target is
 * healthy. append() resolves only once the entry is durable.
 */
export interface Outbox {
  /** `lastError`: the target refused the write for its data (see OutboxEntry.lastError). */
  append(op: MirrorOp, reason: string, lastError?: DataFailure): Promise<OutboxEntry>;
  /** Appends several entries, in order, in one round trip; resolves once all are durable. */
  appendAll(items: readonly JournalItem[]): Promise<OutboxEntry[]>;
  /** The oldest `limit` entries replay may apply now, in journal order. */
  peek(limit: number): Promise<OutboxEntry[]>;
  /** Every entry waiting, in journal order, including any not yet offered to replay (for rebuilding which keys are pending). */
  list(): Promise<OutboxEntry[]>;
  /** Removes replayed entries. */
  ack(ids: readonly string[]): Promise<void>;
  /**
   * Records that replaying entry `id` was refused for its data, so the entry says why until it
   * is replayed (peek and list return it with this `lastError`). Optional: an outbox without
   * it leaves the reason to the replayer's memory.
   */
  noteError?(id: string, lastError: DataFailure): Promise<void>;
  /** Moves an entry that keeps being rejected aside, for people to inspect. */
  deadLetter(entry: OutboxEntry, reason: string): Promise<void>;
  /**
   * Exclusive right to replay for `ttlMs`, so replicas sharing an outbox never replay the
   * same entry twice; null when another holder has it.
   */
  replayLease(ttlMs: number): Promise<{ release(): Promise<void> } | null>;
  /** Entry count and age of the oldest; cheap, for metrics. */
  stats(): { depth: number; oldestAgeSeconds: number };
  close(): Promise<void>;
}
