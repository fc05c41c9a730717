import type { ScheduledTask } from '../stores/task-scheduler/task-scheduler-model.js';
import type { Mirror } from '../dualwrite/mirror.js';
import type { Outbox } from '../dualwrite/outbox.js';
import {
  heldText,
  OutboxReplayer,
  type ReplayerOptions,
  type ReplayOptions,
  type ReplayRound,
} from '../dualwrite/replayer.js';
import type { HeldLock, TaskRunner } from '../stores/task-scheduler/task-runner.js';

/**
 * The outbox replayer, its rounds recorded as executions of `task`. A round runs every
 * second while the outbox is empty, so only rounds that replayed or dead-lettered entries
 * are recorded (a round that found nothing to do, or only an unreachable target, is not),
 * each written once it ended, through a task lock this replayer holds while it records
 * (renewed; released at stop). Recording never fails a round: a failed write is logged.
 */
export class RecordedOutboxReplayer extends OutboxReplayer {
  private held: HeldLock | undefined;
  /** Each round's recorded promise, so callers sharing a round share one record. */
  private readonly recorded = new WeakMap<Promise<ReplayRound>, Promise<ReplayRound>>();

  constructor(
    outbox: Outbox,
    mirror: Mirror,
    options: ReplayerOptions,
    private readonly jobs: {
      readonly runner: TaskRunner;
      readonly task: ScheduledTask;
      readonly logger: Pick<Console, 'warn'>;
    },
  ) {
    super(outbox, mirror, options);
  }

  override replayOnce(options?: ReplayOptions): Promise<ReplayRound> {
    const startedAt = this.jobs.runner.now();
    const round = super.replayOnce(options);
    let recorded = this.recorded.get(round);
    if (!recorded) {
      recorded = round.then(async (ended) => {
        await this.record(startedAt, ended).catch((error: unknown) =>
          this.jobs.logger.warn(
            `dualwrite: recording an outbox replay round failed: ${error instanceof Error ? error.message : String(error)}`,
          ),
        );
        return ended;
      });
      this.recorded.set(round, recorded);
    }
    return recorded;
  }

  override async stop(): Promise<void> {
    await super.stop();
    await this.held?.release();
    this.held = undefined;
  }

  private async record(startedAt: string, round: ReplayRound): Promise<void> {
    if (round.replayed + round.deadLettered === 0) return;
    this.held ??= await this.jobs.runner.acquire(this.jobs.task);
    if (!this.held) return;
    const result = { replayed: round.replayed, deadLettered: round.deadLettered };
    // Entries refused for their data make the run a failure too: the record says which, and why.
    const error =
      round.failure ??
      (round.held?.length
        ? `${round.held.length} entries refused for their data, e.g. ${heldText(round.held[0]!)}`
        : undefined);
    const state = error ? 'failure' : 'success';
    const written = await this.jobs.runner.recordEnded(this.jobs.task, this.held.handle, {
      startedAt,
      state,
      result,
      ...(error ? { error } : {}),
    });
    // The lock was taken over: take it again for the next round.
    if (!written) {
      await this.held.release();
      this.held = undefined;
    }
  }
}
