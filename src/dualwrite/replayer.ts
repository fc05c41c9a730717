import { DATA_FIX, describeFailure, failureText, isRefusal, sameFailure, type DataFailure } from './data-error.js';
import type { HeldEntry } from './held-entries.js';
import type { DualWriteMetrics } from './metrics.js';
import { FencedError, type Mirror } from './mirror.js';
import { errorText } from '../domain/error-text.js';
import type { Outbox, OutboxEntry } from './outbox.js';
import type { Side } from '../ports/stage.js';

/** Options of OutboxReplayer. */
export interface ReplayerOptions {
  /** Pause between replay rounds while the outbox is empty or its target unreachable; the first pause before retrying a refused entry. Default 1000 ms. */
  readonly intervalMs?: number;
  /**
   * Longest pause before the background loop retries an entry the target refused for its data
   * (the pause doubles with each refusal). An unreachable target is probed every second
   * instead (the mirror's circuit). Default 30000 ms.
   */
  readonly maxIntervalMs?: number;
  /** Entries read per round (applied in as few transactions as their targets allow), besides those held for their data. Default 2000. */
  readonly batchSize?: number;
  /**
   * Times the target may refuse an entry for its data (a StoreError, or SQLSTATE class 22/23;
   * not a connection failure) before it is dead-lettered. Default 10 (about 2.5 minutes with
   * the default backoff: long enough for a backfill to copy the records an early mirror write
   * refers to).
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
  /** Set when the round stopped at an entry that failed (the target failed, not its data): why. */
  readonly failure?: string;
  /**
   * Entries the target refused for their data, held with the keys they concern while the
   * round went on with the others; absent when none. Each says what the target said and what
   * clears it.
   */
  readonly held?: readonly HeldEntry[];
}

/** Options of one replay round. */
export interface ReplayOptions {
  /**
   * Retry the entries refused for their data now, whatever their backoff (an operator's round,
   * after fixing the data); false: only those whose pause has passed (the background loop). Default true.
   */
  readonly retryHeld?: boolean;
}

/** What became of one entry tried alone. */
type EntryOutcome = 'applied' | 'held' | 'dead' | { readonly failed: unknown };

/**
 * Replays outbox entries in journal order once the target answers again, many per
 * transaction. A round stops at the first failure of the target, so later writes never
 * overtake earlier ones; an entry the target refuses for its data holds only its keys (its
 * own later entries and those that require its key wait behind it, in order) while the
 * others go on. Its timer never throws and is unref'd (as unleash-client's are).
 */
export class OutboxReplayer {
  private timer: NodeJS.Timeout | undefined;
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
  replayOnce(options: ReplayOptions = {}): Promise<ReplayRound> {
    this.running ??= this.round(options.retryHeld ?? true).finally(() => (this.running = undefined));
    return this.running;
  }

  /**
   * Replays until the outbox holds nothing for `side`; resolves with why not when a round
   * fails or makes no progress (the target is down, entries are refused for their data,
   * another process holds the lease). Refused entries are retried in the first round only
   * (the data may have been fixed, e.g. by a backfill); later rounds leave them to their backoff.
   */
  async drainFor(side: Side): Promise<string | undefined> {
    let retryHeld = true;
    while (this.mirror.journaledFor(side) > 0) {
      const waiting = this.mirror.journaledFor(side);
      const round = await this.replayOnce({ retryHeld });
      retryHeld = false;
      if (round.failure) return `${waiting} journaled writes for ${side} cannot be replayed yet (${round.failure})`;
      if (round.replayed + round.deadLettered > 0) continue;
      const held = round.held?.filter((entry) => entry.target === side) ?? [];
      if (held.length > 0)
        return `${waiting} journaled writes for ${side} cannot be replayed yet: ${held.length} refused for their data (${heldText(held[0]!)}; ${DATA_FIX})`;
      return `${waiting} journaled writes for ${side} are not being replayed (the replay lease is held elsewhere)`;
    }
    return undefined;
  }

  /**
   * Takes up to batchSize entries (besides those held) and applies them in journal order:
   * consecutive entries for one target as one transaction (each record once, at its last
   * version); when the target refuses that for its data, entry by entry. An entry refused
   * for its data is held with its keys, and the round goes on with entries of other keys; an
   * entry refused before is tried alone, and by the background loop only once its backoff
   * has passed. A failure of the target stops the round. An entry whose target has become
   * authoritative is fenced. Nothing is tried while the target's circuit is open, except
   * the probe it allows once per second.
   */
  private async round(retryHeld: boolean): Promise<ReplayRound> {
    const lease = await this.outbox.replayLease(60_000);
    if (!lease) return { replayed: 0, deadLettered: 0 };
    let replayed = 0;
    let deadLettered = 0;
    const holding = new HeldKeys();
    const held: HeldEntry[] = [];
    const done = (failure?: string): ReplayRound => ({
      replayed,
      deadLettered,
      ...(failure ? { failure } : {}),
      ...(held.length > 0 ? { held } : {}),
    });
    const waits = (entry: OutboxEntry) =>
      holding.blocks(entry) ||
      (this.mirror.held.has(entry.id) &&
        !retryHeld &&
        !this.mirror.held.due(entry.id, (refusals) => this.backoff(refusals)));
    try {
      // Held entries and those of their keys are read besides the batch, so a pile of them never starves the other keys.
      const entries = await this.withoutCopies(
        await this.outbox.peek((this.options.batchSize ?? 2000) + this.mirror.heldBacklog()),
      );
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
        if (waits(first)) {
          holding.add(first);
          const refused = this.mirror.held.get(first.id);
          if (refused) held.push(refused);
          next++;
          continue;
        }
        // An entry refused before is tried alone: if it is refused again, the others need not be tried one by one.
        let end = next + 1;
        if (!this.mirror.held.has(first.id)) {
          while (
            end < entries.length &&
            entries[end]!.target === first.target &&
            !this.mirror.fenced(entries[end]!) &&
            !waits(entries[end]!) &&
            !this.mirror.held.has(entries[end]!.id)
          )
            end++;
        }
        const run = entries.slice(next, end);
        const breaker = this.mirror.breakerFor(first.target);
        if (!breaker.allow()) return done(`${first.target} is unreachable (circuit open)`);
        if (run.length > 1) {
          try {
            await this.mirror.applyAll(run);
            breaker.succeeded();
            await this.outbox.ack(run.map((entry) => entry.id));
            for (const entry of run) this.finish(entry, 'applied');
            replayed += run.length;
            next = end;
            continue;
          } catch (error) {
            if (!isRefusal(error)) {
              this.mirror.targetFailed(first.target, error);
              this.options.metrics?.outboxReplayed.inc({ store: first.store, outcome: 'failed' });
              return done(`entry ${first.id} (${first.store}.${first.method} ${first.key}): ${errorText(error)}`);
            }
            breaker.succeeded();
          }
        }
        // One at a time: a run of one, or a run refused as a whole (to find the entry); the ones behind a held key wait with it.
        for (const entry of run) {
          if (holding.blocks(entry)) {
            holding.add(entry);
            continue;
          }
          const outcome = await this.replay(entry);
          if (typeof outcome === 'object')
            return done(
              `entry ${entry.id} (${entry.store}.${entry.method} ${entry.key}): ${errorText(outcome.failed)}`,
            );
          if (outcome === 'held') {
            holding.add(entry);
            held.push(this.mirror.held.get(entry.id)!);
          } else if (outcome === 'dead') deadLettered++;
          else replayed++;
        }
        next = end;
      }
      this.replayedInBacklog += replayed + deadLettered;
      if (this.replayedInBacklog > 0 && this.outbox.stats().depth === 0) {
        this.options.logger?.info(
          `dualwrite: outbox empty again: ${this.replayedInBacklog} entries replayed (the sides are known equal once a verification after the outage is clean: dualwrite status, converged)`,
        );
        this.replayedInBacklog = 0;
      }
      return done();
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

  /** Applies one entry; a refusal of its data is the target answering (its circuit stays closed), any other failure opens it. */
  private async replay(entry: OutboxEntry): Promise<EntryOutcome> {
    const breaker = this.mirror.breakerFor(entry.target);
    try {
      await this.mirror.apply(entry);
      breaker.succeeded();
    } catch (error) {
      if (error instanceof FencedError) return this.fenced(entry, error);
      if (!isRefusal(error)) {
        this.mirror.targetFailed(entry.target, error);
        this.options.metrics?.outboxReplayed.inc({ store: entry.store, outcome: 'failed' });
        return { failed: error };
      }
      breaker.succeeded();
      return this.refused(entry, error);
    }
    await this.outbox.ack([entry.id]);
    this.finish(entry, 'applied');
    return 'applied';
  }

  /**
   * The target refused the entry for its data: the entry keeps what it said (in the outbox,
   * and among the mirror's held entries), a new reason is logged once, and the entry is
   * dead-lettered at maxRejections; until then it holds its keys.
   */
  private async refused(entry: OutboxEntry, error: unknown): Promise<'held' | 'dead'> {
    this.options.metrics?.outboxReplayed.inc({ store: entry.store, outcome: 'failed' });
    const failure = describeFailure(error);
    const known = this.mirror.held.get(entry.id)?.error ?? entry.lastError;
    const count = this.mirror.held.refused(entry, failure);
    if (!sameFailure(known, failure)) await this.noteError(entry, failure);
    if (count < (this.options.maxRejections ?? 10)) return 'held';
    await this.outbox.deadLetter(entry, errorText(error));
    this.options.onDeadLetter?.(entry, errorText(error));
    this.options.metrics?.outboxDeadLettered.inc({ store: entry.store });
    this.options.logger?.error(
      `dualwrite: outbox entry ${entry.id} (${entry.store}.${entry.method} ${entry.key}) dead-lettered after ${count} rejections: ${failureText(failure)}`,
    );
    this.finish(entry, 'dead');
    return 'dead';
  }

  /** Keeps a new reason on the entry (when the outbox can) and logs it: once per reason, not per retry. */
  private async noteError(entry: OutboxEntry, failure: DataFailure): Promise<void> {
    this.options.logger?.error(
      `dualwrite: ${entry.target} refused outbox entry ${entry.id} (${entry.store}.${entry.method} ${entry.key}): ${failureText(failure)}; ` +
        `it and later entries of its keys wait, the others are replayed: ${DATA_FIX}`,
    );
    try {
      await this.outbox.noteError?.(entry.id, failure);
    } catch (error) {
      // The reason is still held in memory (status shows it); only a restart would forget it until the next refusal.
      this.options.logger?.warn(
        `dualwrite: could not keep the reason on outbox entry ${entry.id}: ${errorText(error)}`,
      );
    }
  }

  /** An entry whose target has become authoritative is set aside at once, never applied: it could overwrite a newer write. */
  private async fenced(entry: OutboxEntry, error: FencedError): Promise<'dead'> {
    await this.outbox.deadLetter(entry, `fenced: ${error.message}`);
    this.options.onDeadLetter?.(entry, `fenced: ${error.message}`);
    this.options.metrics?.outboxFenced.inc({ store: entry.store });
    this.options.metrics?.outboxDeadLettered.inc({ store: entry.store });
    this.options.logger?.error(
      `dualwrite: outbox entry ${entry.id} (${entry.store}.${entry.method} ${entry.key}) fenced and set aside: ${error.message}; the verifier will report what it left out`,
    );
    this.finish(entry, 'dead');
    return 'dead';
  }

  private finish(entry: OutboxEntry, outcome: 'applied' | 'dead'): void {
    this.mirror.released(entry);
    if (outcome === 'applied') this.options.metrics?.outboxReplayed.inc({ store: entry.store, outcome: 'applied' });
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      // Entries refused for their data are retried on their own backoff, not every round.
      this.replayOnce({ retryHeld: false }).then(
        (round) => {
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
    return this.options.intervalMs ?? 1000;
  }

  /** How long the background loop waits before retrying an entry refused `refusals` times: doubling, up to maxIntervalMs. */
  private backoff(refusals: number): number {
    return Math.min(
      (this.options.intervalMs ?? 1000) * 2 ** Math.max(0, refusals - 1),
      this.options.maxIntervalMs ?? 30_000,
    );
  }
}

/** The keys of the entries held in a round: a later entry of one, or requiring one, waits too (and holds its own key). */
class HeldKeys {
  private readonly keys = new Set<string>();

  blocks(entry: OutboxEntry): boolean {
    return this.keys.has(entry.key) || (entry.requires?.some((key) => this.keys.has(key)) ?? false);
  }

  add(entry: OutboxEntry): void {
    this.keys.add(entry.key);
  }
}

/** One held entry for a line: `entry 0000000000000003 (shop.placeOrder order:o1): <what PostgreSQL said>`. */
export function heldText(entry: HeldEntry): string {
  return `entry ${entry.id} (${entry.store}.${entry.method} ${entry.key}): ${failureText(entry.error)}`;
}
