import type { Side } from '../ports/stage.js';
import { DATA_FIX, type DataFailure } from './data-error.js';
import type { OutboxEntry } from './outbox.js';

/** An outbox entry its target refused for its data, as operators see it. */
export interface HeldEntry {
  readonly id: string;
  readonly store: string;
  readonly method: string;
  /** Its ordering key: later entries of this key (or requiring it) wait behind it; other keys go on. */
  readonly key: string;
  readonly target: Side;
  /** What the target said the last time it refused the entry. */
  readonly error: DataFailure;
  /** Times refused so far (the replayer dead-letters it at its maxRejections). */
  readonly refusals: number;
  /** When it was last refused (ISO-8601). */
  readonly lastRefusedAt: string;
  /** What clears it. */
  readonly fix: string;
}

/**
 * The outbox entries a target refused for their data, shared by the mirror (which journals
 * them) and the replayer (which retries them): why, how often, and when. Kept in memory; the
 * outbox entries themselves carry the last error across a restart (`lastError`).
 */
export class HeldEntries {
  private readonly held = new Map<string, { readonly entry: HeldEntry; readonly at: number }>();

  constructor(private readonly now: () => number = Date.now) {}

  get size(): number {
    return this.held.size;
  }

  has(id: string): boolean {
    return this.held.has(id);
  }

  /** Records one more refusal of `entry`; returns how many there have been. */
  refused(entry: OutboxEntry, error: DataFailure): number {
    const refusals = (this.held.get(entry.id)?.entry.refusals ?? 0) + 1;
    const at = this.now();
    this.set(entry, error, refusals, at, new Date(at).toISOString());
    return refusals;
  }

  /** An entry a previous process saw refused (it carries `lastError`): held again, and due for a retry at once. */
  restore(entry: OutboxEntry): void {
    if (entry.lastError && !this.held.has(entry.id))
      this.set(entry, entry.lastError, 1, Number.NEGATIVE_INFINITY, entry.journaledAt);
  }

  /** Whether a background round should retry `id` now: not held, or `pauseMs(refusals)` has passed since its last refusal. */
  due(id: string, pauseMs: (refusals: number) => number): boolean {
    const held = this.held.get(id);
    return !held || this.now() - held.at >= pauseMs(held.entry.refusals);
  }

  get(id: string): HeldEntry | undefined {
    return this.held.get(id)?.entry;
  }

  /** Replayed or set aside: no longer held. */
  forget(id: string): void {
    this.held.delete(id);
  }

  /** Every held entry, oldest refusal first. */
  list(): HeldEntry[] {
    return [...this.held.values()].map(({ entry }) => entry);
  }

  /** `at`: when it was last refused, on this instance's clock (for due); `lastRefusedAt`: the same, for people. */
  private set(entry: OutboxEntry, error: DataFailure, refusals: number, at: number, lastRefusedAt: string): void {
    // Deleted first so the map keeps the order of the last refusals.
    this.held.delete(entry.id);
    const { id, store, method, key, target } = entry;
    this.held.set(id, { entry: { id, store, method, key, target, error, refusals, lastRefusedAt, fix: DATA_FIX }, at });
  }
}
