import PQueue from 'p-queue';
import { StoreError } from '../domain/errors.js';
import type { RecordPort } from '../ports/record-port.js';
import type { DualWriteMetrics } from './metrics.js';
import type { MirrorOp, Outbox } from './outbox.js';
import { rolloutBucket } from './routing.js';
import type { Side } from './stages.js';

export type MirrorMode = 'sync' | 'async';

/** Resolves a mirror op's store name to the object it targets on a side. */
export type TargetResolver = (store: string, side: Side) => object;

/**
 * Runs `work` in one transaction, handing it a resolver whose stores are bound to that
 * transaction; commits if it resolves, rolls back if it throws.
 */
export type Transact = (work: (resolve: TargetResolver) => Promise<void>) => Promise<void>;

/** Options of Mirror. */
export interface MirrorOptions {
  /** Where failed mirror writes are journaled for replay. Required. */
  readonly outbox: Outbox;
  /** sync: the caller waits until its mirror write is applied or journaled. async: only for a queue slot. Default "sync". */
  readonly mode?: MirrorMode;
  /** Partitions applying writes in parallel; a key always maps to the same partition, so its writes stay in order. Default 8. */
  readonly concurrency?: number;
  /** Writes applied per transaction when `transact` is given (group commit). Default 200. */
  readonly batchSize?: number;
  /** Accepted-but-unfinished mirror writes allowed before backpressure applies (async mode). Default 10000. */
  readonly maxQueued?: number;
  /**
   * When maxQueued is reached: "wait" makes the caller wait for a slot (latency grows,
   * memory stays bounded); "journal" sends the write to the outbox without trying the
   * target (nothing waits; the replayer applies it later). Default "wait".
   */
  readonly whenFull?: 'wait' | 'journal';
  /** Per side, how to batch writes into one transaction. Default: none (one write at a time). */
  readonly transactions?: { readonly [S in Side]?: Transact };
  readonly metrics?: DualWriteMetrics;
  readonly logger?: Pick<Console, 'warn' | 'error'>;
}

interface Pending {
  readonly op: MirrorOp;
  readonly done: () => void;
}

/** One partition: a buffer of writes and a serial p-queue that flushes it in batches. */
interface Partition {
  readonly queue: PQueue;
  buffer: Pending[];
}

/**
 * Applies writes to the non-authoritative side. Each key maps to one partition whose
 * writes are applied one batch at a time in submission order, so writes to a key land
 * in order. A batch runs in one transaction when it can (one commit for many writes);
 * if the batch fails, its writes are retried one by one, and a write that still fails
 * goes to the outbox. While a key has entries in the outbox its later writes are
 * journaled behind them, so replay keeps the order and an older write never lands
 * after a newer one.
 */
export class Mirror {
  readonly mode: MirrorMode;
  private readonly partitions: Partition[];
  private readonly batchSize: number;
  private readonly maxQueued: number;
  /** Outbox entries per key not yet replayed. */
  private readonly journaled = new Map<string, number>();
  /** Writes accepted and not yet applied or journaled, per key. */
  private readonly inFlightKeys = new Map<string, number>();
  private inFlight = 0;
  /** Completion of every accepted write not yet applied or journaled. */
  private readonly pending = new Set<Promise<void>>();
  private readonly slotWaiters: (() => void)[] = [];
  private readonly idleWaiters: (() => void)[] = [];

  constructor(
    private readonly resolveTarget: TargetResolver,
    private readonly options: MirrorOptions,
  ) {
    this.mode = options.mode ?? 'sync';
    this.maxQueued = positive('maxQueued', options.maxQueued ?? 10000);
    this.batchSize = positive('batchSize', options.batchSize ?? 200);
    const partitions = positive('concurrency', options.concurrency ?? 8);
    this.partitions = Array.from({ length: partitions }, () => ({ queue: new PQueue({ concurrency: 1 }), buffer: [] }));
    options.metrics?.source('mirrorDepth', () => this.inFlight);
  }

  /** Marks keys that already have outbox entries (from before a restart) so new writes queue behind them. */
  async loadJournaled(): Promise<void> {
    for (const entry of await this.options.outbox.peek(Number.MAX_SAFE_INTEGER)) this.countJournaled(entry.key, 1);
  }

  /** Mirror writes accepted and not yet applied or journaled. */
  depth(): number {
    return this.inFlight;
  }

  /** True while `key` (any key, when absent) has a mirror write in flight or in the outbox: the sides may differ. */
  isPending(key?: string): boolean {
    return key === undefined ? this.inFlight > 0 || this.journaled.size > 0 : this.inFlightKeys.has(key) || this.journaled.has(key);
  }

  /**
   * Accepts a mirror write. Never rejects: a failure is journaled, and a failure to
   * journal is logged and counted. Sync mode resolves when the write is applied or
   * journaled; async mode when it is queued.
   */
  async submit(op: MirrorOp): Promise<void> {
    const full = this.inFlight >= this.maxQueued;
    if (this.mode === 'async' && full && this.options.whenFull === 'journal') return this.journalNow(op, 'mirror queue full');
    if (this.mode === 'async' && full) await new Promise<void>((resolve) => this.slotWaiters.push(resolve));
    const partition = this.partitionOf(op.key);
    const done = this.track(op.key, new Promise<void>((resolve) => partition.buffer.push({ op, done: resolve })));
    if (partition.buffer.length === 1) void partition.queue.add(() => this.flush(partition));
    if (this.mode === 'sync') await done;
  }

  /**
   * Resolves when the writes accepted before this call are applied or journaled, even if
   * more keep arriving (what a verifier waits for before re-checking a difference).
   */
  async settled(): Promise<void> {
    await Promise.all(this.pending);
  }

  /** Resolves when no mirror write is in flight at all (shutdown, tests). */
  drain(): Promise<void> {
    return this.inFlight === 0 ? Promise.resolve() : new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Applies one op now, throwing on failure; also used by the replayer for outbox entries. */
  async apply(op: MirrorOp, resolve: TargetResolver = this.resolveTarget): Promise<void> {
    if (op.records) {
      const port = resolve(op.store, op.target) as RecordPort<Record<string, object>>;
      for (const { entity, key, record } of op.records) await (record ? port.putRecord(entity, record) : port.deleteRecord(entity, key));
      return;
    }
    const target = resolve(op.store, op.target) as Record<string, (...args: unknown[]) => Promise<unknown>>;
    const method = target[op.method];
    if (typeof method !== 'function') throw new TypeError(`store ${op.store} has no method ${op.method}`);
    await method.apply(target, [...op.args]);
  }

  /** Called by the replayer when a journaled entry for `key` was applied or given up. */
  released(key: string): void {
    this.countJournaled(key, -1);
  }

  /** Takes up to batchSize buffered writes and applies them; reschedules itself while more wait. */
  private async flush(partition: Partition): Promise<void> {
    const batch = partition.buffer.splice(0, this.batchSize);
    if (partition.buffer.length > 0) void partition.queue.add(() => this.flush(partition));
    try {
      await this.applyBatch(batch.map((pending) => pending.op));
    } finally {
      for (const pending of batch) this.finish(pending);
    }
  }

  private async applyBatch(ops: MirrorOp[]): Promise<void> {
    const ready: MirrorOp[] = [];
    for (const op of ops) {
      // Behind journaled writes of the same key (or earlier ones of this batch that were journaled).
      if (this.journaled.has(op.key)) await this.journal(op, 'earlier writes to this key are waiting in the outbox');
      else ready.push(op);
    }
    const side = ready[0]?.target;
    const transact = side ? this.options.transactions?.[side] : undefined;
    if (transact && ready.length > 1 && ready.every((op) => op.target === side)) {
      try {
        await transact(async (resolve) => {
          for (const op of ready) await this.apply(op, resolve);
        });
        return;
      } catch (error) {
        // The target is unreachable: trying each write alone would only wait for timeouts again.
        if (!(error instanceof StoreError)) {
          for (const op of ready) await this.failed(op, error);
          return;
        }
        // Some write was rejected and the transaction rolled back: apply them one by one.
      }
    }
    for (const op of ready) {
      if (this.journaled.has(op.key)) await this.journal(op, 'earlier writes to this key are waiting in the outbox');
      else await this.apply(op).catch((error: unknown) => this.failed(op, error));
    }
  }

  private async failed(op: MirrorOp, error: unknown): Promise<void> {
    this.options.metrics?.mirrorFailures.inc({ store: op.store, operation: op.method, target: op.target });
    await this.journal(op, errorText(error));
  }

  private async journal(op: MirrorOp, reason: string): Promise<void> {
    try {
      await this.options.outbox.append(op, reason);
      this.countJournaled(op.key, 1);
    } catch (error) {
      // The last resort: loud, counted, and left for the verifier to find and repair.
      this.options.metrics?.mirrorLost.inc({ store: op.store, target: op.target });
      this.options.logger?.error(`dualwrite: mirror write ${op.store}.${op.method} key ${op.key} LOST: journaling failed (${errorText(error)}); the verifier will report the difference`);
    }
  }

  /**
   * Journals a write that never entered a partition (the queue was full), without making
   * the caller wait. Only when the same key still has writes in flight does it queue
   * behind them, to keep the key's order.
   */
  private journalNow(op: MirrorOp, reason: string): void {
    const behind = (this.inFlightKeys.get(op.key) ?? 0) > 0;
    const journal = () => this.journal(op, reason);
    const run = (behind ? this.partitionOf(op.key).queue.add(journal) : journal()).finally(() => this.finish({ op, done: () => {} }));
    void this.track(op.key, run);
  }

  private partitionOf(key: string): Partition {
    return this.partitions[rolloutBucket('mirror', key) % this.partitions.length]!;
  }

  private finish(pending: Pending): void {
    this.untrack(pending.op.key);
    pending.done();
    this.slotWaiters.shift()?.();
    if (this.inFlight === 0) for (const resolve of this.idleWaiters.splice(0)) resolve();
  }

  /** Counts an accepted write until finish(); returns its completion. */
  private track(key: string, done: Promise<void>): Promise<void> {
    this.inFlight++;
    this.inFlightKeys.set(key, (this.inFlightKeys.get(key) ?? 0) + 1);
    this.pending.add(done);
    void done.finally(() => this.pending.delete(done));
    return done;
  }

  private untrack(key: string): void {
    this.inFlight--;
    const count = (this.inFlightKeys.get(key) ?? 0) - 1;
    if (count > 0) this.inFlightKeys.set(key, count);
    else this.inFlightKeys.delete(key);
  }

  private countJournaled(key: string, delta: number): void {
    const count = (this.journaled.get(key) ?? 0) + delta;
    if (count > 0) this.journaled.set(key, count);
    else this.journaled.delete(key);
  }
}

export function errorText(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

function positive(name: string, value: number): number {
  if (!Number.isInteger(value) || value < 1) throw new TypeError(`Mirror option ${name} must be a positive integer, got ${JSON.stringify(value)}`);
  return value;
}
