import type { LineageChange, LineageState, LineageStore, Unverified } from '../postgres/runtime-state/lineage-store.js';
import { STAGE_POLICIES, type Stage } from '../ports/stage.js';
import { errorText } from '../domain/error-text.js';

type Pending = { -readonly [K in keyof LineageChange]: LineageChange[K] };

/**
 * Keeps the lineage row up to date with this process's stage changes. A change is noted at
 * once and written in the background; while PostgreSQL does not answer, changes coalesce
 * and the write is retried every `retryMs`, so a stage change never waits on the lineage
 * (a rollback to memory must work during an outage).
 */
export class LineageRecorder {
  private pending: Pending | undefined;
  private writing: Promise<void> = Promise.resolve();
  private retryTimer: NodeJS.Timeout | undefined;
  private closed = false;
  /** The lineage as last written (or read at start). */
  last: LineageState | undefined;

  constructor(
    private readonly store: LineageStore,
    private readonly holder: string,
    private readonly logger: Pick<Console, 'warn'>,
    private readonly retryMs = 2000,
  ) {}

  /** Reads the lineage as the processes before this one left it. */
  async read(): Promise<LineageState | undefined> {
    this.last = await this.store.read();
    return this.last;
  }

  /** A writing process starts in `stage`: the generation moves, and the write must land before the process serves. */
  async start(stage: Stage): Promise<LineageState> {
    this.note({
      stage,
      bumps: 1,
      memoryOnlyRan: stage === 'memory-only',
      ...(stage === 'memory-only' ? { postgresComplete: false } : {}),
    });
    await this.flush({ rethrow: true });
    return this.last!;
  }

  /** A stage came into force after `from`. */
  stageApplied(from: Stage, to: Stage): void {
    const authorityMoved = STAGE_POLICIES[from].authoritative !== STAGE_POLICIES[to].authoritative;
    this.note({
      stage: to,
      bumps: authorityMoved ? 1 : 0,
      memoryOnlyRan: to === 'memory-only',
      ...(to === 'memory-only' ? { postgresComplete: false } : {}),
    });
    void this.flush();
  }

  /** A resync verified PostgreSQL equal to memory: it holds every write again. */
  async postgresResynced(stage: Stage): Promise<void> {
    this.note({ stage, bumps: 0, memoryOnlyRan: false, postgresComplete: true });
    await this.flush({ rethrow: true });
  }

  /**
   * The outbox lost writes toward `side` (or null: a verification proved the sides equal
   * again). Kept until PostgreSQL takes it, so it outlives a restart even when the loss
   * happened while PostgreSQL was down.
   */
  unverified(unverified: Unverified | null, stage: Stage): Promise<void> {
    this.note({ stage, bumps: 0, memoryOnlyRan: false, unverified });
    return this.flush();
  }

  /** Writes what is pending (one last try) and stops retrying. */
  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.retryTimer);
    await this.flush();
  }

  private note(change: Omit<LineageChange, 'by'>): void {
    const noted = { ...change, by: this.holder };
    this.pending = this.pending ? merged(this.pending, noted) : noted;
  }

  /** Writes the pending change after any write in progress; a failure keeps it pending and schedules a retry. */
  private flush(options: { readonly rethrow?: boolean } = {}): Promise<void> {
    const attempt = this.writing.then(async () => {
      const change = this.pending;
      if (!change) return;
      this.pending = undefined;
      try {
        this.last = await this.store.apply(change);
      } catch (error) {
        this.pending = this.pending ? merged(change, this.pending) : change;
        this.logger.warn(
          `dualwrite: could not record the stage in force (${change.stage}) in dualwrite_lineage: ${errorText(error)}; retrying every ${this.retryMs} ms`,
        );
        this.scheduleRetry();
        if (options.rethrow) throw error;
      }
    });
    this.writing = attempt.catch(() => {});
    return attempt;
  }

  private scheduleRetry(): void {
    if (this.closed || this.retryTimer) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      void this.flush();
    }, this.retryMs);
    this.retryTimer.unref();
  }
}

/** An unwritten change followed by a later one, as one change: the later one's decisions win, the earlier one's stand where it made none. */
function merged(earlier: LineageChange, later: LineageChange): Pending {
  const decided = <K extends 'postgresComplete' | 'unverified'>(key: K) =>
    later[key] !== undefined ? { [key]: later[key] } : earlier[key] !== undefined ? { [key]: earlier[key] } : {};
  return {
    stage: later.stage,
    bumps: earlier.bumps + later.bumps,
    memoryOnlyRan: earlier.memoryOnlyRan || later.memoryOnlyRan,
    by: later.by,
    ...decided('postgresComplete'),
    ...decided('unverified'),
  };
}
