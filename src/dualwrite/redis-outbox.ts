import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { DataFailure } from './data-error.js';
import { entryOf, type JournalItem, type MirrorOp, type Outbox, type OutboxEntry } from './outbox.js';

export interface RedisOutboxOptions {
  /**
   * Stream name; dead letters go to `${stream}:dead`, the replay lease to `${stream}:lease`, the
   * sentinel to `${stream}:sentinel`, the errors of entries refused on replay to the hash
   * `${stream}:errors`. Default "dualwrite:outbox".
   */
  readonly stream?: string;
  /**
   * Called when the stream was found to have lost its entries (Redis restarted without
   * persistence, or a failover to a replica that had not seen them). Default: none.
   */
  readonly onLoss?: (detail: string) => void;
}

/**
 * Outbox as a Redis stream, shared by several API replicas: any replica can replay an
 * entry, and the replay lease (SET NX PX) keeps two from replaying the same one.
 * Durable as far as the Redis server's persistence settings make it; a loss is noticed
 * through a sentinel key written beside the stream: when it is gone or changed, so are
 * the entries written with it, and onLoss is told.
 */
export class RedisOutbox implements Outbox {
  private readonly stream: string;
  /** Errors noted on replay, by entry id (see noteError). */
  private readonly errorsKey: string;
  private cached = { depth: 0, oldestAgeSeconds: 0 };
  /** The sentinel value this outbox has seen since its first refresh(). */
  private sentinel: string | undefined;

  constructor(
    private readonly redis: Redis,
    private readonly options: RedisOutboxOptions = {},
  ) {
    this.stream = options.stream ?? 'dualwrite:outbox';
    this.errorsKey = `${this.stream}:errors`;
  }

  async append(op: MirrorOp, reason: string, lastError?: DataFailure): Promise<OutboxEntry> {
    const [entry] = await this.appendAll([{ op, reason, ...(lastError ? { lastError } : {}) }]);
    return entry!;
  }

  /** One MULTI/EXEC: the entries land together, in order, or none does. */
  async appendAll(items: readonly JournalItem[]): Promise<OutboxEntry[]> {
    const journaledAt = new Date().toISOString();
    // The stream assigns the id: the body is the entry without it.
    const bodies = items.map((item) => {
      const { id: _id, ...body } = entryOf(item, '', journaledAt);
      return body;
    });
    const transaction = this.redis.multi();
    for (const body of bodies) transaction.xadd(this.stream, '*', 'entry', JSON.stringify(body));
    const results = (await transaction.exec()) ?? [];
    await this.refresh();
    return bodies.map((body, index) => {
      const [error, id] = results[index] ?? [new Error('MULTI was discarded'), null];
      if (error) throw error;
      return { ...body, id: id as string };
    });
  }

  list(): Promise<OutboxEntry[]> {
    return this.peek(Number.MAX_SAFE_INTEGER);
  }

  /** The entries, each with the error noted on replay when there is one (stream entries cannot change: those live beside them). */
  async peek(limit: number): Promise<OutboxEntry[]> {
    const [rows, errors] = await Promise.all([
      this.redis.xrange(this.stream, '-', '+', 'COUNT', limit),
      this.redis.hgetall(this.errorsKey),
    ]);
    await this.refresh();
    return rows.map(([id, fields]) => {
      const entry: OutboxEntry = { ...(JSON.parse(fields[1]!) as Omit<OutboxEntry, 'id'>), id };
      const noted = errors[id];
      return noted ? { ...entry, lastError: JSON.parse(noted) as DataFailure } : entry;
    });
  }

  async ack(ids: readonly string[]): Promise<void> {
    // Two commands, not one MULTI: the keys may live on different cluster slots, and a noted error left behind is never read (no entry has its id).
    if (ids.length > 0)
      await Promise.all([this.redis.xdel(this.stream, ...ids), this.redis.hdel(this.errorsKey, ...ids)]);
    await this.refresh();
  }

  /** Kept in the hash `${stream}:errors` by entry id, and removed with the entry. */
  async noteError(id: string, lastError: DataFailure): Promise<void> {
    await this.redis.hset(this.errorsKey, id, JSON.stringify(lastError));
  }

  async deadLetter(entry: OutboxEntry, reason: string): Promise<void> {
    await this.redis.xadd(
      `${this.stream}:dead`,
      '*',
      'entry',
      JSON.stringify({ ...entry, deadLetteredAt: new Date().toISOString(), deadReason: reason }),
    );
    await this.ack([entry.id]);
  }

  async replayLease(ttlMs: number): Promise<{ release(): Promise<void> } | null> {
    const key = `${this.stream}:lease`;
    const token = randomUUID();
    if ((await this.redis.set(key, token, 'PX', ttlMs, 'NX')) !== 'OK') return null;
    return {
      // Release only our own lease: it may have expired and been taken by another replica.
      release: async () => {
        await this.redis.eval(
          "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0",
          1,
          key,
          token,
        );
      },
    };
  }

  stats(): { depth: number; oldestAgeSeconds: number } {
    return this.cached;
  }

  async close(): Promise<void> {}

  /** Whether the server keeps data across a restart (AOF or RDB snapshots); undefined when CONFIG is not allowed. */
  async persistent(): Promise<boolean | undefined> {
    try {
      const [, appendonly] = (await this.redis.config('GET', 'appendonly')) as string[];
      const [, save] = (await this.redis.config('GET', 'save')) as string[];
      return appendonly === 'yes' || (save ?? '').trim() !== '';
    } catch {
      return undefined;
    }
  }

  /** Re-reads depth and the oldest entry's age (stream ids start with their millisecond time), and checks the sentinel. */
  async refresh(): Promise<void> {
    await this.checkSentinel();
    const [depth, first] = await Promise.all([
      this.redis.xlen(this.stream),
      this.redis.xrange(this.stream, '-', '+', 'COUNT', 1),
    ]);
    const oldest = first[0] ? Number(first[0][0].split('-')[0]) : undefined;
    this.cached = { depth, oldestAgeSeconds: oldest === undefined ? 0 : Math.max(0, (Date.now() - oldest) / 1000) };
  }

  private async checkSentinel(): Promise<void> {
    const key = `${this.stream}:sentinel`;
    // Set once per stream (the first replica's value is everyone's), then only read.
    if (this.sentinel === undefined || (await this.redis.get(key)) !== this.sentinel) {
      await this.redis.set(key, randomUUID(), 'NX');
      const current = (await this.redis.get(key)) ?? undefined;
      if (this.sentinel !== undefined && current !== this.sentinel) {
        this.options.onLoss?.(`the sentinel ${key} changed: entries written before it was set again are gone`);
      }
      this.sentinel = current;
    }
  }
}
