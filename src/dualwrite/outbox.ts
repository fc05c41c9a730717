import type { RecordKey } from '../ports/record-port.js';
import type { Side } from './stages.js';

/** A record as the authoritative side holds it after a write; null when it is gone. */
export interface RecordState {
  readonly entity: string;
  readonly key: RecordKey;
  readonly record: object | null;
}

/**
 * A mirror write as data: enough to apply it again on its target later, in order. Either
 * a method call (`method`, `args`) or, when `records` is set, a copy of the records the
 * write left on the authoritative side (`method` then only names the write).
 */
export interface MirrorOp {
  /** Which wrapped store ("graph", "tasks"). */
  readonly store: string;
  readonly target: Side;
  readonly method: string;
  /** The decided arguments, exactly as the authoritative side received them. */
  readonly args: readonly unknown[];
  /** Records to put (or delete, when null) on the target instead of calling `method`. */
  readonly records?: readonly RecordState[];
  /** Ordering key: ops with the same key are applied in submission order. */
  readonly key: string;
}

export interface OutboxEntry extends MirrorOp {
  /** Assigned by the outbox; entries are replayed in id order. */
  readonly id: string;
  /** When it was journaled (ISO-8601). */
  readonly journaledAt: string;
  /** Why the mirror write failed, for people. */
  readonly reason: string;
}

/**
 * Durable journal of mirror writes that failed, replayed in order once the target is
 * healthy. append() resolves only once the entry is durable.
 */
export interface Outbox {
  append(op: MirrorOp, reason: string): Promise<OutboxEntry>;
  /** The oldest `limit` entries, in journal order. */
  peek(limit: number): Promise<OutboxEntry[]>;
  /** Removes replayed entries. */
  ack(ids: readonly string[]): Promise<void>;
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
