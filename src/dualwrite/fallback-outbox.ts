import { CircuitBreaker, type CircuitBreakerOptions } from './circuit-breaker.js';
import type { MirrorOp, Outbox, OutboxEntry } from './outbox.js';

/** Options of FallbackOutbox. */
export interface FallbackOutboxOptions {
  /** Longest wait for the shared outbox before an append goes to the local one. Default 1000 ms. */
  readonly appendTimeoutMs?: number;
  /** When the shared outbox is tried again after a failure. Default: probe every 1000 ms. */
  readonly breaker?: CircuitBreakerOptions;
  readonly logger?: Pick<Console, 'warn'>;
}

/**
 * A shared outbox (the Redis stream) that never stalls its callers: while it cannot be
 * written, entries go to a local file outbox instead, and once it answers again they are
 * moved into it, in order, before anything newer is appended there. Replay reads the
 * shared outbox only, so a key's entries are replayed in the order they were journaled:
 * those written before the shared outbox failed, then the moved ones, then later ones.
 * Entries waiting in the local outbox are therefore replayed once the shared one is back.
 */
export class FallbackOutbox implements Outbox {
  private readonly breaker: CircuitBreaker;
  private moving: Promise<void> | undefined;

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

  async append(op: MirrorOp, reason: string): Promise<OutboxEntry> {
    await this.moveLocalEntries();
    if (this.local.stats().depth === 0 && this.breaker.allow()) {
      try {
        const entry = await this.withinTimeout(this.shared.append(op, reason));
        this.breaker.succeeded();
        return entry;
      } catch {
        this.breaker.failed();
      }
    }
    return this.local.append(op, reason);
  }

  /** The shared outbox's entries; none while it is out of reach, or while local entries wait to be moved. */
  async peek(limit: number): Promise<OutboxEntry[]> {
    await this.moveLocalEntries();
    if (this.local.stats().depth > 0) return [];
    return this.shared.peek(limit);
  }

  ack(ids: readonly string[]): Promise<void> {
    return this.shared.ack(ids);
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
    return { depth: shared.depth + local.depth, oldestAgeSeconds: Math.max(shared.oldestAgeSeconds, local.oldestAgeSeconds) };
  }

  async close(): Promise<void> {
    await this.moving;
    await this.local.close();
    await this.shared.close();
  }

  /** Moves what the local outbox holds into the shared one, oldest first, when the shared one can be tried. */
  private moveLocalEntries(): Promise<void> {
    if (this.local.stats().depth === 0 || !this.breaker.allow()) return Promise.resolve();
    this.moving ??= (async () => {
      try {
        for (;;) {
          const entries = await this.local.peek(500);
          if (entries.length === 0) break;
          for (const entry of entries) {
            const { id: _id, journaledAt: _at, reason, ...op } = entry;
            await this.withinTimeout(this.shared.append(op, reason));
            await this.local.ack([entry.id]);
          }
        }
        this.breaker.succeeded();
      } catch {
        this.breaker.failed();
      } finally {
        this.moving = undefined;
      }
    })();
    return this.moving;
  }

  private async withinTimeout<T>(work: Promise<T>): Promise<T> {
    const ms = this.options.appendTimeoutMs ?? 1000;
    let timer: NodeJS.Timeout | undefined;
    try {
      return await Promise.race([work, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms)))]);
    } finally {
      clearTimeout(timer);
    }
  }
}
