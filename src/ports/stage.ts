/** The migration stages, in order (seed 004's phases). Rollback is moving to an earlier one. */
export const STAGES = ['memory-only', 'dual-write', 'read-shift', 'postgres-primary', 'postgres-only'] as const;
export type Stage = (typeof STAGES)[number];
export type Side = 'memory' | 'postgres';

/** What a stage does with writes and reads. */
export interface StagePolicy {
  /** Written first; its result or error is what the caller gets. */
  readonly authoritative: Side;
  /** Also written, after the authoritative side; null when only one side is written. */
  readonly mirror: Side | null;
  /** Where reads go: one side, or READ_FROM_POSTGRES_PERCENT of keys to PostgreSQL. */
  readonly reads: Side | 'percent';
}

export const STAGE_POLICIES: Readonly<Record<Stage, StagePolicy>> = {
  'memory-only': { authoritative: 'memory', mirror: null, reads: 'memory' },
  'dual-write': { authoritative: 'memory', mirror: 'postgres', reads: 'memory' },
  'read-shift': { authoritative: 'memory', mirror: 'postgres', reads: 'percent' },
  'postgres-primary': { authoritative: 'postgres', mirror: 'memory', reads: 'postgres' },
  'postgres-only': { authoritative: 'postgres', mirror: null, reads: 'postgres' },
};

export function isStage(value: unknown): value is Stage {
  return typeof value === 'string' && (STAGES as readonly string[]).includes(value);
}

export function otherSide(side: Side): Side {
  return side === 'memory' ? 'postgres' : 'memory';
}

/** True when two stages write differently (authoritative side or mirror target): moving between them needs a barrier. */
export function writesDiffer(a: Stage, b: Stage): boolean {
  return (
    STAGE_POLICIES[a].authoritative !== STAGE_POLICIES[b].authoritative ||
    STAGE_POLICIES[a].mirror !== STAGE_POLICIES[b].mirror
  );
}
