import type { AdminStatus } from '../api/admin-routes.js';
import { STAGE_POLICIES, type Stage } from '../ports/stage.js';
import { formatFields } from './table.js';

type Field = readonly [string, unknown];

/** A stage as people read it: "read-shift (20% of keyed reads from PostgreSQL)"; the percentage only where it routes reads. */
export function describeStage(stage: Stage, readPercent: number): string {
  return STAGE_POLICIES[stage].reads === 'percent' ? `${stage} (${readPercent}% of keyed reads from PostgreSQL)` : stage;
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
    ['pool', `${status.pool.total} connections, ${status.pool.idle} idle, ${status.pool.waiting} waiting, at most ${status.pool.max}`],
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
  return [['outbox', outbox.depth === 0 ? 'empty' : `${outbox.depth} entries, oldest ${outbox.oldestAgeSeconds} s old`]];
}
