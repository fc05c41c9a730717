import { StoreError } from '../domain/errors.js';
import type { DualWriteMetrics } from './metrics.js';
import { errorText, FencedError, type Mirror } from './mirror.js';
import type { Outbox, OutboxEntry } from './outbox.js';
import type { Side } from '../ports/stage.js';

/** Options of OutboxReplayer. */
export interface ReplayerOptions {
  /** Pause between replay rounds while the outbox is empty or its target unreachable. Default 1000 ms. */
  readonly intervalMs?: number;
  /**
   * Longest pause after rounds stopped by an entry the target rejected (the pause doubles
   * each time). An unreachable target is probed every second instead (the mirror's circuit). Default 30000 ms.
   */
  readonly maxIntervalMs?: number;
  /** Entries read per round (applied in as few transactions as their targets allow). Default 2000. */
  readonly batchSize?: number;
  /**
   * Times the target may reject an entry (a StoreError, not a connection failure) before it
   * is dead-lettered. Default 10 (about 4 minutes with the default backoff: long enough for
   * a backfill to copy the records an early mirror write refers to).
   */
  readonly maxRejections?: number;
  /** Told of each entry set aside (dead-lettered or fenced), after it was; for the audit trail. */
  readonly onDeadLetter?: (entry: OutboxEntry, reason: string) => void;
  readonly metrics?: DualWriteMetrics;
  readonly logger?: Pick<Console, 'warn' | 'error' | 'info'>;
}

export interface ReplayRound {
  readonly replayed: number;
  readonly deadLettered: number;
  /** Set when the round stopped at an entry that failed. */
  readonly failure?: string;
}

/**
 * Replays outbox entries strictly in journal order once the target answers again, many
 * per transaction. A round stops at the first failure so later writes never overtake
 * earlier ones. Its timer never throws and is unref'd (as unleash-client's are).
 */
export class OutboxReplayer {
  private readonly rejections = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;
  /** Rounds in a row that stopped at an entry the target rejected: they back off (an unreachable target is the circuit's business). */
  private rejectedRounds = 0;
  /** Entries replayed since the outbox was last empty, for the line that says it is again. */
  private replayedInBacklog = 0;
  private running: Promise<ReplayRound> | undefined;
  private stopped = true;

  constructor(
    private readonly outbox: Outbox,
    private readonly mirror: Mirror,
    private readonly options: ReplayerOptions = {},
  ) {}

  start(): void {
    this.stopped = false;
    this.schedule(0);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
  }

  /** One replay round now (also what the timer runs). Concurrent calls share the round. */
  replayOnce(): Promise<ReplayRound> {
    this.running ??= this.round().finally(() => (this.running = undefined));
    return this.running;
  }

  /**
   * Replays until the outbox holds nothing for `side`; resolves with why not when a round
   * fails or makes no progress (the target is down, another process holds the lease).
   */
  async drainFor(side: Side): Promise<string | undefined> {
    while (this.mirror.journaledFor(side) > 0) {
      const waiting = this.mirror.journaledFor(side);
      const round = await this.replayOnce();
      if (round.failure) return `${waiting} journaled writes for ${side} cannot be replayed yet (${round.failure})`;
      if (round.replayed + round.deadLettered === 0) return `${waiting} journaled writes for ${side} are not being replayed (the replay lease is held elsewhere)`;
    }
    return undefined;
  }

  /**
   * Takes up to batchSize entries and applies them in journal order: consecutive entries
   * for one target as one transaction (each record once, at its last version); when the
   * target rejects that, entry by entry, stopping at the first that fails. An entry whose
   * target has become authoritative is fenced. Nothing is tried while the target's
   * circuit is open, except the probe it allows once per second.
   */
  private async round(): Promise<ReplayRound> {
    const lease = await this.outbox.replayLease(60_000);
    if (!lease) return { replayed: 0, deadLettered: 0 };
    let replayed = 0;
    let deadLettered = 0;
    try {
      const entries = await this.withoutCopies(await this.outbox.peek(this.options.batchSize ?? 2000));
      let next = 0;
      while (next < entries.length) {
        const first = entries[next]!;
        const fenced = this.mirror.fenced(first);
        if (fenced) {
          await this.fenced(first, new FencedError(fenced));
          deadLettered++;
          next++;
          continue;
        }
        let end = next + 1;
        while (end < entries.length && entries[end]!.target === first.target && !this.mirror.fenced(entries[end]!)) end++;
        const run = entries.slice(next, end);
        const breaker = this.mirror.breakerFor(first.target);
        if (!breaker.allow()) return { replayed, deadLettered, failure: `${first.target} is unreachable (circuit open)` };
        try {
          await this.mirror.applyAll(run);
          breaker.succeeded();
        } catch (error) {
          if (!(error instanceof StoreError)) {
            breaker.failed();
            this.options.metrics?.outboxReplayed.inc({ store: first.store, outcome: 'failed' });
            return { replayed, deadLettered, failure: `entry ${first.id} (${first.store}.${first.method} ${first.key}): ${errorText(error)}` };
          }
          breaker.succeeded();
          // Rejected as a whole: find the entry, one at a time.
          for (const entry of run) {
            const outcome = await this.replay(entry);
            if (outcome === 'failed') return { replayed, deadLettered, failure: `entry ${entry.id} (${entry.store}.${entry.method} ${entry.key})` };
            if (outcome === 'dead') deadLettered++;
            else replayed++;
          }
          next = end;
          continue;
        }
        await this.outbox.ack(run.map((entry) => entry.id));
        for (const entry of run) this.finish(entry, 'applied');
        replayed += run.length;
        next = end;
      }
      this.replayedInBacklog += replayed + deadLettered;
      if (this.replayedInBacklog > 0 && this.outbox.stats().depth === 0) {
        this.options.logger?.info(`dualwrite: outbox empty again: ${this.replayedInBacklog} entries replayed`);
        this.replayedInBacklog = 0;
      }
      return { replayed, deadLettered };
    } finally {
      await lease.release();
    }
  }

  /**
   * The entries less second copies of one mirror write (same opId), which are acknowledged
   * unapplied: those of an entry already replayed, and a later copy in the same batch.
   */
  private async withoutCopies(entries: readonly OutboxEntry[]): Promise<OutboxEntry[]> {
    const seen = new Set<string>();
    const copies: OutboxEntry[] = [];
    const kept: OutboxEntry[] = [];
    for (const entry of entries) {
      const copy = this.mirror.replayedBefore(entry) || (entry.opId !== undefined && seen.has(entry.opId));
      if (entry.opId !== undefined) seen.add(entry.opId);
      (copy ? copies : kept).push(entry);
    }
    if (copies.length > 0) {
      await this.outbox.ack(copies.map((entry) => entry.id));
      this.options.metrics?.outboxReplayed.inc({ store: copies[0]!.store, outcome: 'duplicate' }, copies.length);
    }
    return kept;
  }

  private async replay(entry: OutboxEntry): Promise<'applied' | 'dead' | 'failed'> {
    try {
      await this.mirror.apply(entry);
    } catch (error) {
      if (error instanceof FencedError) return this.fenced(entry, error);
      return this.rejected(entry, error);
    }
    await this.outbox.ack([entry.id]);
    this.finish(entry, 'applied');
    return 'applied';
  }

  private async rejected(entry: OutboxEntry, error: unknown): Promise<'dead' | 'failed'> {
    this.options.metrics?.outboxReplayed.inc({ store: entry.store, outcome: 'failed' });
    if (!(error instanceof StoreError)) return 'failed';
    this.rejectedRounds++;
    const count = (this.rejections.get(entry.id) ?? 0) + 1;
    this.rejections.set(entry.id, count);
    if (count < (this.options.maxRejections ?? 10)) return 'failed';
    await this.outbox.deadLetter(entry, errorText(error));
    this.options.onDeadLetter?.(entry, errorText(error));
    this.options.metrics?.outboxDeadLettered.inc({ store: entry.store });
    this.options.logger?.error(`dualwrite: outbox entry ${entry.id} (${entry.store}.${entry.method} ${entry.key}) dead-lettered after ${count} rejections: ${errorText(error)}`);
    this.finish(entry, 'dead');
    return 'dead';
  }

  /** An entry whose target has become authoritative is set aside at once, never applied: it could overwrite a newer write. */
  private async fenced(entry: OutboxEntry, error: FencedError): Promise<'dead'> {
    await this.outbox.deadLetter(entry, `fenced: ${error.message}`);
    this.options.onDeadLetter?.(entry, `fenced: ${error.message}`);
    this.options.metrics?.outboxFenced.inc({ store: entry.store });
    this.options.metrics?.outboxDeadLettered.inc({ store: entry.store });
    this.options.logger?.error(`dualwrite: outbox entry ${entry.id} (${entry.store}.${entry.method} ${entry.key}) fenced and set aside: ${error.message}; the verifier will report what it left out`);
    this.finish(entry, 'dead');
    return 'dead';
  }

  private finish(entry: OutboxEntry, outcome: 'applied' | 'dead'): void {
    this.rejections.delete(entry.id);
    this.mirror.released(entry);
    if (outcome === 'applied') this.options.metrics?.outboxReplayed.inc({ store: entry.store, outcome: 'applied' });
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.replayOnce().then(
        (round) => {
          if (!round.failure) this.rejectedRounds = 0;
          // A round that made progress without failing is followed at once: a backlog drains back to back.
          this.schedule(!round.failure && round.replayed + round.deadLettered > 0 ? 0 : this.pause());
        },
        (error: unknown) => {
          this.options.logger?.warn(`dualwrite: outbox replay round failed: ${errorText(error)}`);
          this.schedule(this.pause());
        },
      );
    }, delayMs);
    this.timer.unref();
  }

  private pause(): number {
    const base = this.options.intervalMs ?? 1000;
    return Math.min(base * 2 ** this.rejectedRounds, this.options.maxIntervalMs ?? 30_000);
  }
}
