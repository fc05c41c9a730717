import type { AdminStatus } from '../api/admin-routes.js';
import type { HeldEntry } from '../dualwrite/held-entries.js';
import { heldText } from '../dualwrite/replayer.js';
import { STAGE_POLICIES, type Stage } from '../ports/stage.js';
import { formatFields } from './table.js';

type Field = readonly [string, unknown];

/** A stage as people read it: "read-shift (20% of keyed reads from PostgreSQL)"; the percentage only where it routes reads. */
export function describeStage(stage: Stage, readPercent: number): string {
  return STAGE_POLICIES[stage].reads === 'percent'
    ? `${stage} (${readPercent}% of keyed reads from PostgreSQL)`
    : stage;
}

/** `dualwrite stage show`: the stage in force, the one requested, and why they differ when they do. */
export function formatStage(status: Pick<AdminStatus, 'stage' | 'flags'>): string {
  return formatFields(stageFields(status));
}

/** `dualwrite outbox show`: mirror writes journaled for replay. */
export function formatOutbox(outbox: AdminStatus['outbox']): string {
  return formatFields(outboxFields(outbox));
}

/** `dualwrite status`: stage, mirror, outbox, last verification and connection pool. */
export function formatStatus(status: AdminStatus): string {
  const verification = status.lastVerification;
  return formatFields([
    ...stageFields(status),
    ['mirror', `${status.mirror.mode}, ${status.mirror.queueDepth} writes queued`],
    ...outboxFields(status.outbox),
    [
      'last verification',
      verification
        ? `${verification.consistent ? 'consistent' : 'DIFFERENCES FOUND'} at ${verification.startedAt} (${verification.persistentDifferences} persistent, ${verification.transientDifferences} transient differences, ${verification.seconds.toFixed(2)} s)`
        : 'none in this process yet (dualwrite verify runs one)',
    ],
    ['rollback now', `${status.rollback.safe ? 'safe' : 'NOT SAFE'}: ${status.rollback.detail}`],
    ['converged', `${status.convergence.converged ? 'yes' : 'NO'}: ${status.convergence.detail}`],
    [
      'pool',
      `${status.pool.total} connections, ${status.pool.idle} idle, ${status.pool.waiting} waiting, at most ${status.pool.max}`,
    ],
  ]);
}

function stageFields({ stage, flags }: Pick<AdminStatus, 'stage' | 'flags'>): Field[] {
  return [
    ['stage in force', `${describeStage(stage.inForce, stage.readPercent)}, epoch ${stage.epoch}`],
    ['requested', `${describeStage(flags.stage, flags.readPercent)}, from ${flags.source}`],
    ...(flags.refused ? [['refused by a safety rule', flags.refused] as const] : []),
    ...(stage.refused ? [['transition refused', `${stage.refused} (retried every second)`] as const] : []),
    ...(stage.lastPauseMs !== null ? [['last transition pause', `${stage.lastPauseMs.toFixed(1)} ms`] as const] : []),
  ];
}

function outboxFields(outbox: AdminStatus['outbox']): Field[] {
  const held = outbox.held ?? [];
  const count = outbox.heldCount ?? held.length;
  return [
    ['outbox', outbox.depth === 0 ? 'empty' : `${outbox.depth} entries, oldest ${outbox.oldestAgeSeconds} s old`],
    ...(count > 0
      ? [['refused (data)', `${count} entries wait for their data to be fixed; the other keys are replayed`] as const]
      : []),
    ...heldLines(held, count).map((line) => ['', line] as const),
  ];
}

/** Entries shown one per line; more than this are counted, not listed. */
const HELD_SHOWN = 5;

/**
 * One line per held entry: `STOPPED: entry <id> (<store>.<method> <key>): <what PostgreSQL
 * said>; <what clears it>` (what `outbox show`, `status` and `outbox replay` print).
 */
export function heldLines(held: readonly HeldEntry[], count = held.length): string[] {
  const lines = held
    .slice(0, HELD_SHOWN)
    .map((entry) => `STOPPED: ${heldText(entry)}, refused ${entry.refusals} times; ${entry.fix}`);
  if (count > HELD_SHOWN) lines.push(`... and ${count - HELD_SHOWN} more (--json lists them)`);
  return lines;
}
