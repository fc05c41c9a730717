import { CircuitBreaker, type CircuitBreakerOptions } from './circuit-breaker.js';
import type { DataFailure } from './data-error.js';
import { journalItemOf, type JournalItem, type MirrorOp, type Outbox, type OutboxEntry } from './outbox.js';
import { withTimeout } from '../shared/with-timeout.js';

/** Options of FallbackOutbox. */
export interface FallbackOutboxOptions {
  /** Longest wait for the shared outbox before an append goes to the local one. Default 1000 ms. */
  readonly appendTimeoutMs?: number;
  /** Entries moved from the local outbox into the shared one per round trip. Default 1000. */
  readonly moveBatchSize?: number;
  /** When the shared outbox is tried again after a failure. Default: probe every 1000 ms. */
  readonly breaker?: CircuitBreakerOptions;
  readonly logger?: Pick<Console, 'warn'>;
}

/**
 * A shared outbox (the Redis stream) that never stalls its callers: while it cannot be
 * written, entries go to a local file outbox instead, and once it answers again they are
 * moved into it in the background, in order and in batches, before anything newer is
 * appended there. Until the local outbox is empty every append goes to it too (behind the
 * entries waiting there), so callers never wait for a move and a key's entries reach the
 * shared outbox in the order they were journaled. Replay reads the shared outbox only.
 */
export class FallbackOutbox implements Outbox {
  private readonly breaker: CircuitBreaker;
  private moving: Promise<void> | undefined;
  /** Local appends not yet durable: they are not in the local outbox's depth yet, but come before anything appended after them. */
  private readonly localWrites = new Set<Promise<unknown>>();

  constructor(
    private readonly shared: Outbox,
    private readonly local: Outbox,
    private readonly options: FallbackOutboxOptions = {},
  ) {
    this.breaker = new CircuitBreaker({
      ...options.breaker,
      onChange: (state, outageMs) =>
        options.logger?.warn(
          state === 'open'
            ? 'dualwrite: the shared outbox cannot be written; mirror failures are journaled to the local outbox until it answers'
            : `dualwrite: the shared outbox answers again after ${(outageMs / 1000).toFixed(1)} s; moving ${this.local.stats().depth} locally journaled entries into it`,
        ),
    });
  }

  async append(op: MirrorOp, reason: string, lastError?: DataFailure): Promise<OutboxEntry> {
    const [entry] = await this.appendAll([{ op, reason, ...(lastError ? { lastError } : {}) }]);
    return entry!;
  }

  async appendAll(items: readonly JournalItem[]): Promise<OutboxEntry[]> {
    if (!this.waitingLocally() && this.breaker.allow()) {
      try {
        const entries = await this.withinTimeout(this.shared.appendAll(items));
        this.breaker.succeeded();
        return entries;
      } catch {
        this.breaker.failed();
      }
    }
    return this.appendLocally(items);
  }

  /**
   * The shared outbox's entries. Entries waiting locally were journaled after every entry
   * there, so replay need not wait for them: it goes on from the shared outbox while they
   * are moved behind its tail (started here), and reaches them once they are there; only
   * when the shared outbox is empty does it wait for the move. Making replay wait before
   * that would starve it for as long as new failures keep the local outbox from emptying.
   */
  async peek(limit: number): Promise<OutboxEntry[]> {
    this.startMove();
    const entries = await this.shared.peek(limit);
    if (entries.length > 0 || !this.waitingLocally()) return entries;
    // Nothing older is left to replay: wait for the move of what waits locally, and read what it brought.
    await this.moving;
    return this.shared.peek(limit);
  }

  /** The shared outbox's entries, then the local one's: the local ones were journaled after them. */
  async list(): Promise<OutboxEntry[]> {
    await Promise.all(this.localWrites);
    return [...(await this.shared.list()), ...(await this.local.list())];
  }

  ack(ids: readonly string[]): Promise<void> {
    return this.shared.ack(ids);
  }

  /** Replay reads the shared outbox only, so only its entries are ever refused on replay. */
  async noteError(id: string, lastError: DataFailure): Promise<void> {
    await this.shared.noteError?.(id, lastError);
  }

  deadLetter(entry: OutboxEntry, reason: string): Promise<void> {
    return this.shared.deadLetter(entry, reason);
  }

  replayLease(ttlMs: number): Promise<{ release(): Promise<void> } | null> {
    return this.shared.replayLease(ttlMs);
  }

  stats(): { depth: number; oldestAgeSeconds: number } {
    const shared = this.shared.stats();
    const local = this.local.stats();
    return {
      depth: shared.depth + local.depth,
      oldestAgeSeconds: Math.max(shared.oldestAgeSeconds, local.oldestAgeSeconds),
    };
  }

  /** Resolves once no move of local entries is under way (one started meanwhile is waited for too). */
  async settled(): Promise<void> {
    while (this.moving) await this.moving;
  }

  async close(): Promise<void> {
    await this.settled();
    await Promise.all(this.localWrites);
    await this.local.close();
    await this.shared.close();
  }

  private waitingLocally(): boolean {
    return this.local.stats().depth > 0 || this.localWrites.size > 0 || this.moving !== undefined;
  }

  private async appendLocally(items: readonly JournalItem[]): Promise<OutboxEntry[]> {
    const write = this.local.appendAll(items);
    this.localWrites.add(write);
    try {
      return await write;
    } finally {
      this.localWrites.delete(write);
      this.startMove();
    }
  }

  /** Starts moving local entries in the background when the shared outbox may be tried; callers never wait for it. */
  private startMove(): void {
    if (this.moving || (this.local.stats().depth === 0 && this.localWrites.size === 0) || !this.breaker.allow()) return;
    this.moving = this.moveLocalEntries().finally(() => (this.moving = undefined));
  }

  /**
   * Moves batches, oldest first, until the local outbox is empty and no local append is in
   * flight; a batch lands in the shared outbox (atomically) before it leaves the local one.
   * A move far outpaces appends (one round trip per batch), so it ends under load too.
   */
  private async moveLocalEntries(): Promise<void> {
    try {
      for (;;) {
        const entries = await this.local.peek(this.options.moveBatchSize ?? 1000);
        if (entries.length === 0) {
          if (this.localWrites.size === 0) break;
          await Promise.all(this.localWrites);
          continue;
        }
        await this.withinTimeout(this.shared.appendAll(entries.map(journalItemOf)));
        await this.local.ack(entries.map((entry) => entry.id));
      }
      this.breaker.succeeded();
    } catch {
      this.breaker.failed();
    }
  }

  private withinTimeout<T>(work: Promise<T>): Promise<T> {
    const ms = this.options.appendTimeoutMs ?? 1000;
    return withTimeout(work, ms, () => {
      throw new Error(`no answer within ${ms} ms`);
    });
  }
}
