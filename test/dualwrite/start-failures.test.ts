import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { FlagState } from '../../flags/flag-state.js';
import { ManualFlagSource } from '../../flags/manual-flags.js';
import { openDualWrite } from '../../src/runtime/open-dual-write.js';
import { openPglite } from '../support/pglite.js';

/** A dependency that cannot be reached at start fails openDualWrite with an error naming it, and nothing stays open. */

describe('openDualWrite with a dependency out of reach', () => {
  const cleanups: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  it('names Redis (with its password hidden) and releases what it had opened', async () => {
    const db = await openPglite();
    cleanups.push(() => db.close());
    const dir = await mkdtemp(join(tmpdir(), 'dw-start-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const warnings: string[] = [];
    const error = await openDualWrite({
      db,
      env: { REDIS_URL: 'redis://:redis-secret@127.0.0.1:1', DUALWRITE_INTENT_LOG_PATH: join(dir, 'intents.jsonl') },
      flags: new FlagState([new ManualFlagSource({ stage: 'dual-write' })]),
      verifier: { enabled: false },
      logger: {
        info() {},
        warn: (line: string) => void warnings.push(line),
        error: (line: string) => void warnings.push(line),
      },
    }).then(
      () => undefined,
      (caught: unknown) => caught as Error,
    );

    expect(error).toBeInstanceOf(Error);
    expect(error!.message).toMatch(
      /^dualwrite: cannot reach Redis at redis:\/\/:\*\*\*@127\.0\.0\.1:1 \(REDIS_URL\): /,
    );
    expect(error!.message).not.toContain('redis-secret');
    for (const line of warnings) expect(line).not.toContain('redis-secret');
    // The runtime lease taken before Redis was tried is given back: another process may start.
    expect(await db.query('SELECT holder FROM dualwrite_runtime_lease')).toEqual([]);
  });

  const refusedBy: [string, string, RegExp][] = [
    ['nothing listening', 'postgres://app:pg-secret@127.0.0.1:1/app', /ECONNREFUSED/],
  ];
  if (process.env.DATABASE_URL) {
    const url = new URL(process.env.DATABASE_URL);
    url.username = 'no_such_role_dw';
    url.password = 'pg-secret';
    refusedBy.push(['a server that refuses the login', url.toString(), /no_such_role_dw/]);
  }
  it.each(refusedBy)(
    'names PostgreSQL (with its password hidden) when it cannot be reached: %s',
    async (_what, databaseUrl, cause) => {
      const error = await openDualWrite({
        env: { DATABASE_URL: databaseUrl, POSTGRES_CONNECT_TIMEOUT_MS: '2000' },
        flags: new FlagState([new ManualFlagSource({ stage: 'dual-write' })]),
        verifier: { enabled: false },
        logger: { info() {}, warn() {}, error() {} },
      }).then(
        () => undefined,
        (caught: unknown) => caught as Error,
      );
      expect(error).toBeInstanceOf(Error);
      expect(error!.message).toMatch(
        /^dualwrite: cannot reach PostgreSQL at postgres:\/\/[^:]+:\*\*\*@[^ ]+ \(DATABASE_URL\): /,
      );
      expect(error!.message).toMatch(cause);
      expect(error!.message).not.toContain('pg-secret');
    },
  );
});
