import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { availableBackends, useBackend } from '../support/backends.js';
import { useTestRuntimes } from '../support/runtimes.js';

/**
 * Flags survive a restart: the flags in force are saved, and a process that starts with no
 * flag source answering (Unleash down, no bootstrap) goes on with them instead of falling
 * back to memory-only; one that last ran with PostgreSQL authoritative never lets memory,
 * new in this process, be authoritative before it is resynced.
 */

for (const factory of availableBackends(['pglite'])) {
  describe(`last known flags on ${factory.name}`, () => {
    const backend = useBackend(factory);
    const runtimes = useTestRuntimes();
    const folder = async () => {
      const dir = await mkdtemp(join(tmpdir(), 'dw-last-flags-'));
      runtimes.defer(() => rm(dir, { recursive: true, force: true }));
      return join(dir, 'last-flags.json');
    };

    it('saves the flags in force, and a restart with Unleash unreachable goes on with them, saying so', async () => {
      const path = await folder();
      const first = await runtimes.open({
        db: backend.current.db!,
        env: { DUAL_WRITE_MODE: 'dual-write', DUALWRITE_LAST_FLAGS_PATH: path },
      });
      expect(first.rt.stage.current.stage).toBe('dual-write');
      await first.rt.close();
      expect(JSON.parse(await readFile(path, 'utf8'))).toMatchObject({ stage: 'dual-write', readPercent: 0 });

      const restarted = await runtimes.open({
        db: backend.current.db!,
        env: { UNLEASH_URL: 'http://127.0.0.1:1/api/', DUALWRITE_LAST_FLAGS_PATH: path },
      });
      expect(restarted.rt.stage.current).toMatchObject({ stage: 'dual-write', source: 'last-known' });
      expect(
        restarted.logs.filter((line) => line.includes('going on with the flags the last process ran with (dual-write')),
      ).toHaveLength(1);
      const written = await restarted.rt.graph.upsertProject({ ecosystem: 'npm', name: 'still-mirrored' });
      await restarted.rt.mirror.drain();
      expect(await restarted.rt.postgres.graph.getProject(written)).toEqual(written);
    });

    it('after a run with PostgreSQL authoritative, a restart asked for a memory stage stays postgres-primary and warns', async () => {
      const path = await folder();
      await writeFile(
        path,
        JSON.stringify({
          stage: 'postgres-primary',
          readPercent: 100,
          rolloutGroup: 'dualwrite.read-from-postgres',
          savedAt: '2026-12-01T00:00:00.000Z',
        }),
      );
      const restarted = await runtimes.open({
        db: backend.current.db!,
        env: { DUAL_WRITE_MODE: 'memory-only', DUALWRITE_LAST_FLAGS_PATH: path },
      });
      expect(restarted.rt.stage.current).toMatchObject({
        stage: 'postgres-primary',
        refused: 'memory-stale-after-postgres-only',
      });
      expect(restarted.logs.some((line) => line.startsWith('warn') && line.includes('memory missed the writes'))).toBe(
        true,
      );
    });

    it('starts memory-only on a first start, with no flags anywhere and nothing saved', async () => {
      const path = await folder();
      const fresh = await runtimes.open({ db: backend.current.db!, env: { DUALWRITE_LAST_FLAGS_PATH: path } });
      expect(fresh.rt.stage.current).toMatchObject({ stage: 'memory-only', source: 'default' });
    });
  });
}
