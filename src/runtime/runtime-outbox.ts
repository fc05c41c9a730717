import { dirname, join } from 'node:path';
import type { Redis } from 'ioredis';
import { FallbackOutbox } from '../dualwrite/fallback-outbox.js';
import { FileOutbox } from '../dualwrite/file-outbox.js';
import { IntentLog } from '../dualwrite/intent-log.js';
import type { DualWriteMetrics } from '../dualwrite/metrics.js';
import { errorText } from '../domain/error-text.js';
import type { Outbox } from '../dualwrite/outbox.js';
import { RedisOutbox } from '../dualwrite/redis-outbox.js';
import { redactUrl } from '../postgres/redact.js';
import type { Closers } from './closers.js';
import type { DualWriteConfig } from './config.js';
import type { DualWriteRuntimeOptions } from './runtime-options.js';

/** What the runtime does when the Redis outbox finds it lost entries. */
export interface OutboxLossHandling {
  /** Rebuilds the mirror's pending set from what the outbox still holds. */
  readonly rebuildPending: () => Promise<void>;
  /** Marks the side the lost entries were for unverified, until a verification proves it equal. */
  readonly lost: (detail: string) => void;
}

/**
 * The outbox: the one passed in, else the Redis outbox when REDIS_URL is set (journaling to a
 * file outbox while Redis cannot be written), else a file outbox.
 */
export async function openOutbox(
  options: DualWriteRuntimeOptions,
  config: DualWriteConfig,
  redis: () => Promise<Redis>,
  loss: OutboxLossHandling,
  { metrics, logger }: { readonly metrics: DualWriteMetrics; readonly logger: Pick<Console, 'warn' | 'error'> },
  closers: Closers,
): Promise<Outbox> {
  if (options.outbox) return options.outbox;
  if (!config.redisUrl) {
    const file = await FileOutbox.open({ path: config.outboxPath });
    closers.push(() => file.close());
    return file;
  }
  const redisOutbox = new RedisOutbox(await redis(), {
    // What was lost was still to be mirrored: the pending set is rebuilt from what the
    // stream holds, and the side it was for is unverified until a verification proves it equal.
    onLoss: (detail) => {
      metrics.outboxLost.inc();
      logger.error(`dualwrite: the Redis outbox lost entries (${detail}); rebuilding its pending set`);
      void loss.rebuildPending().then(
        () => loss.lost(`the Redis outbox lost entries: ${detail}`),
        (error: unknown) =>
          logger.warn(`dualwrite: could not rebuild the pending set after the outbox loss: ${errorText(error)}`),
      );
    },
  });
  await redisOutbox.refresh();
  if ((await redisOutbox.persistent()) === false) {
    logger.warn(
      `dualwrite: Redis at ${redactUrl(config.redisUrl)} keeps no data across a restart (appendonly no, save ""): a restart would lose the outbox`,
    );
  }
  // While Redis cannot be written, failures are journaled locally rather than waiting on it.
  const outbox = new FallbackOutbox(redisOutbox, await FileOutbox.open({ path: config.outboxPath }), {
    logger,
    breaker: options.mirror?.breaker,
  });
  closers.push(() => outbox.close());
  return outbox;
}

/**
 * The async mirror's write-ahead log, unless turned off; acknowledged writes a stopped process
 * had not mirrored are moved to the outbox for replay as it opens.
 */
export async function openIntentLog(
  options: DualWriteRuntimeOptions,
  config: DualWriteConfig,
  outbox: Outbox,
  logger: Pick<Console, 'warn'>,
  closers: Closers,
): Promise<IntentLog | undefined> {
  if (options.intentLog === false) return undefined;
  // Next to a file outbox, so runtimes in folders of their own never share one.
  const path =
    options.intentLog?.path ??
    config.intentLogPath ??
    (outbox instanceof FileOutbox ? join(dirname(outbox.path), 'intents.jsonl') : undefined);
  const { log, recovered } = await IntentLog.open(outbox, { path });
  closers.push(() => log.close());
  if (recovered > 0)
    logger.warn(
      `dualwrite: ${recovered} acknowledged async mirror writes of a process that stopped before mirroring them were moved to the outbox for replay`,
    );
  return log;
}
