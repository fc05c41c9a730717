import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { SqlExecutor } from '../src/postgres/sql-executor.js';

/** At most one verifier runs at a time across replicas (seed 001's TaskLock). */
export interface VerifierLock {
  /** Runs `work` holding the lock, or returns undefined at once if another holder has it. */
  tryRun<T>(work: () => Promise<T>): Promise<T | undefined>;
}

const LOCK_NAME = 'dualwrite.verifier';

/**
 * A PostgreSQL advisory lock, held by a transaction left open on one pooled connection
 * for the length of the run (released however the run ends, even if the process dies).
 * PGlite is one connection in one process, so there a process-local flag serves.
 */
export class AdvisoryLock implements VerifierLock {
  constructor(private readonly db: SqlExecutor) {}

  async tryRun<T>(work: () => Promise<T>): Promise<T | undefined> {
    // Per database, not per lock object: two loops on one database must exclude each other.
    if (HELD.has(this.db)) return undefined;
    HELD.add(this.db);
    try {
      if (this.db.engine === 'pglite') return await work();
      return await this.db.transaction(async (tx) => {
        // Per schema: replicas share dualwrite's tables; deployments in other schemas of the database do not.
        const [row] = await tx.query<{ locked: boolean }>(
          "SELECT pg_try_advisory_xact_lock(hashtext($1 || ':' || current_schema())) AS locked",
          [LOCK_NAME],
        );
        return row!.locked ? work() : undefined;
      });
    } finally {
      HELD.delete(this.db);
    }
  }
}

const HELD = new WeakSet<SqlExecutor>();

/** A Redis lock (SET NX PX), renewed while the run lasts and released only by its holder. */
export class RedisLock implements VerifierLock {
  constructor(
    private readonly redis: Redis,
    private readonly ttlMs = 30_000,
    private readonly key = `${LOCK_NAME}:lock`,
  ) {}

  async tryRun<T>(work: () => Promise<T>): Promise<T | undefined> {
    const token = randomUUID();
    if ((await this.redis.set(this.key, token, 'PX', this.ttlMs, 'NX')) !== 'OK') return undefined;
    const renew = setInterval(() => {
      void this.redis
        .eval(
          "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end return 0",
          1,
          this.key,
          token,
          this.ttlMs,
        )
        .catch(() => {});
    }, this.ttlMs / 3);
    renew.unref();
    try {
      return await work();
    } finally {
      clearInterval(renew);
      await this.redis.eval(
        "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0",
        1,
        this.key,
        token,
      );
    }
  }
}
