import { describe, expect, it } from 'vitest';
import { LeaseHeldError, RuntimeLease } from '../../src/postgres/runtime-state/runtime-lease.js';
import { availableBackends, useBackend } from '../support/backends.js';
import { useTestRuntimes } from '../support/runtimes.js';

/**
 * One runtime process per database: each keeps its own in-memory stores, so a second
 * process mirroring into the same database is refused at start with a clear error, and
 * takes over once the first has closed or its lease has run out after a crash.
 */

for (const factory of availableBackends(['pglite', 'postgres'])) {
  describe(`runtime lease on ${factory.name}`, () => {
    const backend = useBackend(factory);
    const runtimes = useTestRuntimes();

    it('refuses a second runtime on the same database, naming the holder, and lets it start once the first closed', async () => {
      const db = backend.current.db!;
      const first = await runtimes.open({ db, lease: { holder: 'api-1', waitMs: 0 } });
      await expect(runtimes.open({ db, lease: { holder: 'api-2', waitMs: 0 } })).rejects.toThrow(LeaseHeldError);
      await expect(runtimes.open({ db, lease: { holder: 'api-2', waitMs: 0 } })).rejects.toThrow(
        /another dualwrite process \(api-1, lease until .+\) runs on this database/,
      );

      await first.rt.close();
      const second = await runtimes.open({ db, lease: { holder: 'api-2', waitMs: 0 } });
      expect(await db.query<{ holder: string }>('SELECT holder FROM dualwrite_runtime_lease')).toEqual([
        { holder: 'api-2' },
      ]);
      await second.rt.close();
      expect(await db.query('SELECT holder FROM dualwrite_runtime_lease')).toEqual([]);
    });

    it('waits out the lease of a holder that died without releasing it, then takes it', async () => {
      const db = backend.current.db!;
      // The row a process killed with SIGKILL leaves: nobody renews it.
      await db.query(
        "INSERT INTO dualwrite_runtime_lease VALUES ('runtime', 'crashed', now(), now() + interval '300 milliseconds')",
      );
      const next = new RuntimeLease(db, { holder: 'next', ttlMs: 300, waitMs: 5000, retryMs: 50 });
      await next.acquire();
      expect(await db.query('SELECT holder FROM dualwrite_runtime_lease')).toEqual([{ holder: 'next' }]);
      await next.release();
    });

    it('renews its lease, so a live holder keeps it past its lifetime', async () => {
      const db = backend.current.db!;
      const live = new RuntimeLease(db, { holder: 'live', ttlMs: 150 });
      await live.acquire();
      const other = new RuntimeLease(db, { holder: 'other', ttlMs: 150, waitMs: 600, retryMs: 50 });
      await expect(other.acquire()).rejects.toThrow(/another dualwrite process \(live,/);
      await live.release();
    });
  });
}
