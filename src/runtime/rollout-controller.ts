import type { EffectiveFlags } from '../../flags/flag-state.js';
import { FlagSourceConflictError } from '../../flags/migration-flags.js';
import { ValidationError } from '../domain/errors.js';
import { sameMove, type MigrationFlags } from '../ports/flags.js';
import { STAGE_POLICIES } from '../ports/stage.js';
import { PROCESS_PRINCIPAL } from '../postgres/runtime-state/audit-log.js';
import { AutoRetreat } from './auto-retreat.js';
import type { Closers } from './closers.js';
import type { Components } from './components.js';
import { convergence, type Convergence } from './convergence.js';
import type { DualWriteRuntime } from './dual-write-runtime.js';
import {
  DEFAULT_EVIDENCE_THRESHOLDS,
  EvidenceRefusedError,
  judgeMove,
  type EvidenceThresholds,
  type GateVerdict,
} from './evidence-gate.js';
import { EvidenceWindow } from './evidence-window.js';
import { changeRequest, requestedFlags } from './operator-request.js';
import { rollbackSafety, type RollbackSafety } from './rollback-safety.js';
import type { DualWriteRuntimeOptions } from './runtime-options.js';
import { describeMove, StageChangeRefusedError } from './stage-change-refused.js';

/** The stage an operator asks for: validated into flags (a ValidationError names the field). */
type StageRequest = { readonly stage: unknown; readonly readPercent?: unknown };

/**
 * The rollout's use cases: judging a move by the evidence, an operator's change of stage
 * through the safety rules, the evidence gate and the stage barrier, the automatic retreat,
 * and what the rollout's state says of a rollback and of convergence.
 */
export class RolloutController {
  private readonly thresholds: EvidenceThresholds;
  private readonly evidence: EvidenceWindow;
  readonly autoRetreat: AutoRetreat | undefined;

  constructor(
    private readonly c: Components,
    options: Pick<DualWriteRuntimeOptions, 'evidence' | 'autoRetreat'>,
    closers: Closers,
  ) {
    this.thresholds = { ...DEFAULT_EVIDENCE_THRESHOLDS, ...options.evidence };
    this.evidence = new EvidenceWindow({ registry: c.registry, windowMs: options.evidence?.windowMs });
    this.evidence.start();
    closers.push(async () => this.evidence.stop());
    this.autoRetreat = this.startAutoRetreat(options.autoRetreat ?? c.config.autoRetreat, closers);
  }

  /** What the evidence gate says of moving to `requested` now. */
  async judge(requested: StageRequest): Promise<{ readonly to: MigrationFlags; readonly verdict: GateVerdict }> {
    const { gate, verifier, recovery, outbox, shadow } = this.c;
    const to = requestedFlags(requested, gate.current.rolloutGroup);
    const last = verifier.lastReport;
    const unverified = recovery.current;
    const evidence = await this.evidence.evidence({
      outbox: outbox.stats(),
      shadowReadsOff: shadow.off,
      ...(last ? { lastVerification: { startedAt: last.startedAt, consistent: last.consistent } } : {}),
      ...(unverified
        ? { unverified: { side: unverified.side, since: unverified.since, reason: unverified.reason } }
        : {}),
    });
    return { to, verdict: judgeMove(gate.current, to, evidence, new Date(), this.thresholds) };
  }

  /**
   * An operator's change of stage: refused before anything is written when the safety rules
   * or (unless forced) the evidence refuse it; then written to the flags file, and undone
   * there when the stage barrier cannot complete it, so a refused change never takes effect later.
   */
  async setFlags(
    requested: StageRequest,
    change: Parameters<DualWriteRuntime['setFlags']>[1],
  ): Promise<EffectiveFlags> {
    const { flags, gate, audit } = this.c;
    const flagsFile = this.ownFlagsFile();
    const request = changeRequest(change);
    const { to, verdict } = await this.judge(requested);
    if (change.allowUnavailable && STAGE_POLICIES[to.stage].authoritative !== 'memory') {
      throw new ValidationError(
        'allowUnavailable',
        `applies to a move that makes memory authoritative (a rollback to dual-write, read-shift or memory-only), not to ${to.stage}`,
      );
    }
    // Checked before anything is written, so a refused change cannot take effect later by itself.
    const safety = flags.preview(to).refusal;
    if (safety) throw new StageChangeRefusedError(gate.current, to, safety);
    if (!verdict.allowed) {
      if (!change.force) throw new EvidenceRefusedError(gate.current, to, verdict);
      // Recorded as the operator's decision even if the barrier then refuses the change (no stage.change follows).
      await audit.forced(gate.current, to, verdict, request);
    }
    const from = gate.current;
    const writeFlags = (flagsToWrite: MigrationFlags, reason: string) =>
      flagsFile.write(flagsToWrite, {
        reason,
        principal: request.principal.username,
        changedAt: new Date().toISOString(),
      });
    this.c.stageChanges.expect({ to, request });
    if (change.allowUnavailable) gate.permitUnavailable(to);
    await writeFlags(to, request.reason);
    const state = await gate.settled();
    gate.permitUnavailable(undefined);
    if (!sameMove(to, gate.current)) {
      // The barrier could not complete: the flags file goes back to the stage in force, and the change is over.
      this.c.stageChanges.expect(undefined);
      await writeFlags(gate.current, `${describeMove(to)} was refused: ${state.refused ?? 'not in force'}`);
      await gate.settled();
      throw new StageChangeRefusedError(from, to, state.refused ?? 'the change did not come into force');
    }
    return flags.current;
  }

  /** Whether rolling back now would lose anything, and why. */
  rollbackSafety(): RollbackSafety {
    const { gate, flags, mirror, verifier } = this.c;
    return rollbackSafety(
      gate.current,
      flags.stale.memory,
      mirror.journaledFor('memory'),
      verifier.lastReport,
      new Date(),
      this.thresholds.verifyMaxAgeMs,
    );
  }

  /** Whether the sides are known to be equal now. */
  convergence(): Convergence {
    const { outbox, recovery, mirror, verifier } = this.c;
    return convergence({
      outbox: outbox.stats(),
      unverified: recovery.current,
      lastFailureAt: mirror.lastFailureAt,
      lastReport: verifier.lastReport,
    });
  }

  /** The flags file this process may write, or why it may not. */
  private ownFlagsFile(): NonNullable<Components['flagsFile']> {
    const { flagsFile, flags } = this.c;
    if (!flagsFile)
      throw new FlagSourceConflictError('the flags were given to openDualWrite by the application; change them there');
    if (flags.current.source === 'unleash')
      throw new FlagSourceConflictError(
        'the flags come from Unleash: change toggle dualwrite.stage (and the rollout of dualwrite.read-from-postgres) there',
      );
    return flagsFile;
  }

  /** The automatic retreat, when on: a window of its own over the last `windowMs` (default 60 s), sampled every 5 s. */
  private startAutoRetreat(
    settings: DualWriteRuntimeOptions['autoRetreat'],
    closers: Closers,
  ): AutoRetreat | undefined {
    if (!settings) return undefined;
    const tuned = typeof settings === 'object' ? settings : undefined;
    const window = new EvidenceWindow({
      registry: this.c.registry,
      windowMs: tuned?.windowMs ?? 60_000,
      sampleMs: 5000,
    });
    window.start();
    closers.push(async () => window.stop());
    const autoRetreat = new AutoRetreat({
      ...(tuned ? { thresholds: tuned, checkMs: tuned.checkMs } : {}),
      evidence: () => window.evidence({ outbox: { depth: 0, oldestAgeSeconds: 0 } }),
      current: () => this.c.gate.current,
      retreat: (reason) => this.retreat(reason),
      logger: this.c.logger,
    });
    autoRetreat.start();
    closers.push(async () => autoRetreat.stop());
    return autoRetreat;
  }

  /** The automatic retreat's move: reads back to memory (dual-write), mirror writes journaled at once. */
  private async retreat(reason: string): Promise<void> {
    const { flagsFile, flags, mirror, gate, metrics, logger } = this.c;
    if (!flagsFile || flags.current.source === 'unleash')
      throw new Error("the flags are not this process's to change (Unleash or the application owns them)");
    // Journal mirror writes at once instead of waiting on a failing PostgreSQL; the circuit probes it again.
    mirror.breakerFor('postgres').failed();
    const to: MigrationFlags = { stage: 'dual-write', readPercent: 0, rolloutGroup: gate.current.rolloutGroup };
    this.c.stageChanges.expect({ to, request: { principal: PROCESS_PRINCIPAL, reason }, action: 'stage.retreat' });
    await flagsFile.write(to, { reason, principal: PROCESS_PRINCIPAL.username, changedAt: new Date().toISOString() });
    metrics.retreats.inc();
    logger.warn(`dualwrite: ${reason}; reads are back in memory (moving forward again goes through the evidence gate)`);
  }
}
