import { randomUUID } from 'node:crypto';
import type { ScheduledTask } from '../src/stores/task-scheduler/task-scheduler-model.js';
import type { Side } from '../src/ports/stage.js';
import type { RunContext, RunTrigger, TaskRunner } from '../src/stores/task-scheduler/task-runner.js';
import type { SqlExecutor } from '../src/postgres/sql-executor.js';
import type { AnyTarget } from './verify-target.js';
import { AdvisoryLock, type VerifierLock } from './lock.js';
import type { VerifierMetrics } from './metrics.js';
import { repair, type RepairResult } from './repair.js';
import { DEFAULT_MAX_REPORTED } from './verify-options.js';
import { totalPersistentDifferences, verify, type VerifyOptions, type VerifyReport } from './verify.js';

/** Options of VerifierLoop. */
export interface VerifierLoopOptions extends VerifyOptions {
  readonly db: SqlExecutor;
  readonly targets: readonly AnyTarget[];
  /** Keeps replicas from verifying at once. Default: AdvisoryLock on db. */
  readonly lock?: VerifierLock;
  readonly metrics?: VerifierMetrics;
  /** Pause between runs. Default 300000 ms (5 min). */
  readonly intervalMs?: number;
  /** Random extra pause, so replicas do not line up. Default 10% of intervalMs. */
  readonly jitterMs?: number;
  /**
   * Whether to verify now, and which side is authoritative: null skips the run (a stage
   * where only one side is written has nothing to compare). Default: always, memory.
   */
  readonly stage?: () => { authoritative: Side } | null;
  /**
   * Repair persistent differences after each run, automatically: never after a verification
   * that found a side incomplete, and never deleting (a record the authoritative side lacks
   * is reported, not removed from the side that holds it). Default false.
   */
  readonly repair?: boolean;
  /** Each completed run's report and repairs, with the `requester` its caller named (undefined for the schedule's). */
  readonly onReport?: (report: VerifyReport, repairs: readonly RepairResult[], requester?: unknown) => void;
  /**
   * Records each run as an execution of `task` (its progress, duration and a summary of the
   * report), under the task's lock, taken inside `lock`: a run whose task lock another
   * holder has is skipped. Default: runs are not recorded.
   */
  readonly jobs?: { readonly runner: TaskRunner; readonly task: ScheduledTask };
  readonly logger?: Pick<Console, 'warn' | 'info'>;
}

/** A repair: why, how many rows it may delete from the side that holds them, and when an incomplete side stops it. */
export interface RepairRequest {
  readonly reason: string;
  /** Default 0. */
  readonly allowDeletes?: number;
  /**
   * Leave alone a verification that found a side incomplete: any side (the background
   * repair), only the authoritative side (copying toward a side that lost writes is what a
   * recovery from an outbox loss is), or never (an operator's repair). Default 'never'.
   */
  readonly unlessIncomplete?: 'any' | 'authoritative' | 'never';
}

/** The background loop's repair (DUALWRITE_REPAIR): deletes nothing, and leaves a verification with an incomplete side alone. */
const BACKGROUND_REPAIR: RepairRequest = {
  reason: 'automatic repair (DUALWRITE_REPAIR)',
  allowDeletes: 0,
  unlessIncomplete: 'any',
};

/**
 * The verifier as a background loop in the process holding the in-memory store. Its
 * timer never throws, is unref'd, and a failed run is counted and retried next time.
 */
export class VerifierLoop {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<VerifyReport | undefined> | undefined;
  private readonly lock: VerifierLock;
  /** The last completed run's report (differences cut at maxReported), for status pages and admin APIs. */
  lastReport: VerifyReport | undefined;
  /** The repairs of the last completed run (empty when it did not repair). */
  lastRepairs: readonly RepairResult[] = [];
  /** The run id of the last run's repairs in dualwrite_repairs (for undoRepair); undefined when it did not repair. */
  lastRepairRunId: string | undefined;
  /** Whether (and how) the run in progress repairs. */
  private runningRepairs: boolean | RepairRequest = false;

  constructor(private readonly options: VerifierLoopOptions) {
    this.lock = options.lock ?? new AdvisoryLock(options.db);
  }

  start(): void {
    this.schedule();
  }

  async stop(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.running;
  }

  /**
   * One run now: verify, publish metrics, repair if enabled. `repair` overrides the `repair`
   * option for this run: true repairs as the background loop does, a RepairRequest is an
   * operator's repair (made even where a side is incomplete, deleting up to allowDeletes);
   * `trigger` says who asked, for the recorded execution (default: the schedule), and
   * `requester` is handed to onReport as it is. Undefined when skipped.
   */
  runOnce(
    options: {
      readonly repair?: boolean | RepairRequest;
      readonly trigger?: RunTrigger;
      readonly requester?: unknown;
    } = {},
  ): Promise<VerifyReport | undefined> {
    const repairing = options.repair ?? this.options.repair === true;
    // A run in progress that does not repair as asked cannot answer a request to repair: run after it.
    if (this.running && repairing && this.runningRepairs !== repairing)
      return this.running.catch(() => undefined).then(() => this.runOnce(options));
    if (!this.running) {
      this.runningRepairs = repairing;
      this.running = this.run(repairing, options.trigger, options.requester).finally(() => (this.running = undefined));
    }
    return this.running;
  }

  /**
   * One verification now, and its repair when asked, with the authoritative side given by the
   * caller: outside the schedule, the lock and the job record, for a caller that holds the
   * sides still while it runs (a resync). Published as a run of the loop is (metrics, the
   * last report, onReport with `requester`).
   */
  verifyAndRepair(authoritative: Side, repairing: false | RepairRequest, requester?: unknown): Promise<VerifyReport> {
    return this.check(authoritative, repairing, { progress: async () => {} }, requester);
  }

  private async run(
    repairing: boolean | RepairRequest,
    trigger: RunTrigger | undefined,
    requester: unknown,
  ): Promise<VerifyReport | undefined> {
    const stage = this.options.stage ? this.options.stage() : { authoritative: 'memory' as Side };
    if (!stage) return undefined;
    const outcome = await this.lock.tryRun(async () => {
      const jobs = this.options.jobs;
      if (!jobs) return this.check(stage.authoritative, repairing, { progress: async () => {} }, requester);
      const recorded = await jobs.runner.run(
        jobs.task,
        (context) => this.check(stage.authoritative, repairing, context, requester),
        { trigger, resultOf: (report) => runSummary(report, this.lastRepairs) },
      );
      return recorded.ran ? recorded.value : undefined;
    });
    if (!outcome) this.options.metrics?.runs.inc({ outcome: 'skipped' });
    return outcome;
  }

  private async check(
    authoritative: Side,
    repairing: boolean | RepairRequest,
    context: RunContext,
    requester: unknown,
  ): Promise<VerifyReport> {
    // Repairing needs every persistent difference, not only those a report keeps.
    const maxReported = this.options.maxReported ?? DEFAULT_MAX_REPORTED;
    const found = await verify(this.options.db, this.options.targets, {
      ...this.options,
      authoritative,
      ...(repairing ? { maxReported: Number.MAX_SAFE_INTEGER } : {}),
      onProgress: this.progressTo(context, repairing ? 90 : 100),
    });
    const report = { ...found, differences: found.differences.slice(0, maxReported) };
    this.options.metrics?.record(report);
    const runId = randomUUID();
    const repairs =
      repairing && found.differences.length > 0 ? await this.repair(found, authoritative, repairing, runId) : [];
    this.lastReport = report;
    this.lastRepairs = repairs;
    this.lastRepairRunId = repairs.length > 0 ? runId : undefined;
    this.options.onReport?.(report, repairs, requester);
    return report;
  }

  /** Repairs what `found` lists as `request` allows (true: the background loop's repair). */
  private async repair(
    found: VerifyReport,
    authoritative: Side,
    request: true | RepairRequest,
    runId: string,
  ): Promise<RepairResult[]> {
    const { reason, allowDeletes = 0, unlessIncomplete = 'never' } = request === true ? BACKGROUND_REPAIR : request;
    const stopping = found.incomplete.filter(
      (side) => unlessIncomplete === 'any' || (unlessIncomplete === 'authoritative' && side.side === authoritative),
    );
    if (stopping.length > 0) {
      const sides = stopping
        .map((side) => `${side.side} misses ${side.missing} of ${side.of} ${side.store}.${side.entity}`)
        .join('; ');
      this.options.logger?.warn(
        `dualwrite: not repairing automatically: ${sides}. A side that incomplete may have been restarted or truncated; repair by hand (dualwrite repair --reason ...) once you know which side is right`,
      );
      return [];
    }
    return repair(found.differences, {
      authoritative,
      db: this.options.db,
      targets: this.options.targets,
      metrics: this.options.metrics,
      runId,
      reason,
      allowDeletes,
    });
  }

  /** verify's onProgress, also telling `context` how far the run got: entities' shares of rows checked, up to `upTo` percent. */
  private progressTo(context: RunContext, upTo: number): NonNullable<VerifyOptions['onProgress']> {
    const entities = this.options.targets.reduce((sum, target) => sum + Object.keys(target.catalog).length, 0);
    const checked = new Map<string, number>();
    return (event) => {
      this.options.onProgress?.(event);
      checked.set(`${event.store}.${event.entity}`, event.rows > 0 ? Math.min(1, event.rowsChecked / event.rows) : 1);
      const done = [...checked.values()].reduce((sum, share) => sum + share, 0);
      void context.progress((upTo * done) / Math.max(1, entities));
    };
  }

  private schedule(): void {
    const interval = this.options.intervalMs ?? 300_000;
    const jitter = Math.random() * (this.options.jitterMs ?? interval / 10);
    this.timer = setTimeout(() => {
      this.runOnce()
        .catch((error: unknown) => {
          this.options.metrics?.runs.inc({ outcome: 'failed' });
          this.options.logger?.warn(
            `dualwrite: verification run failed: ${error instanceof Error ? error.message : String(error)}`,
          );
        })
        .finally(() => {
          if (this.timer) this.schedule();
        });
    }, interval + jitter);
    this.timer.unref();
  }
}

/** What an execution of the verifier keeps: the verdict and its figures, not the differences themselves. */
function runSummary(report: VerifyReport, repairs: readonly RepairResult[]): object {
  return {
    consistent: report.consistent,
    seconds: report.seconds,
    persistentDifferences: totalPersistentDifferences(report),
    transientDifferences: report.entities.reduce((sum, entity) => sum + entity.transient, 0),
    rowsMemory: report.entities.reduce((sum, entity) => sum + entity.rowsMemory, 0),
    repairs: repairs.length,
  };
}
