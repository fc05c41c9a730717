import { STAGE_POLICIES, type Side, type Stage } from '../src/ports/stage.js';
import type { EffectiveFlags, FlagRecorder, FlagSource, MigrationFlags } from '../src/ports/flags.js';
import { DEFAULT_ROLLOUT_GROUP, Listeners } from './migration-flags.js';

export type { EffectiveFlags } from '../src/ports/flags.js';

export interface FlagStateOptions {
  /** Where the flags in force, the safety rules' refusals and (openFlags) the sources' failures are recorded; a runtime passes its DualWriteMetrics. */
  readonly metrics?: FlagRecorder;
  readonly logger?: Pick<Console, 'warn'>;
  /**
   * The flags the previous process ran with (LastKnownFlagSource). When PostgreSQL was
   * authoritative then, memory (new in this process) missed those writes: memory-authoritative
   * stages are refused until resyncMemory. Default: none.
   */
  readonly lastKnown?: MigrationFlags & { readonly savedAt: string };
}

/** The safety rules' refusals and what is done instead. */
const REFUSALS = {
  'reads-without-dual-write': 'reads stay in memory because PostgreSQL is not being written',
  'memory-stale-after-postgres-only':
    'PostgreSQL stays authoritative because memory missed the writes made in postgres-only; resync memory first',
  'postgres-stale-after-memory-only':
    'writes stay dual-write with reads from memory because PostgreSQL missed the writes made in memory-only; resync PostgreSQL first (backfill, then a clean verification)',
  'postgres-unverified-after-loss':
    'writes stay dual-write with reads from memory because the outbox lost mirror writes toward PostgreSQL; the stage moves on by itself once a verification after the loss proves the sides equal (it is retried until it does)',
  'memory-unverified-after-loss':
    'PostgreSQL stays authoritative because the outbox lost mirror writes toward memory; the stage moves on by itself once a verification after the loss proves the sides equal (it is retried until it does)',
} as const;
type Refusal = keyof typeof REFUSALS;

const DEFAULT_FLAGS: MigrationFlags = { stage: 'memory-only', readPercent: 0, rolloutGroup: DEFAULT_ROLLOUT_GROUP };

/**
 * Combines flag sources (first one with flags wins: Unleash, then the file, then env)
 * and applies the safety rules. `current` is a plain field swapped on change, so the hot
 * path reads flags for the cost of a property access.
 */
export class FlagState {
  current: EffectiveFlags;
  private readonly listeners = new Listeners();
  private readonly unsubscribes: (() => void)[];
  private readonly warned = new Set<string>();
  /** Set once postgres-only was in force: memory missed writes until resynced from PostgreSQL. */
  private memoryStale = false;
  /** Set once memory-only was in force: PostgreSQL missed writes until resynced from memory. */
  private postgresStale = false;
  /** Sides that may miss writes the outbox lost, until a verification proves the sides equal. */
  private readonly unverifiedSides = new Set<Side>();

  constructor(
    private readonly sources: readonly FlagSource[],
    private readonly options: FlagStateOptions = {},
  ) {
    if (options.lastKnown && STAGE_POLICIES[options.lastKnown.stage].authoritative === 'postgres')
      this.memoryStale = true;
    this.current = this.resolve();
    if (this.current.source === 'last-known') {
      options.logger?.warn(
        `dualwrite: no flag source has flags; going on with the flags the last process ran with (${this.current.stage}, saved ${options.lastKnown?.savedAt})`,
      );
    }
    this.unsubscribes = sources.map((source) => source.subscribe(() => this.recompute()));
    options.metrics?.flagsInForce(() => this.current);
  }

  /** Calls `listener` after the effective flags changed. */
  subscribe(listener: () => void): () => void {
    return this.listeners.subscribe(listener);
  }

  /** Which side missed writes while the other ran alone, until resynced. */
  get stale(): { readonly memory: boolean; readonly postgres: boolean } {
    return { memory: this.memoryStale, postgres: this.postgresStale };
  }

  /** Memory was refilled from PostgreSQL (runtime.resyncMemory): memory stages are safe again. */
  memoryResynced(): void {
    this.memoryStale = false;
    this.recompute();
  }

  /** The outbox lost writes toward `side` (true), or a verification has since proven the sides equal (false). */
  unverified(side: Side, lost: boolean): void {
    if (lost) this.unverifiedSides.add(side);
    else this.unverifiedSides.delete(side);
    this.recompute();
  }

  /** PostgreSQL missed writes before this process started (the lineage says memory-only ran since its last resync). */
  postgresIncomplete(): void {
    this.postgresStale = true;
    this.recompute();
  }

  /** PostgreSQL was brought level with memory and verified (runtime.resyncPostgres): PostgreSQL stages are safe again. */
  postgresResynced(): void {
    this.postgresStale = false;
    this.recompute();
  }

  async close(): Promise<void> {
    for (const unsubscribe of this.unsubscribes) unsubscribe();
    await Promise.all(this.sources.map((source) => source.close()));
  }

  private recompute(): void {
    const next = this.resolve();
    if (JSON.stringify(next) === JSON.stringify(this.current)) return;
    this.current = next;
    this.listeners.notify();
  }

  /**
   * What the safety rules would make of `requested` now, without putting it in force: an
   * operator's change is checked with it before it is written anywhere, so a refused change
   * leaves nothing behind to take effect later.
   */
  preview(requested: MigrationFlags): EffectiveFlags & { readonly refusal?: string } {
    const { stage, refused } = this.safe(requested);
    return {
      stage,
      readPercent: readPercentOf(stage, requested.readPercent),
      rolloutGroup: requested.rolloutGroup,
      source: 'preview',
      ...(refused ? { refused, refusal: REFUSALS[refused] } : {}),
    };
  }

  private resolve(): EffectiveFlags {
    const source = this.sources.find((candidate) => candidate.current() !== undefined);
    const requested = source?.current() ?? DEFAULT_FLAGS;
    const name = source?.name ?? 'default';
    const { stage, refused } = this.safe(requested);
    if (refused) this.refuse(refused, requested);
    // A side misses writes from the moment the other one runs alone.
    if (stage === 'postgres-only') this.memoryStale = true;
    if (stage === 'memory-only') this.postgresStale = true;
    return {
      stage,
      readPercent: readPercentOf(stage, requested.readPercent),
      rolloutGroup: requested.rolloutGroup,
      source: name,
      ...(refused ? { refused } : {}),
    };
  }

  /** The stage the safety rules allow for `requested`, and the rule that refused it, if one did. */
  private safe(requested: MigrationFlags): { readonly stage: Stage; readonly refused?: Refusal } {
    let stage: Stage = requested.stage;
    let refused: Refusal | undefined;
    // Seed 004's phase 2: DUAL_WRITE_MODE=true with READ_FROM_POSTGRES_PERCENT > 0 is read-shift.
    if (stage === 'dual-write' && requested.readPercent > 0) stage = 'read-shift';
    if (stage === 'memory-only' && requested.readPercent > 0) {
      refused = 'reads-without-dual-write';
    }
    if (this.memoryStale && STAGE_POLICIES[stage].authoritative === 'memory') {
      refused = 'memory-stale-after-postgres-only';
      stage = 'postgres-primary';
    }
    // Reads from PostgreSQL, or PostgreSQL authoritative, would miss what memory-only took.
    if (this.postgresStale && stage !== 'memory-only' && STAGE_POLICIES[stage].reads !== 'memory') {
      refused = 'postgres-stale-after-memory-only';
      stage = 'dual-write';
    }
    // A side that may miss writes the outbox lost is neither read from nor authoritative until proven equal.
    if (this.unverifiedSides.has('memory') && STAGE_POLICIES[stage].authoritative === 'memory') {
      refused = 'memory-unverified-after-loss';
      stage = 'postgres-primary';
    }
    if (this.unverifiedSides.has('postgres') && stage !== 'memory-only' && STAGE_POLICIES[stage].reads !== 'memory') {
      refused = 'postgres-unverified-after-loss';
      stage = 'dual-write';
    }
    return { stage, ...(refused ? { refused } : {}) };
  }

  private refuse(reason: Refusal, requested: MigrationFlags): void {
    if (this.current?.refused === reason) return;
    this.options.metrics?.flagsRefused(reason);
    if (this.warned.has(reason)) return;
    this.warned.add(reason);
    this.options.logger?.warn(
      `dualwrite: refusing unsafe flags ${JSON.stringify(requested)} (${reason}); ${REFUSALS[reason]}`,
    );
  }
}

/** The share of keyed reads PostgreSQL gets in a stage. */
function readPercentOf(stage: Stage, requested: number): number {
  const reads = STAGE_POLICIES[stage].reads;
  return reads === 'percent' ? requested : reads === 'postgres' ? 100 : 0;
}
