import type { Side } from './stages.js';

/** A mirror write as data: enough to apply it again on its target later, in order. */
export interface MirrorOp {
  /** Which wrapped store ("graph", "tasks"). */
  readonly store: string;
  readonly target: Side;
  readonly method: string;
  /** The decided arguments, exactly as the authoritative side received them. */
  readonly args: readonly unknown[];
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
