import { performance } from 'node:perf_hooks';
import { sameMove, type EffectiveFlags, type FlagReader, type MigrationFlags } from '../ports/flags.js';
import type { DualWriteMetrics } from './metrics.js';
import type { Mirror } from './mirror.js';
import type { MirrorOp } from './outbox.js';
import { STAGE_POLICIES, writesDiffer, type Side } from '../ports/stage.js';
import { withTimeout } from '../shared/with-timeout.js';

/** Options of StageGate. */
export interface StageGateOptions {
  /** The flags operators set (a FlagState); the gate follows them. Required. */
  readonly flags: FlagReader;
  /** The mirror whose accepted writes must land before the stage changes. Required. */
  readonly mirror: Pick<Mirror, 'settled' | 'throttle' | 'journaledToward'>;
  /** Replays the outbox until it holds nothing for a side, or says why not (OutboxReplayer.drainFor). Required. */
  readonly drainFor: (side: Side) => Promise<string | undefined>;
  /** Longest wait for old writes to land, while new writes wait; past it the transition is refused and retried. Default 5000 ms. */
  readonly timeoutMs?: number;
  /** Pause before a refused transition is tried again. Default 1000 ms. */
  readonly retryMs?: number;
  /**
   * Mirror writes admitted at once while a transition drains an async mirror (callers wait
   * for a slot meanwhile), so writes stop only for the last of them. Default 200.
   */
  readonly drainQueueLimit?: number;
  /** Called with the flags each time new ones are in force (the runtime saves them for the next process). */
  readonly onApplied?: (flags: EffectiveFlags) => void;
  readonly metrics?: DualWriteMetrics;
  readonly logger?: Pick<Console, 'info' | 'warn'>;
}

/** What a write holds while it runs: the stage it was acknowledged in. */
export interface WriteTicket {
  readonly flags: EffectiveFlags;
  readonly epoch: number;
  release(): void;
}

/** Where the gate stands after a transition attempt. */
export interface GateState {
  /** The flags writes and reads follow now. */
  readonly flags: EffectiveFlags;
  /** Bumped whenever the way writes go changes. */
  readonly epoch: number;
  /** Set while the requested flags are not in force, with the reason. */
  readonly refused?: string;
  /** How long writes waited in the last transition that had a barrier, in milliseconds. */
  readonly lastPauseMs?: number;
}

/**
 * Moves the process from one stage to the next without letting an older write land on a
 * side after a newer one. A change of the way writes go is a barrier: first, while writes
 * still flow, the mirror settles and the outbox entries for the side about to become
 * authoritative are replayed; then new writes wait while the writes acknowledged under the
 * old stage finish and their mirror writes land; then the stage and epoch switch and the
 * waiting writes go on under the new stage. If the outbox cannot be emptied (the side is
 * down) or old writes do not land within timeoutMs, the transition is refused, the old
 * stage stays, and it is tried again after retryMs. A change of read routing alone needs
 * no barrier. Mirror writes of an older epoch onto a side that has since become
 * authoritative are fenced (see `fence`).
 */
export class StageGate {
  private applied: EffectiveFlags | undefined;
  private epochNumber = 0;
  private ticket: WriteTicket | undefined;
  private active = 0;
  private idleWaiters: (() => void)[] = [];
  /** While closed: resolves when writes may go again. */
  private reopened: Promise<void> | undefined;
  private reopen: (() => void) | undefined;
  private running: Promise<GateState> | undefined;
  /** Transitions and exclusive sections run one after another; the next ones wait here. */
  private busy = false;
  private readonly queued: (() => void)[] = [];
  private refusal: string | undefined;
  private lastPauseMs: number | undefined;
  private loggedRefusal: EffectiveFlags | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  /** The move an operator let go through while the outbox toward its new authority cannot drain (permitUnavailable). */
  private leaveBehindFor: MigrationFlags | undefined;
  /** After such a move: the side still catching up on the copies left behind; their keys are unavailable until they land. */
  private catchingUp: Side | undefined;
  private unsubscribe: (() => void) | undefined;
  private stopped = false;
  private readonly timeoutMs: number;
  private readonly retryMs: number;

  constructor(private readonly options: StageGateOptions) {
    this.timeoutMs = options.timeoutMs ?? 5000;
    this.retryMs = options.retryMs ?? 1000;
    this.closeGate();
    options.metrics?.source('flags', () => this.applied ?? options.flags.current);
  }

  /** The flags in force. Throws before open(). */
  get current(): EffectiveFlags {
    if (!this.applied) throw new Error('StageGate.open() has not applied a stage yet');
    return this.applied;
  }

  get state(): GateState {
    return {
      flags: this.current,
      epoch: this.epochNumber,
      ...(this.refusal ? { refused: this.refusal } : {}),
      ...(this.lastPauseMs !== undefined ? { lastPauseMs: this.lastPauseMs } : {}),
    };
  }

  /**
   * Applies the flags in force for the first time (after replaying outbox entries left for
   * the side that is authoritative in them) and follows every later change.
   */
  async open(): Promise<GateState> {
    this.unsubscribe ??= this.options.flags.subscribe(() => void this.retry());
    return this.retry();
  }

  /** Tries now to bring the requested flags into force (what the retry timer does after a refusal). */
  retry(): Promise<GateState> {
    this.running ??= this.serially(() => this.reconcile()).finally(() => (this.running = undefined));
    return this.running;
  }

  /**
   * Runs `work` while no write runs: new writes wait, those in flight and their mirror
   * writes land first (what copying a side whole needs to end exact). Keep it short.
   */
  exclusive<T>(work: () => Promise<T>): Promise<T> {
    return this.serially(async () => {
      this.closeGate();
      try {
        await this.idle();
        await this.options.mirror.settled();
        return await work();
      } finally {
        this.openGate();
      }
    });
  }

  /** Resolves once the last requested flags are in force, or the latest attempt at them was refused. */
  settled(): Promise<GateState> {
    return this.running ?? Promise.resolve(this.state);
  }

  /** Entry of a write: at once while the gate is open, else once the transition is over. */
  enter(): WriteTicket | Promise<WriteTicket> {
    if (this.reopened === undefined) {
      this.active++;
      return this.ticket!;
    }
    return this.reopened.then(() => this.enter());
  }

  /**
   * Why a mirror write must not be applied: its target is authoritative now. The barrier
   * empties the outbox toward a side before it becomes authoritative, so this only stops
   * an entry that reached an outbox some other way (a forced start, another process).
   */
  fence(op: MirrorOp): string | undefined {
    const flags = this.applied;
    if (!flags || STAGE_POLICIES[flags.stage].authoritative !== op.target) return undefined;
    // A copy left behind by a move that permitted it: its key has been unavailable since, so nothing newer is there.
    if (this.catchingUp === op.target) return undefined;
    return `${op.target} has been authoritative since epoch ${this.epochNumber} (${flags.stage}); this write of epoch ${op.epoch} could overwrite a newer one`;
  }

  /**
   * Lets `to` (or nothing, when undefined) go through although the outbox toward its new
   * authority cannot be emptied now (its target is down): the keys of the copies left behind
   * are unavailable (`unavailable`) until the copies land, and every other key is served.
   * Only toward memory: copies toward memory read their record from PostgreSQL when they are
   * applied, so applying them late, to keys nothing has written since, overwrites nothing newer.
   */
  permitUnavailable(to: MigrationFlags | undefined): void {
    if (to && STAGE_POLICIES[to.stage].authoritative !== 'memory')
      throw new TypeError(
        `only a move that makes memory authoritative may leave copies behind, not one to ${to.stage}`,
      );
    this.leaveBehindFor = to;
  }

  /**
   * Why a call on `keys` (any key, when undefined: a list or search) cannot be answered now,
   * if it cannot: after a move that left copies behind, a key still waiting for its copy.
   */
  unavailable(keys: readonly string[] | undefined): string | undefined {
    const side = this.catchingUp;
    if (!side) return undefined;
    if (!this.options.mirror.journaledToward(side)) {
      this.catchingUp = undefined;
      return undefined;
    }
    const waiting =
      keys === undefined ? 'a read of many keys' : keys.find((key) => this.options.mirror.journaledToward(side, key));
    return (
      waiting &&
      `${waiting} waits for a copy toward ${side} left behind by a rollback during an outage; it is served once that copy lands`
    );
  }

  /** Stops following the flags (writes keep the stage they have). */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    this.unsubscribe?.();
    await this.running;
  }

  /** Runs `work` after those already running; at once (synchronously up to its first await) when none is. */
  private async serially<T>(work: () => Promise<T>): Promise<T> {
    if (this.busy) await new Promise<void>((resolve) => this.queued.push(resolve));
    this.busy = true;
    try {
      return await work();
    } finally {
      const next = this.queued.shift();
      if (next) next();
      else this.busy = false;
    }
  }

  private async reconcile(): Promise<GateState> {
    clearTimeout(this.retryTimer);
    for (;;) {
      const requested = this.options.flags.current;
      if (this.applied && sameFlags(requested, this.applied)) {
        this.refusal = undefined;
        return this.state;
      }
      const refused = await this.transition(requested);
      if (!refused) continue;
      if (this.options.flags.current !== requested) continue;
      this.refused(requested, refused);
      if (!this.stopped) {
        this.retryTimer = setTimeout(() => void this.retry(), this.retryMs);
        this.retryTimer.unref();
      }
      if (!this.applied) throw new Error(`dualwrite: cannot start in ${requested.stage}: ${refused}`);
      return this.state;
    }
  }

  /** Moves to `to`; returns why not, leaving the stage as it was. */
  private async transition(to: EffectiveFlags): Promise<string | undefined> {
    const from = this.applied;
    if (from && !writesDiffer(from.stage, to.stage)) {
      this.switchTo(to, false);
      return undefined;
    }
    const authority = STAGE_POLICIES[to.stage].authoritative;
    const authorityMoves = !from || STAGE_POLICIES[from.stage].authoritative !== authority;
    const leaveBehind = this.leaveBehindFor !== undefined && sameMove(this.leaveBehindFor, to);
    if (from && authorityMoves) {
      // While writes still flow, throttled: most of what the barrier waits for lands here.
      this.options.mirror.throttle(this.options.drainQueueLimit ?? 200);
      const early = await this.withinTimeout(
        this.options.mirror.settled().then(() => this.options.drainFor(authority)),
        'the outbox',
      );
      if (early && !leaveBehind) {
        this.options.mirror.throttle(undefined);
        return early;
      }
    }
    const started = performance.now();
    this.closeGate();
    let refused: string | undefined;
    try {
      refused = await this.withinTimeout(
        this.barrier(authorityMoves ? authority : undefined, leaveBehind),
        'writes acknowledged before the change',
      );
      if (!refused) this.switchTo(to, true);
      return refused;
    } finally {
      const seconds = (performance.now() - started) / 1000;
      this.options.mirror.throttle(undefined);
      if (this.applied) {
        this.lastPauseMs = seconds * 1000;
        this.options.metrics?.stageTransitionPause.observe(seconds);
        this.openGate();
      }
    }
  }

  /** Waits until every write of the old stage and its mirror write has landed, and (when authority moves) the outbox toward the new authority is empty. */
  private async barrier(authority: Side | undefined, leaveBehind: boolean): Promise<string | undefined> {
    await this.idle();
    await this.options.mirror.settled();
    if (!authority) return undefined;
    const stuck = await this.options.drainFor(authority);
    if (!stuck || !leaveBehind) return stuck;
    this.catchingUp = authority;
    this.options.logger?.warn(
      `dualwrite: going through with copies left behind (${stuck}): their keys are unavailable until the copies land`,
    );
    return undefined;
  }

  private withinTimeout(work: Promise<string | undefined>, what: string): Promise<string | undefined> {
    return withTimeout(work, this.timeoutMs, () => `${what} did not settle within ${this.timeoutMs} ms`);
  }

  private switchTo(to: EffectiveFlags, barrier: boolean): void {
    const from = this.applied;
    this.applied = to;
    if (barrier) {
      this.epochNumber++;
      this.options.metrics?.stageTransitions.inc({ outcome: 'applied' });
    }
    this.ticket = { flags: to, epoch: this.epochNumber, release: () => this.leave() };
    this.refusal = undefined;
    this.loggedRefusal = undefined;
    this.options.onApplied?.(to);
    if (barrier || from?.stage !== to.stage)
      this.options.logger?.info(
        `dualwrite: stage ${from ? from.stage : '(start)'} -> ${to.stage}, read percent ${to.readPercent}, epoch ${this.epochNumber}`,
      );
  }

  private refused(requested: EffectiveFlags, reason: string): void {
    this.refusal = reason;
    this.options.metrics?.stageTransitions.inc({ outcome: 'refused' });
    // Once per requested change: a retry that fails the same way is counted, not logged again.
    if (this.loggedRefusal === requested) return;
    this.loggedRefusal = requested;
    this.options.logger?.warn(
      `dualwrite: staying in ${this.applied?.stage ?? '(not started)'}, not moving to ${requested.stage}: ${reason}; retrying every ${this.retryMs} ms`,
    );
  }

  private closeGate(): void {
    if (this.reopened) return;
    this.reopened = new Promise((resolve) => (this.reopen = resolve));
  }

  private openGate(): void {
    const reopen = this.reopen;
    this.reopened = this.reopen = undefined;
    reopen?.();
  }

  private leave(): void {
    this.active--;
    if (this.active === 0) for (const resolve of this.idleWaiters.splice(0)) resolve();
  }

  private idle(): Promise<void> {
    return this.active === 0 ? Promise.resolve() : new Promise((resolve) => this.idleWaiters.push(resolve));
  }
}

function sameFlags(a: EffectiveFlags, b: EffectiveFlags): boolean {
  return (
    a.stage === b.stage &&
    a.readPercent === b.readPercent &&
    a.rolloutGroup === b.rolloutGroup &&
    a.source === b.source &&
    a.refused === b.refused
  );
}
