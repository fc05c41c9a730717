import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Contributor } from '../../src/stores/graph/graph-model.js';
import { GRAPH_ENTITIES } from '../../src/stores/graph/graph-records.js';
import { PostgresGraphStore } from '../../src/stores/graph/postgres-graph-store.js';
import { GRAPH_DEFINITION } from '../../src/stores/graph/graph-store-definition.js';
import { availableBackends, useBackend } from '../support/backends.js';

/**
 * The backfill's bulk insert: COPY through a staging table on PostgreSQL, unnest on PGlite.
 * Either way every record arrives exactly as given (text with COPY's delimiters, unicode,
 * NULL apart from empty text), rows already present are left alone, and several batches
 * may share one transaction.
 */

const contributorId = (n: number) => `30000000-0000-4000-8000-${n.toString(16).padStart(12, '0')}`;
const T0 = '2026-01-01T00:00:00.000Z';

const contributor = (
  n: number,
  name: string,
  email: string | null,
  metadata: Contributor['metadata'] = {},
): Contributor => ({
  id: contributorId(n),
  name,
  email,
  githubUsername: null,
  walletAddress: null,
  metadata,
  createdAt: T0,
  updatedAt: T0,
});

const awkwardText = fc
  .string({ unit: 'grapheme', minLength: 1, maxLength: 30 })
  .map((text) => text.replaceAll('\u0000', ''))
  .filter((text) => text.trim() !== '');

for (const factory of availableBackends(['pglite', 'postgres'])) {
  describe(`bulkInsertSkippingExisting on ${factory.name}`, () => {
    const backend = useBackend(factory);
    const entity = GRAPH_DEFINITION.postgres.contributors;

    it('stores any text exactly, keeps NULL apart from empty text, and never overwrites a row it finds', async () => {
      const db = backend.current.db!;
      const names = fc.sample(awkwardText, { seed: 5, numRuns: 200 });
      names.push('tab\there', 'line\nbreak', 'cr\rhere', 'back\\slash', '\\N', '\\.', 'quote "q" \'s\'');
      const records = names.map((name, n) =>
        GRAPH_ENTITIES.contributors.normalize(
          contributor(n, name, n % 3 === 0 ? null : n % 3 === 1 ? name : '', {
            text: name,
            n,
            nested: { [name]: [name] },
          }),
        ),
      );
      const store = new PostgresGraphStore(db);
      const existing = GRAPH_ENTITIES.contributors.normalize(contributor(0, 'already here', 'kept@example.com'));
      await store.putRecord('contributors', existing);

      const outcome = await db.transaction(async (tx) => {
        const first = await entity.bulkInsertSkippingExisting(tx, records.slice(0, 100));
        const second = await entity.bulkInsertSkippingExisting(tx, records.slice(100));
        return { first, second };
      });

      expect(outcome.first).toEqual({ inserted: 99, resolved: 100 });
      expect(outcome.second).toEqual({ inserted: records.length - 100, resolved: records.length - 100 });
      const stored = await store.scanRecords('contributors', { limit: 10_000 });
      expect(stored).toEqual([existing, ...records.slice(1)]);
    });

    it('a batch that fails leaves nothing behind, and the next transaction starts clean', async () => {
      const db = backend.current.db!;
      const good = GRAPH_ENTITIES.contributors.normalize(contributor(1, 'good', null));
      const bad = { ...GRAPH_ENTITIES.contributors.normalize(contributor(2, 'bad', null)), name: 'x'.repeat(300) };
      await expect(db.transaction((tx) => entity.bulkInsertSkippingExisting(tx, [good, bad]))).rejects.toThrow();
      expect(await new PostgresGraphStore(db).scanRecords('contributors', { limit: 10_000 })).toEqual([]);
      expect(await db.transaction((tx) => entity.bulkInsertSkippingExisting(tx, [good]))).toEqual({
        inserted: 1,
        resolved: 1,
      });
      expect(await new PostgresGraphStore(db).scanRecords('contributors', { limit: 10_000 })).toEqual([good]);
    });
  });
}
