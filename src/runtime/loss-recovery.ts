import type { RepairRequest } from '../../verifier/verifier-loop.js';
import { totalPersistentDifferences, type VerifyReport } from '../../verifier/verify.js';
import { errorText } from '../domain/error-text.js';
import type { Unverified } from '../postgres/runtime-state/lineage-store.js';
import { otherSide, type Side } from '../ports/stage.js';

/** Options of LossRecovery. */
export interface LossRecoveryOptions {
  /** Replays what the outbox holds for a side; why not, when it cannot (OutboxReplayer.drainFor). Required. */
  readonly drainFor: (side: Side) => Promise<string | undefined>;
  /** A verification that repairs as `repair` asks (false: none); undefined when it was skipped (VerifierLoop.runOnce). Required. */
  readonly verify: (repair: RepairRequest | false) => Promise<VerifyReport | undefined>;
  /** Keeps the state where it outlives a restart (the lineage); null once proven equal. Required. */
  readonly record: (unverified: Unverified | null) => Promise<void>;
  /** Told when a side becomes unverified (true) or is proven equal again (false). Required. */
  readonly onChange: (side: Side, unverified: boolean) => void;
  readonly logger?: Pick<Console, 'info' | 'warn' | 'error'>;
  /** First pause before a failed attempt is made again; it doubles up to maxRetryMs. Default 2000 ms. */
  readonly retryMs?: number;
  /** Default 30000 ms (the runtime also tries at once when a mirror target answers again). */
  readonly maxRetryMs?: number;
  /** Default: the system clock. */
  readonly now?: () => Date;
}

/** A side that may miss writes the outbox lost, and how proving it equal is going. */
export interface UnverifiedState extends Unverified {
  readonly attempts: number;
  /** Why the last attempt did not prove the sides equal. */
  readonly lastProblem?: string;
  /** Persistent differences the last verification found (after its repairs), when one ran. */
  readonly differences?: number;
}

/**
 * After the outbox lost entries (Redis restarted empty, a failover, a truncated file), the
 * side they were for may miss acknowledged writes. The loss is not over until a verification
 * proves it over: the side is recorded unverified (in the lineage, so a restart keeps it),
 * reads and authority stay off it (FlagState), and attempts run until one succeeds, each
 * replaying what the outbox still holds for the side, verifying, and copying the
 * authoritative side's records onto the side that misses them (safe: they are acknowledged
 * writes), whatever DUALWRITE_REPAIR says. Deletions are never made here; they are reported.
 */
export class LossRecovery {
  private state: UnverifiedState | undefined;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<boolean> | undefined;
  private stopped = false;
  private readonly now: () => Date;

  constructor(private readonly options: LossRecoveryOptions) {
    this.now = options.now ?? (() => new Date());
  }

  /** The side that may miss writes, while one may. */
  get current(): UnverifiedState | undefined {
    return this.state;
  }

  /** The outbox lost entries toward `side`: records it and starts proving the sides equal. */
  lost(side: Side, reason: string): void {
    // A second loss before the first is proven keeps the first's time: nothing is proven since then either.
    const since = this.state?.since ?? this.now().toISOString();
    this.begin({ side, since, reason: this.state ? `${this.state.reason}; then ${reason}` : reason });
    void this.options.record({ side, since, reason: this.state!.reason });
  }

  /** A state a previous process recorded and did not clear: goes on proving it. */
  resume(unverified: Unverified): void {
    this.begin(unverified);
  }

  /** One attempt now (what the timer runs); true once the sides are proven equal. Concurrent calls share it. */
  attempt(): Promise<boolean> {
    this.running ??= this.tryToProve().finally(() => (this.running = undefined));
    return this.running;
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  private begin(unverified: Unverified): void {
    this.state = { ...unverified, attempts: 0 };
    this.options.onChange(unverified.side, true);
    this.options.logger?.error(
      `dualwrite: ${unverified.side} may miss acknowledged writes (${unverified.reason}); reads and authority stay off it until a verification proves the sides equal`,
    );
    this.schedule(0);
  }

  private async tryToProve(): Promise<boolean> {
    const state = this.state;
    if (!state) return true;
    let problem: string | undefined;
    let differences: number | undefined;
    try {
      problem = await this.options.drainFor(state.side);
      if (!problem) {
        const request: RepairRequest = {
          reason: `recovery after the outbox lost writes toward ${state.side} (${state.reason})`,
          allowDeletes: 0,
          unlessIncomplete: 'authoritative',
        };
        let report = await this.options.verify(request);
        // The repairs were made after this report; only a verification after them proves anything.
        if (report && !report.consistent) report = await this.options.verify(false);
        if (!report)
          problem =
            'the verification was skipped (another process held the verifier lock, or only one side is written now)';
        else if (!report.consistent) {
          differences = totalPersistentDifferences(report);
          problem = `${differences} differences remain after copying what ${otherSide(state.side)} holds (records only ${state.side} holds are never deleted here: dualwrite repair --allow-deletes N)`;
        }
      }
    } catch (error) {
      problem = errorText(error);
    }
    if (this.state !== state) return false;
    if (!problem) {
      this.state = undefined;
      this.options.onChange(state.side, false);
      await this.options.record(null).catch(() => {});
      const seconds = (this.now().getTime() - Date.parse(state.since)) / 1000;
      this.options.logger?.info(
        `dualwrite: ${state.side} proven equal to ${otherSide(state.side)} ${seconds.toFixed(1)} s after the outbox lost writes toward it (${state.attempts + 1} attempts)`,
      );
      return true;
    }
    this.state = {
      ...state,
      attempts: state.attempts + 1,
      lastProblem: problem,
      ...(differences !== undefined ? { differences } : {}),
    };
    const delay = Math.min((this.options.retryMs ?? 2000) * 2 ** state.attempts, this.options.maxRetryMs ?? 30_000);
    this.options.logger?.warn(
      `dualwrite: ${state.side} not yet proven equal after the loss (${problem}); trying again in ${(delay / 1000).toFixed(0)} s`,
    );
    this.schedule(delay);
    return false;
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.attempt(), delayMs);
    this.timer.unref();
  }
}
