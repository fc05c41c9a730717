import { Redis } from 'ioredis';
import { errorText } from '../domain/error-text.js';
import { redactUrl } from '../postgres/redact.js';
import type { Closers } from './closers.js';

/**
 * The runtime's Redis client, connected on first use (the outbox and the verifier lock share
 * it) and closed with the runtime. A Redis that cannot be reached fails that first use with an
 * error naming REDIS_URL, its password redacted.
 */
export function lazyRedis(
  url: string | undefined,
  logger: Pick<Console, 'warn'>,
  closers: Closers,
): () => Promise<Redis> {
  let connected: Promise<Redis> | undefined;
  return () => {
    if (url === undefined) return Promise.reject(new Error('dualwrite: REDIS_URL is not set'));
    return (connected ??= connect(url, logger, closers));
  };
}

async function connect(url: string, logger: Pick<Console, 'warn'>, closers: Closers): Promise<Redis> {
  const where = redactUrl(url);
  const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 2 });
  // Every error through the logger (never ioredis' "Unhandled error event"), at most one line a minute.
  let lastLogged = 0;
  client.on('error', (error: unknown) => {
    if (Date.now() - lastLogged < 60_000) return;
    lastLogged = Date.now();
    logger.warn(`dualwrite: Redis at ${where}: ${errorText(error)}`);
  });
  closers.push(async () => void client.disconnect());
  try {
    await client.connect();
  } catch (error) {
    throw new Error(`dualwrite: cannot reach Redis at ${where} (REDIS_URL): ${errorText(error)}`, { cause: error });
  }
  return client;
}
