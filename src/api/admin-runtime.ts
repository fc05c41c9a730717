import type { EffectiveFlags } from '../ports/flags.js';
import type { VerifyReport } from '../../verifier/verify.js';
import type { MirrorMode } from '../dualwrite/mirror.js';
import type { ReplayRound } from '../dualwrite/replayer.js';
import type { GateState } from '../dualwrite/stage-gate.js';
import type { Stage } from '../ports/stage.js';
import type { PoolStats } from '../postgres/sql-executor.js';

/**
 * The part of the DualWriteRuntime (openDualWrite) that the health, metrics and admin
 * routes use, so the API depends on this small port rather than on the whole runtime.
 * The real runtime satisfies it as it is (src/api/serve.ts passes one).
 */
export interface AdminRuntime {
  /** The flags operators requested, after the safety rules (`refused` says when those overrode them), and their source. */
  readonly flags: { readonly current: EffectiveFlags };
  /** The stage in force (`current`), the last transition's outcome (`state`), and `settled()` once a change is in force or refused. */
  readonly stage: { readonly current: EffectiveFlags; readonly state: GateState; settled(): Promise<GateState> };
  /**
   * Requests a stage (and read percentage) and returns the flags requested now. Throws
   * FlagSourceConflictError when another source owns the flags (Unleash).
   */
  setFlags(requested: { readonly stage: Stage; readonly readPercent?: number }, change: { readonly reason: string; readonly principal: string }): Promise<EffectiveFlags>;
  readonly mirror: { readonly mode: MirrorMode; depth(): number };
  readonly outbox: { stats(): { depth: number; oldestAgeSeconds: number } };
  readonly replayer: { replayOnce(): Promise<ReplayRound> };
  /** `runOnce()` resolves undefined when the run was skipped; `lastReport` is the last completed run's. */
  readonly verifier: { runOnce(): Promise<VerifyReport | undefined>; readonly lastReport: VerifyReport | undefined };
  readonly db: { query(text: string): Promise<unknown[]>; poolStats(): PoolStats };
  readonly metrics: { readonly registry: { readonly contentType: string; metrics(): Promise<string> } };
}
