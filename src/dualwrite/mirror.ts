import { randomUUID } from 'node:crypto';
import PQueue from 'p-queue';
import type { RecordKey, RecordPort } from '../ports/record-port.js';
import type { IntentLog } from './intent-log.js';
import type { DualWriteMetrics, MirrorWriteOutcome } from './metrics.js';
import { CircuitBreaker, type CircuitBreakerOptions } from './circuit-breaker.js';
import { DATA_FIX, describeFailure, failureText, isRefusal, type DataFailure } from './data-error.js';
import { HeldEntries } from './held-entries.js';
import type { MirrorOp, Outbox, OutboxEntry, RecordCopy } from './outbox.js';
import { rolloutBucket } from './routing.js';
import { otherSide, type Side } from '../ports/stage.js';
import { errorText } from '../domain/error-text.js';
import { DualWriteError } from '../domain/errors.js';

export type MirrorMode = 'sync' | 'async';

const FOLLOWS_JOURNALED = 'earlier writes it follows are waiting in the outbox';
const GROWTH_REPORTED_AT = new Set([1e3, 1e4, 1e5, 1e6, 1e7]);

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
  /**
   * Why `op` must not be applied now (its target has become authoritative since it was
   * acknowledged), or undefined when it may. Checked on every apply, replay included.
   * Default: never fenced.
   */
  readonly fence?: (op: MirrorOp) => string | undefined;
  /**
   * Async mode: the write-ahead log a mirror write is appended to before its caller is
   * answered, so a crash loses nothing acknowledged. Default: none (a crash loses what is
   * queued; the verifier finds it).
   */
  readonly intentLog?: Pick<IntentLog, 'append' | 'finish'>;
  /**
   * Per store, its entities in dependency order (a record's references first). Given, a
   * batch of copies is written entity by entity, many records per statement; absent,
   * record by record in the order of the ops. Default: absent.
   */
  readonly entityOrder?: { readonly [store: string]: readonly string[] };
  /** When a target that failed is tried again (one circuit per side, shared with the replayer). Default: probe every 1000 ms. */
  readonly breaker?: CircuitBreakerOptions;
  readonly metrics?: DualWriteMetrics;
  readonly logger?: Pick<Console, 'warn' | 'error'>;
}

/** Thrown by Mirror.apply for an op whose target has become authoritative: applying it could overwrite a newer write. */
export class FencedError extends DualWriteError {}

/**
 * Thrown by Mirror.apply when a copy could not be read from the authoritative side (`side`):
 * the target was never tried, so its failure must not be taken for the target's.
 */
export class SourceReadError extends DualWriteError {
  constructor(
    readonly side: Side,
    cause: unknown,
  ) {
    super(`reading the record to copy from ${side} failed: ${cause instanceof Error ? cause.message : String(cause)}`, {
      cause,
    });
  }
}

/** Which side's failure opened a target's circuit, and what it was: the target itself, or the side its copies are read from. */
interface Outage {
  readonly down: Side;
  readonly error?: string;
}

/** The completion of one accepted write, which writes that depend on it wait for. */
interface Completion {
  finished: boolean;
  /** The partition applying it, or -1 when it is journaled without entering one. */
  readonly partition: number;
  readonly promise: Promise<void>;
}

interface Pending {
  readonly op: MirrorOp;
  readonly completion: Completion;
  /** Unfinished writes in other partitions that must land first (same key, or a required key). */
  readonly after: readonly Completion[];
  readonly done: () => void;
}

/** One partition: a buffer of writes and a serial p-queue that flushes it in batches. */
interface Partition {
  readonly index: number;
  readonly queue: PQueue;
  buffer: Pending[];
}

/**
 * Applies writes to the non-authoritative side. Each key maps to one partition whose
 * writes are applied one batch at a time in submission order, so writes to a key land
 * in order; a write that requires another key (an edge and the project it points to)
 * waits for that key's earlier writes in their own partition. A batch runs in one
 * transaction when it can (one commit for many writes); if the batch fails, its writes
 * are retried one by one, and a write that still fails goes to the outbox. While a key
 * (or a key it requires) has entries in the outbox its later writes are journaled behind
 * them, so replay keeps the order and an older write never lands after a newer one.
 */
export class Mirror {
  readonly mode: MirrorMode;
  private readonly partitions: Partition[];
  private readonly batchSize: number;
  private readonly maxQueued: number;
  /** Per key, the journaled mirror writes not yet replayed (by opId: copies of one entry count once). */
  private readonly journaled = new Map<string, Set<string>>();
  /** opIds of the journaled writes replayed (or set aside) most recently, oldest first: a later copy of one is a duplicate. */
  private readonly replayedOpIds = new Set<string>();
  /** Outbox entries per target side not yet replayed. */
  private readonly journaledTo: Record<Side, number> = { memory: 0, postgres: 0 };
  /** The same, per target side and key. */
  private readonly journaledKeys: Record<Side, Map<string, number>> = { memory: new Map(), postgres: new Map() };
  /** The last accepted, unfinished write of each key. */
  private readonly tails = new Map<string, Completion>();
  private inFlight = 0;
  /** Completion of every accepted write not yet applied or journaled. */
  private readonly pending = new Set<Promise<void>>();
  private readonly slotWaiters: (() => void)[] = [];
  private readonly observers = new Set<(op: MirrorOp) => void>();
  private readonly breakers: Record<Side, CircuitBreaker>;
  /** Per target, the failure that opened its circuit (for the lines that say who stopped answering). */
  private readonly outages: Record<Side, Outage> = { memory: { down: 'memory' }, postgres: { down: 'postgres' } };
  /** When a mirror write last failed to reach its target (ms since the epoch): the sides are proven equal only by a verification that started after it. */
  lastFailureAt: number | undefined;
  /** Outbox entries the target refused for their data: why, and how often (shared with the replayer). */
  readonly held: HeldEntries;
  /** Ops that could be neither applied nor journaled: their intents stay, for a restart to recover. */
  private readonly lost = new WeakSet<MirrorOp>();
  /** While set, the admission limit instead of maxQueued (see throttle()). */
  private throttled: number | undefined;
  private readonly idleWaiters: (() => void)[] = [];

  constructor(
    private readonly resolveTarget: TargetResolver,
    private readonly options: MirrorOptions,
  ) {
    this.mode = options.mode ?? 'sync';
    this.maxQueued = positive('maxQueued', options.maxQueued ?? 10000);
    this.batchSize = positive('batchSize', options.batchSize ?? 200);
    const partitions = positive('concurrency', options.concurrency ?? 8);
    this.partitions = Array.from({ length: partitions }, (_, index) => ({
      index,
      queue: new PQueue({ concurrency: 1 }),
      buffer: [],
    }));
    this.breakers = { memory: this.circuit('memory'), postgres: this.circuit('postgres') };
    this.held = new HeldEntries(options.breaker?.now);
    options.metrics?.source('mirrorDepth', () => this.inFlight);
  }

  /** Rebuilds which keys have outbox entries from what the outbox holds (at start, so new writes queue behind them). */
  async loadJournaled(): Promise<void> {
    this.journaled.clear();
    this.journaledTo.memory = this.journaledTo.postgres = 0;
    this.journaledKeys.memory.clear();
    this.journaledKeys.postgres.clear();
    for (const entry of await this.options.outbox.list()) {
      this.countJournaled(entry, 1);
      // Refused for its data by a previous process: shown as held until replayed.
      this.held.restore(entry);
    }
  }

  /** Mirror writes accepted and not yet applied or journaled. */
  depth(): number {
    return this.inFlight;
  }

  /** Outbox entries targeting `side` not yet replayed. */
  journaledFor(side: Side): number {
    return this.journaledTo[side];
  }

  /** True while the outbox holds a write toward `side` of `key` (of any key, when absent). */
  journaledToward(side: Side, key?: string): boolean {
    return key === undefined ? this.journaledTo[side] > 0 : this.journaledKeys[side].has(key);
  }

  /** True while `key` (any key, when absent) has a mirror write in flight or in the outbox: the sides may differ. */
  isPending(key?: string): boolean {
    return key === undefined
      ? this.inFlight > 0 || this.journaled.size > 0
      : this.tails.has(key) || this.journaled.has(key);
  }

  /**
   * Accepts a mirror write; resolves once it is queued (async mode may first wait for a
   * slot), with `applied`, which resolves once it is applied or journaled. Never rejects:
   * a failure is journaled, and a failure to journal is logged and counted.
   */
  async accept(op: MirrorOp): Promise<{ readonly applied: Promise<void> }> {
    for (const observer of this.observers) observer(op);
    const full = this.inFlight >= this.limit();
    let applied: Promise<void>;
    if (this.mode === 'async' && full && this.options.whenFull === 'journal' && this.throttled === undefined) {
      applied = this.journalNow(op, 'mirror queue full');
    } else {
      if (this.mode === 'async')
        while (this.inFlight >= this.limit()) await new Promise<void>((resolve) => this.slotWaiters.push(resolve));
      applied = this.enqueue(op);
    }
    if (this.mode === 'async' && this.options.intentLog) await this.logIntent(this.options.intentLog, op, applied);
    return { applied };
  }

  /** Calls `observer` with every op accepted from now until the returned function is called. */
  observe(observer: (op: MirrorOp) => void): () => void {
    this.observers.add(observer);
    return () => this.observers.delete(observer);
  }

  /**
   * Lowers the number of unfinished writes async mode admits to `limit` (callers wait for
   * a slot, as in sync mode), or restores maxQueued when undefined. A stage transition
   * throttles while the queue drains, so its barrier waits for at most `limit` writes
   * instead of a full queue.
   */
  throttle(limit: number | undefined): void {
    this.throttled = limit === undefined ? undefined : positive('throttle limit', limit);
    if (limit === undefined) for (const wake of this.slotWaiters.splice(0)) wake();
  }

  private enqueue(op: MirrorOp): Promise<void> {
    const partition = this.partitionOf(op.key);
    const after = this.unfinishedBefore(op, partition.index);
    const { completion, done } = this.track(op.key, partition.index);
    partition.buffer.push({ op, completion, after, done });
    if (partition.buffer.length === 1) void partition.queue.add(() => this.flush(partition));
    return completion.promise;
  }

  /**
   * Waits until `op` is in the intent log, and marks it finished there once it has landed.
   * A log that cannot be written is reported, not thrown: the authoritative write happened,
   * and only crash safety is lost.
   */
  private async logIntent(
    log: Pick<IntentLog, 'append' | 'finish'>,
    op: MirrorOp,
    applied: Promise<void>,
  ): Promise<void> {
    const seq = log.append(op);
    void Promise.all([seq, applied]).then(
      ([n]) => this.lost.has(op) || log.finish(n),
      () => {},
    );
    try {
      await seq;
    } catch (error) {
      this.options.metrics?.intentLogFailures.inc();
      this.options.logger?.error(
        `dualwrite: intent log append failed (${errorText(error)}); ${op.store}.${op.method} ${op.key} is mirrored, but would be lost by a crash before it lands`,
      );
    }
  }

  /**
   * Resolves when the writes accepted before this call are applied or journaled, even if
   * more keep arriving (what a verifier or a stage transition waits for).
   */
  async settled(): Promise<void> {
    await Promise.all(this.pending);
  }

  /** Resolves when no mirror write is in flight at all (shutdown, tests). */
  drain(): Promise<void> {
    return this.inFlight === 0 ? Promise.resolve() : new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /**
   * A target's circuit, logging when it opens and when it closes, naming the side that
   * failed: the target, or the authoritative side its copies are read from (in
   * postgres-primary, memory's circuit opens when PostgreSQL, not memory, stops answering).
   */
  private circuit(side: Side): CircuitBreaker {
    return new CircuitBreaker({
      ...this.options.breaker,
      onChange: (state, outageMs) => {
        const { down, error } = this.outages[side];
        const why = error ? ` (${error})` : '';
        if (state === 'open') {
          this.options.logger?.warn(
            down === side
              ? `dualwrite: ${side} stopped answering${why}; mirror writes go to the outbox, and ${side} is probed every second`
              : `dualwrite: ${down} stopped answering${why}; mirror writes to ${side} read their records from it, so they go to the outbox and are tried again every second`,
          );
        } else {
          this.options.logger?.warn(
            `dualwrite: ${down} answers again after ${(outageMs / 1000).toFixed(1)} s; replaying ${this.journaledTo[side]} journaled writes${down === side ? '' : ` for ${side}`}`,
          );
          this.outages[side] = { down: side };
        }
        this.options.breaker?.onChange?.(state, outageMs);
      },
    });
  }

  /**
   * Opens `target`'s circuit after `error`, a failure that is not a refusal of the data (the
   * replayer reports its own here too): the next writes are journaled without waiting on it.
   */
  targetFailed(target: Side, error: unknown): void {
    this.outages[target] = { down: error instanceof SourceReadError ? error.side : target, error: errorText(error) };
    this.lastFailureAt = Date.now();
    this.breakers[target].failed();
  }

  /** The circuit of a target side: whether to try it, and what trying it showed. */
  breakerFor(side: Side): CircuitBreaker {
    return this.breakers[side];
  }

  /** Why `op` must not be applied now (its target is authoritative), if it must not. */
  fenced(op: MirrorOp): string | undefined {
    return this.options.fence?.(op);
  }

  /** Applies one op now, throwing on failure. A copy without a record reads it from the authoritative side first. */
  async apply(op: MirrorOp, resolve: TargetResolver = this.resolveTarget): Promise<void> {
    await this.applyAll([op], resolve);
  }

  /**
   * Applies ops for one target as one: each record once, at its first place in the ops,
   * with its last version (later copies of a record supersede earlier ones); in one
   * transaction when the target has one. Throws on failure, FencedError for an op whose
   * target is authoritative. The replayer applies outbox entries this way, many at a time.
   */
  async applyAll(ops: readonly MirrorOp[], resolve?: TargetResolver): Promise<void> {
    for (const op of ops) {
      const fenced = this.fenced(op);
      if (fenced) throw new FencedError(fenced);
    }
    const copies = new Map<string, { readonly store: string; readonly copy: RecordCopy }>();
    for (const op of ops)
      for (const copy of op.records)
        copies.set(JSON.stringify([op.store, copy.entity, copy.key]), { store: op.store, copy });
    const target = ops[0]?.target;
    if (!target) return;
    const run = async (into: TargetResolver) => {
      const writes: { store: string; entity: string; key: RecordKey; record: object | null }[] = [];
      for (const { store, copy } of copies.values()) {
        writes.push({
          store,
          entity: copy.entity,
          key: copy.key,
          record: copy.record !== undefined ? copy.record : await this.readSource(store, target, copy),
        });
      }
      for (const group of this.inDependencyOrder(writes)) {
        const port = into(group[0]!.store, target) as RecordPort<Record<string, object>>;
        const puts = group.filter((write) => write.record !== null);
        if (puts.length > 0)
          await port.putRecords(
            group[0]!.entity,
            puts.map((write) => write.record!),
          );
        for (const write of group) if (write.record === null) await port.deleteRecord(write.entity, write.key);
      }
    };
    const transact = this.options.transactions?.[target];
    if (resolve) await run(resolve);
    else if (transact && ops.length > 1) await transact(run);
    else await run(this.resolveTarget);
  }

  /** A copy's record as the authoritative side holds it now; its failure is the source's (SourceReadError), not the target's. */
  private async readSource(store: string, target: Side, copy: RecordCopy): Promise<object | null> {
    const source = otherSide(target);
    try {
      return await (this.resolveTarget(store, source) as RecordPort<Record<string, object>>).getRecord(
        copy.entity,
        copy.key,
      );
    } catch (error) {
      throw new SourceReadError(source, error);
    }
  }

  /**
   * Groups writes of one (store, entity), entities in dependency order, when entityOrder
   * says that order; otherwise one group per write, in the order given.
   */
  private inDependencyOrder<W extends { readonly store: string; readonly entity: string }>(
    writes: readonly W[],
  ): W[][] {
    const order = this.options.entityOrder;
    if (!order || writes.some((write) => !order[write.store]?.includes(write.entity)))
      return writes.map((write) => [write]);
    const stores = Object.keys(order);
    const rank = (write: W) => stores.indexOf(write.store) * 1000 + order[write.store]!.indexOf(write.entity);
    const groups = new Map<number, W[]>();
    for (const write of writes) {
      const group = groups.get(rank(write));
      if (group) group.push(write);
      else groups.set(rank(write), [write]);
    }
    return [...groups.entries()].sort(([a], [b]) => a - b).map(([, group]) => group);
  }

  /** Journaled writes of the keys that have an entry held for its data (those entries included): what a replay round reads past. */
  heldBacklog(): number {
    let count = 0;
    for (const key of new Set(this.held.list().map((entry) => entry.key))) count += this.journaled.get(key)?.size ?? 0;
    return Math.max(count, this.held.size);
  }

  /** Called by the replayer when a journaled entry was applied or given up. */
  released(entry: OutboxEntry): void {
    this.countJournaled(entry, -1);
    this.held.forget(entry.id);
    if (entry.opId === undefined) return;
    this.replayedOpIds.add(entry.opId);
    // Copies of an entry sit close together in the journal: the last 100 000 replayed are plenty to recognise them.
    if (this.replayedOpIds.size > 100_000) this.replayedOpIds.delete(this.replayedOpIds.values().next().value!);
  }

  /**
   * True for another copy of an entry already replayed (an append that timed out but landed,
   * or was sent again after a reconnect). It must not be applied: newer writes of its key
   * may have gone straight to the target since the first copy settled the key.
   */
  replayedBefore(entry: OutboxEntry): boolean {
    return entry.opId !== undefined && this.replayedOpIds.has(entry.opId);
  }

  /**
   * Waits until the partition's first write may go (what it requires has landed), then
   * applies the writes up to the next one that must wait, at most batchSize; reschedules
   * itself while more wait. Only a partition's first write ever waits, and only for writes
   * accepted before it, so partitions never wait on each other in a circle.
   */
  private async flush(partition: Partition): Promise<void> {
    const head = partition.buffer[0]!;
    await Promise.all(head.after.filter((completion) => !completion.finished).map((completion) => completion.promise));
    let end = 1;
    while (
      end < partition.buffer.length &&
      end < this.batchSize &&
      partition.buffer[end]!.after.every((completion) => completion.finished)
    )
      end++;
    const batch = partition.buffer.splice(0, end);
    if (partition.buffer.length > 0) void partition.queue.add(() => this.flush(partition));
    try {
      await this.applyBatch(batch.map((pending) => pending.op));
    } finally {
      for (const pending of batch) this.finish(pending.op.key, pending.completion, pending.done);
    }
  }

  /**
   * Applies ops in order: runs of ops that may go are applied together; an op that must
   * follow journaled writes is journaled only after every op before it was applied or
   * journaled, so the journal keeps submission order.
   */
  private async applyBatch(ops: MirrorOp[]): Promise<void> {
    let run: MirrorOp[] = [];
    for (const op of ops) {
      if (this.mustJournal(op)) {
        await this.applyRun(run);
        run = [];
        await this.journalUntried(op, 'behind_journal');
      } else {
        run.push(op);
      }
    }
    await this.applyRun(run);
  }

  /**
   * One transaction for the run when the target has one; one by one when it was rejected.
   * While the target's circuit is open the run is journaled without trying it.
   */
  private async applyRun(ops: MirrorOp[]): Promise<void> {
    const side = ops[0]?.target;
    if (!side) return;
    const breaker = this.breakers[side];
    if (!breaker.allow()) {
      for (const op of ops) await this.journalUntried(op, 'unreachable');
      return;
    }
    const transact = this.options.transactions?.[side];
    if (transact && ops.length > 1 && ops.every((op) => op.target === side)) {
      try {
        // One copy of each record (its last version), one multi-row statement per entity.
        await transact((resolve) => this.applyAll(ops, resolve));
        breaker.succeeded();
        for (const op of ops) this.count(op, 'applied');
        return;
      } catch (error) {
        // The target is unreachable: trying each write alone would only wait for timeouts again.
        if (!isRefusal(error)) {
          this.targetFailed(side, error);
          for (const op of ops) await this.failed(op, error);
          return;
        }
        // Some write's data was refused and the transaction rolled back: apply them one by one, so only that one waits.
        breaker.succeeded();
      }
    }
    for (const op of ops) {
      if (this.mustJournal(op)) await this.journalUntried(op, 'behind_journal');
      else if (breaker.state === 'open') await this.journalUntried(op, 'unreachable');
      else {
        await this.apply(op).then(
          () => {
            breaker.succeeded();
            this.count(op, 'applied');
          },
          (error: unknown) => {
            // The target answered: refusing the data says nothing of its health, and only this write's keys wait.
            if (isRefusal(error)) {
              breaker.succeeded();
              return this.rejected(op, error);
            }
            if (!(error instanceof FencedError)) this.targetFailed(side, error);
            return this.failed(op, error);
          },
        );
      }
    }
  }

  /** An op follows its key's journaled writes and those of the keys it requires into the outbox. */
  private mustJournal(op: MirrorOp): boolean {
    return this.journaled.has(op.key) || (op.requires?.some((key) => this.journaled.has(key)) ?? false);
  }

  /** Counts a mirror write's outcome (plain counters, read when scraped). */
  private count(op: MirrorOp, outcome: MirrorWriteOutcome): void {
    if (this.options.metrics)
      this.options.metrics.mirrorWrites.labels({ store: op.store, target: op.target, outcome }).value++;
  }

  /** Journals a write without trying its target: it follows journaled writes of its keys, or the target's circuit is open. */
  private async journalUntried(op: MirrorOp, outcome: 'behind_journal' | 'unreachable'): Promise<void> {
    this.count(op, outcome);
    const { down } = this.outages[op.target];
    const unreachable =
      down === op.target
        ? `${op.target} is unreachable`
        : `${down}, which mirror writes to ${op.target} read from, is unreachable`;
    await this.journal(
      op,
      outcome === 'behind_journal'
        ? FOLLOWS_JOURNALED
        : `${unreachable} (circuit open after a failure; probed every second)`,
    );
  }

  private async failed(op: MirrorOp, error: unknown): Promise<void> {
    this.options.metrics?.mirrorFailures.inc({ store: op.store, operation: op.method, target: op.target });
    this.count(op, 'failed');
    await this.journal(op, errorText(error));
  }

  /** The target refused the write's data: journaled with what it said, logged with the records it concerns; only its keys wait. */
  private async rejected(op: MirrorOp, error: unknown): Promise<void> {
    const failure = describeFailure(error);
    this.options.metrics?.mirrorFailures.inc({ store: op.store, operation: op.method, target: op.target });
    this.count(op, 'rejected');
    this.options.logger?.error(
      `dualwrite: ${op.target} rejected mirror write ${op.store}.${op.method} key ${op.key} (${recordsOf(op)}): ${failureText(failure)}; ` +
        `journaled, and only writes of its keys wait behind it: ${DATA_FIX}`,
    );
    await this.journal(op, errorText(error), failure);
  }

  private async journal(op: MirrorOp, reason: string, lastError?: DataFailure): Promise<void> {
    try {
      const entry = await this.options.outbox.append({ ...op, opId: op.opId ?? randomUUID() }, reason, lastError);
      this.countJournaled(entry, 1);
      if (lastError) this.held.refused(entry, lastError);
      // Growth is reported at 1000, 10000, 100000 ... entries, not per entry.
      const depth = this.journaledTo[op.target];
      if (GROWTH_REPORTED_AT.has(depth))
        this.options.logger?.warn(
          `dualwrite: ${depth} mirror writes for ${op.target} wait in the outbox (latest: ${reason})`,
        );
    } catch (error) {
      // The last resort: loud, counted, kept in the intent log for a restart, and left for the verifier to find and repair.
      this.lost.add(op);
      this.options.metrics?.mirrorLost.inc({ store: op.store, target: op.target });
      this.options.logger?.error(
        `dualwrite: mirror write ${op.store}.${op.method} key ${op.key} LOST: journaling failed (${errorText(error)}); the verifier will report the difference`,
      );
    }
  }

  /**
   * Journals a write that never entered a partition (the queue was full), without making
   * the caller wait; it is journaled after the unfinished writes it follows.
   */
  private journalNow(op: MirrorOp, reason: string): Promise<void> {
    const after = this.unfinishedBefore(op, -1);
    const { completion, done } = this.track(op.key, -1);
    void Promise.all(after.map((earlier) => earlier.promise))
      .then(() => this.journal(op, reason))
      .finally(() => this.finish(op.key, completion, done));
    return completion.promise;
  }

  /** Unfinished writes outside partition `index` that `op` must follow: its key's and its required keys' last ones. */
  private unfinishedBefore(op: MirrorOp, index: number): Completion[] {
    const after: Completion[] = [];
    for (const key of [op.key, ...(op.requires ?? [])]) {
      const tail = this.tails.get(key);
      if (tail && !tail.finished && tail.partition !== index) after.push(tail);
    }
    return after;
  }

  private limit(): number {
    return this.throttled ?? this.maxQueued;
  }

  private partitionOf(key: string): Partition {
    return this.partitions[rolloutBucket('mirror', key) % this.partitions.length]!;
  }

  /** Counts an accepted write until finish() and makes it its key's tail. */
  private track(key: string, partition: number): { completion: Completion; done: () => void } {
    let done!: () => void;
    const promise = new Promise<void>((resolve) => (done = resolve));
    const completion: Completion = { finished: false, partition, promise };
    this.inFlight++;
    this.tails.set(key, completion);
    this.pending.add(promise);
    return { completion, done };
  }

  private finish(key: string, completion: Completion, done: () => void): void {
    this.inFlight--;
    completion.finished = true;
    if (this.tails.get(key) === completion) this.tails.delete(key);
    this.pending.delete(completion.promise);
    done();
    if (this.inFlight < this.limit()) this.slotWaiters.shift()?.();
    if (this.inFlight === 0) for (const resolve of this.idleWaiters.splice(0)) resolve();
  }

  /**
   * Adds (+1) or removes (-1) a journaled write. Copies of one entry (same opId) count once,
   * so a duplicate replayed twice never lets its key look settled while a copy or a newer
   * entry still waits, which would let a new write go around the outbox and be overwritten.
   */
  private countJournaled(entry: OutboxEntry, delta: 1 | -1): void {
    const id = entry.opId ?? entry.id;
    const ids = this.journaled.get(entry.key) ?? new Set<string>();
    const changed = delta === 1 ? !ids.has(id) : ids.has(id);
    if (delta === 1) ids.add(id);
    else ids.delete(id);
    if (ids.size > 0) this.journaled.set(entry.key, ids);
    else this.journaled.delete(entry.key);
    if (!changed) return;
    this.journaledTo[entry.target] = Math.max(0, this.journaledTo[entry.target] + delta);
    const perKey = this.journaledKeys[entry.target];
    const count = (perKey.get(entry.key) ?? 0) + delta;
    if (count > 0) perKey.set(entry.key, count);
    else perKey.delete(entry.key);
  }
}

/** The records a mirror write copies, for a log line: `orders ["o1"], users ["u1"]`. */
function recordsOf(op: MirrorOp): string {
  return op.records.map((copy) => `${copy.entity} ${JSON.stringify(copy.key)}`).join(', ');
}

function positive(name: string, value: number): number {
  if (!Number.isInteger(value) || value < 1)
    throw new TypeError(`Mirror option ${name} must be a positive integer, got ${JSON.stringify(value)}`);
  return value;
}
