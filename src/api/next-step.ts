import type { MigrationFlags } from '../ports/flags.js';
import { STAGES, type Stage } from '../ports/stage.js';

/** Read percentages of read-shift's steps, in order; after the last comes postgres-primary. */
export const READ_SHIFT_STEPS = [10, 25, 50, 100] as const;

/** A move toward PostgreSQL: a stage, and in read-shift its read percentage. */
export interface NextStep {
  readonly stage: Stage;
  /** Only in read-shift. */
  readonly readPercent?: number;
}

/**
 * The next move toward PostgreSQL from `inForce`: the next stage, and in read-shift the
 * next percentage (10, 25, 50, 100, then postgres-primary); undefined at postgres-only.
 */
export function nextStep(inForce: Pick<MigrationFlags, 'stage' | 'readPercent'>): NextStep | undefined {
  if (inForce.stage === 'read-shift') {
    const readPercent = READ_SHIFT_STEPS.find((step) => step > inForce.readPercent);
    return readPercent === undefined ? { stage: 'postgres-primary' } : { stage: 'read-shift', readPercent };
  }
  const stage = STAGES[STAGES.indexOf(inForce.stage) + 1];
  if (stage === undefined) return undefined;
  return stage === 'read-shift' ? { stage, readPercent: READ_SHIFT_STEPS[0] } : { stage };
}
