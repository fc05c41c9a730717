import { describe, expect, it } from 'vitest';
import type { OutboxEntry } from '../../src/dualwrite/outbox.js';
import { journalItemOf } from '../../src/dualwrite/outbox.js';
import { FaultySql } from '../support/faulty-sql.js';
import { availableBackends, useBackend } from '../support/backends.js';
import { useTestRuntimes } from '../support/runtimes.js';

/**
 * A Redis append that timed out but landed, or was sent again after a reconnect, leaves a
 * second copy of an outbox entry. Replaying that copy after its key had settled would put
 * back an older state over a newer write that went straight to PostgreSQL: copies are
 * recognised by the mirror write's identity (opId) and acknowledged unapplied.
 */
for (const factory of availableBackends(['pglite'])) {
  describe(`duplicate outbox entries on ${factory.name}`, () => {
    const backend = useBackend(factory);
    const runtimes = useTestRuntimes();

    it('never lets a second copy of an old entry overwrite a newer write', async () => {
      const db = new FaultySql(backend.current.db!);
      const { rt } = await runtimes.open({ db, replayer: { batchSize: 1 } });
      await rt.replayer.stop();
      const K = { ecosystem: 'npm', name: 'k' };

      db.down = true;
      await rt.graph.upsertProject({ ...K, description: 'v1' });
      const [journaled] = (await rt.outbox.peek(10)) as OutboxEntry[];
      expect(journaled!.opId).toEqual(expect.any(String));
      // The copy the mirror never heard of, journaled after it (as a timed-out append that landed late would be).
      const { op, reason } = journalItemOf(journaled!);
      await rt.outbox.append(op, reason);
      expect(rt.outbox.stats().depth).toBe(2);

      db.down = false;
      expect(await rt.replayer.replayOnce()).toMatchObject({ replayed: 1 });
      expect(rt.mirror.isPending('project:npm/k')).toBe(false);
      // The key is settled: this write goes straight to PostgreSQL.
      const v2 = await rt.graph.upsertProject({ ...K, description: 'v2' });
      expect(await rt.postgres.graph.getProject(K)).toEqual(v2);

      // The copy is acknowledged without being applied.
      expect(await rt.replayer.replayOnce()).toMatchObject({ replayed: 0 });
      expect(rt.outbox.stats().depth).toBe(0);
      expect(await rt.postgres.graph.getProject(K)).toEqual(v2);
    });

    it("applies a key's entry once when both copies come in one batch", async () => {
      const db = new FaultySql(backend.current.db!);
      const { rt } = await runtimes.open({ db });
      await rt.replayer.stop();
      db.down = true;
      const v1 = await rt.graph.upsertProject({ ecosystem: 'npm', name: 'j', description: 'v1' });
      const [journaled] = (await rt.outbox.peek(10)) as OutboxEntry[];
      const { op, reason } = journalItemOf(journaled!);
      await rt.outbox.append(op, reason);
      db.down = false;
      expect(await rt.replayer.replayOnce()).toMatchObject({ replayed: 1 });
      expect(rt.outbox.stats().depth).toBe(0);
      expect(rt.mirror.journaledFor('postgres')).toBe(0);
      expect(await rt.postgres.graph.getProject(v1)).toEqual(v1);
    });
  });
}
