import type { MigrationFlags } from '../ports/flags.js';
import { RequestRefusedError } from '../domain/errors.js';

/**
 * An operator's stage change that did not happen: a safety rule refused it, or its barrier
 * could not complete. Nothing of it is left behind (the flags file holds the stage in force).
 */
export class StageChangeRefusedError extends RequestRefusedError {
  constructor(
    readonly from: MigrationFlags,
    readonly to: MigrationFlags,
    readonly reason: string,
  ) {
    super(`REFUSED: staying in ${describeMove(from)}, not moving to ${describeMove(to)}: ${reason}`);
  }
}

/** A move as people name it: the stage, and the read percentage in read-shift. */
export function describeMove(flags: MigrationFlags): string {
  return flags.stage === 'read-shift' ? `read-shift ${flags.readPercent}%` : flags.stage;
}
