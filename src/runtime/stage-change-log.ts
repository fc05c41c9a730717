import type { EffectiveFlags } from '../../flags/flag-state.js';
import { saveLastKnownFlags } from '../../flags/last-known-flags.js';
import { errorText } from '../domain/error-text.js';
import { sameMove, type MigrationFlags } from '../ports/flags.js';
import type { LineageRecorder } from './lineage-recorder.js';
import type { ChangeRequest, RolloutAudit } from './rollout-audit.js';

/** A change asked for (by an operator, or by the automatic retreat) that has not come into force yet. */
export interface RequestedChange {
  readonly to: MigrationFlags;
  readonly request: ChangeRequest;
  readonly action?: 'stage.retreat';
}

/**
 * What follows each change of the flags in force (the stage gate's onApplied): the flags are
 * saved as last known (for a restart with the flag service down), a change of stage goes to
 * the lineage, and a change of stage or read percentage to the audit trail, named after the
 * request that asked for it when one did.
 */
export class StageChangeLog {
  private requested: RequestedChange | undefined;
  private inForce: EffectiveFlags | undefined;
  private saving = Promise.resolve();

  constructor(
    private readonly lineage: LineageRecorder,
    private readonly audit: RolloutAudit,
    /** Where the flags in force are saved; undefined when the application owns the flags. */
    private readonly lastFlagsPath: string | undefined,
    private readonly logger: Pick<Console, 'warn'>,
  ) {}

  /** Names the change about to be asked for, so its audit entry names who asked; undefined forgets it. */
  expect(change: RequestedChange | undefined): void {
    this.requested = change;
  }

  readonly applied = (applied: EffectiveFlags): void => {
    if (this.lastFlagsPath) this.save(this.lastFlagsPath, applied);
    const from = this.inForce;
    this.inForce = applied;
    // The stage at start is not a change, nor is a change of anything but the stage and read percentage.
    if (!from || (from.stage === applied.stage && from.readPercent === applied.readPercent)) return;
    if (from.stage !== applied.stage) this.lineage.stageApplied(from.stage, applied.stage);
    const requested = this.requested && sameMove(this.requested.to, applied) ? this.requested : undefined;
    if (requested) this.requested = undefined;
    void this.audit.stageChanged(from, applied, requested?.request, requested?.action);
  };

  /** Waits for the flags in force to be saved. */
  settled(): Promise<void> {
    return this.saving;
  }

  private save(path: string, applied: EffectiveFlags): void {
    this.saving = this.saving
      .then(() => saveLastKnownFlags(path, applied))
      .catch((error: unknown) =>
        this.logger.warn(`dualwrite: could not save the flags in force to ${path}: ${errorText(error)}`),
      );
  }
}
