import { describe, expect, it } from 'vitest';
import { readServerHealth } from '../../src/postgres/operations/server-health.js';
import { availableBackends, useBackend } from '../support/backends.js';

/** What PostgreSQL says about itself (db health, the status page, the alert metrics), on each engine. */
for (const factory of availableBackends(['pglite', 'postgres'])) {
  describe(`readServerHealth on ${factory.name}`, () => {
    const backend = useBackend(factory);

    it('reports the version, the database size and the connections against max_connections', async () => {
      const health = await readServerHealth(backend.current.db!);
      expect(health.version).toMatch(/^\d+(\.\d+)?/);
      expect(health.databaseBytes).toBeGreaterThan(1_000_000);
      expect(health.connections.used).toBeGreaterThanOrEqual(1);
      expect(health.connections.max).toBeGreaterThanOrEqual(health.connections.used);
      expect(health.replicas).toEqual([]);
    });

    it(
      factory.name === 'postgres'
        ? 'sees the data disk of a server on this machine'
        : 'sees no disk of an embedded database',
      async () => {
        const { disk } = await readServerHealth(backend.current.db!);
        if (factory.name === 'pglite') expect(disk).toBeUndefined();
        else {
          expect(disk!.totalBytes).toBeGreaterThan(disk!.freeBytes);
          expect(disk!.freeBytes).toBeGreaterThan(0);
        }
      },
    );
  });
}
