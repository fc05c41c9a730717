import PQueue from 'p-queue';
import type { DualWriteMetrics } from './metrics.js';
import type { MirrorOp, Outbox } from './outbox.js';
import type { Side } from './stages.js';

export type MirrorMode = 'sync' | 'async';

/** Options of Mirror. */
export interface MirrorOptions {
  /** Where failed mirror writes are journaled for replay. Required. */
  readonly outbox: Outbox;
  /** sync: the caller waits until the mirror write is applied or journaled. async: it waits only for a queue slot. Default "sync". */
  readonly mode?: MirrorMode;
  /** Mirror writes applied at once (async mode). Default 8. */
  readonly concurrency?: number;
  /** Accepted-but-unfinished mirror writes allowed before backpressure applies (async mode). Default 10000. */
  readonly maxQueued?: number;
  /**
   * When maxQueued is reached: "wait" makes the caller wait for a slot (latency grows,
   * memory stays bounded); "journal" sends the write to the outbox without trying the
   * target (nothing waits; the replayer applies it later). Default "wait".
   */
  readonly whenFull?: 'wait' | 'journal';
  readonly metrics?: DualWriteMetrics;
  readonly logger?: Pick<Console, 'warn' | 'error'>;
}

/** Resolves a mirror op to the store object it targets. */
export type TargetResolver = (store: string, side: Side) => object;

/**
 * Applies writes to the non-authoritative side. Writes with the same key are applied in
 * submission order; a write that fails goes to the outbox, and while a key has entries
 * in the outbox its later writes are journaled behind them, so replay keeps the order
 * and an older write never lands after a newer one.
 */
export class Mirror {
  readonly mode: MirrorMode;
  private readonly queue: PQueue;
  private readonly maxQueued: number;
  private readonly whenFull: 'wait' | 'journal';
  /** Tail of each key's chain of mirror writes. */
  private readonly chains = new Map<string, Promise<void>>();
  /** Outbox entries per key not yet replayed. */
  private readonly journaled = new Map<string, number>();
  private inFlight = 0;
  private readonly slotWaiters: (() => void)[] = [];
  private readonly idleWaiters: (() => void)[] = [];

  constructor(
    private readonly resolveTarget: TargetResolver,
    private readonly options: MirrorOptions,
  ) {
    this.mode = options.mode ?? 'sync';
    this.maxQueued = positive('maxQueued', options.maxQueued ?? 10000);
    this.whenFull = options.whenFull ?? 'wait';
    this.queue = new PQueue({ concurrency: positive('concurrency', options.concurrency ?? 8) });
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
    return key === undefined ? this.inFlight > 0 || this.journaled.size > 0 : this.chains.has(key) || this.journaled.has(key);
  }

  /**
   * Accepts a mirror write. Never rejects: a failure is journaled, and a failure to
   * journal is logged and counted. Sync mode resolves when the write is applied or
   * journaled; async mode when it is queued.
   */
  async submit(op: MirrorOp): Promise<void> {
    const journalOnly = this.inFlight >= this.maxQueued && this.mode === 'async' && this.whenFull === 'journal';
    if (this.mode === 'async' && !journalOnly) await this.slot();
    this.inFlight++;
    const previous = this.chains.get(op.key) ?? Promise.resolve();
    const done = previous.then(() => (journalOnly ? this.journal(op, 'mirror queue full') : this.queue.add(() => this.applyOrJournal(op))));
    this.chains.set(op.key, done);
    void done.finally(() => {
      if (this.chains.get(op.key) === done) this.chains.delete(op.key);
      this.inFlight--;
      this.slotWaiters.shift()?.();
      if (this.inFlight === 0) for (const resolve of this.idleWaiters.splice(0)) resolve();
    });
    if (this.mode === 'sync') await done;
  }

  /** Resolves when every accepted mirror write is applied or journaled. */
  drain(): Promise<void> {
    return this.inFlight === 0 ? Promise.resolve() : new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Applies an op now, throwing on failure; used by the replayer for outbox entries. */
  async apply(op: MirrorOp): Promise<void> {
    const target = this.resolveTarget(op.store, op.target) as Record<string, (...args: unknown[]) => Promise<unknown>>;
    const method = target[op.method];
    if (typeof method !== 'function') throw new TypeError(`store ${op.store} has no method ${op.method}`);
    await method.apply(target, [...op.args]);
  }

  /** Called by the replayer when a journaled entry for `key` was applied or given up. */
  released(key: string): void {
    this.countJournaled(key, -1);
  }

  private async applyOrJournal(op: MirrorOp): Promise<void> {
    if (this.journaled.has(op.key)) return this.journal(op, 'earlier writes to this key are waiting in the outbox');
    try {
      await this.apply(op);
    } catch (error) {
      this.options.metrics?.mirrorFailures.inc({ store: op.store, operation: op.method, target: op.target });
      await this.journal(op, errorText(error));
    }
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

  private countJournaled(key: string, delta: number): void {
    const count = (this.journaled.get(key) ?? 0) + delta;
    if (count > 0) this.journaled.set(key, count);
    else this.journaled.delete(key);
  }

  private slot(): Promise<void> {
    return this.inFlight < this.maxQueued ? Promise.resolve() : new Promise((resolve) => this.slotWaiters.push(resolve));
  }
}

export function errorText(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

function positive(name: string, value: number): number {
  if (!Number.isInteger(value) || value < 1) throw new TypeError(`Mirror option ${name} must be a positive integer, got ${JSON.stringify(value)}`);
  return value;
}
