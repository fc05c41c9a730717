import { describe, expect, it } from 'vitest';
import { AuditLog, diffOf, PROCESS_PRINCIPAL, type Principal } from '../../src/postgres/runtime-state/audit-log.js';
import { availableBackends, useBackend } from '../support/backends.js';
import { SequenceIds } from '../support/clock.js';

const OPERATOR: Principal = { uid: 'alice', username: 'alice', type: 'user' };

/** The audit trail is append-only in the database itself; only the retention purge removes rows, and it is recorded. */
for (const factory of availableBackends(['pglite', 'postgres'])) {
  describe(`audit log on ${factory.name}`, () => {
    const backend = useBackend(factory);
    const at = (iso: string) => () => new Date(iso);

    it('records events with their id and time decided before the insert, and lists the newest first', async () => {
      const db = backend.current.db!;
      const ids = new SequenceIds();
      const first = await new AuditLog(db, { clock: at('2026-11-01T10:00:00.000Z'), ids: () => ids.uuid() }).record({
        action: 'stage.change',
        resourceType: 'stage',
        resourceId: 'dualwrite',
        principal: OPERATOR,
        from: 'dual-write',
        to: 'read-shift',
        reason: 'canary at 10%',
        requestId: 'req-1',
        before: { stage: 'dual-write', readPercent: 0 },
        after: { stage: 'read-shift', readPercent: 10 },
      });
      const second = await new AuditLog(db, { clock: at('2026-11-01T11:00:00.000Z'), ids: () => ids.uuid() }).record({
        action: 'verify.run',
        resourceType: 'verification',
        resourceId: 'run-1',
        principal: PROCESS_PRINCIPAL,
        data: { consistent: true },
      });
      const listed = (await new AuditLog(db).list()).filter((event) => [first.id, second.id].includes(event.id));
      expect(listed).toEqual([second, first]);
      expect(first.diff).toEqual({
        oldObject: '{"stage":"dual-write","readPercent":0}',
        newObject: '{"stage":"read-shift","readPercent":10}',
        oldObjectTruncated: false,
        newObjectTruncated: false,
      });
      expect((await new AuditLog(db).list({ action: 'verify.run' })).filter((event) => event.id === second.id)).toEqual(
        [second],
      );
      expect((await new AuditLog(db).list({ action: 'stage.change' })).some((event) => event.id === second.id)).toBe(
        false,
      );
    });

    it.each([
      ['UPDATE', "UPDATE dualwrite_audit_events SET reason = 'rewritten'"],
      ['DELETE', 'DELETE FROM dualwrite_audit_events'],
      ['TRUNCATE', 'TRUNCATE dualwrite_audit_events'],
    ])('refuses %s in the database itself', async (operation, sql) => {
      const db = backend.current.db!;
      const event = await new AuditLog(db).record({
        action: 'backfill',
        resourceType: 'backfill',
        resourceId: 'graph',
        principal: OPERATOR,
      });
      const count = async () =>
        Number((await db.query<{ n: string }>('SELECT count(*) AS n FROM dualwrite_audit_events'))[0]!.n);
      const before = await count();
      await expect(db.query(sql)).rejects.toThrow(`dualwrite_audit_events is append-only: ${operation} refused`);
      expect(await count()).toBe(before);
      expect((await new AuditLog(db).list({ limit: 1000 })).find((listed) => listed.id === event.id)).toEqual(event);
    });

    it('purges only events older than the retention, records the purge, and cannot be pointed at recent rows', async () => {
      const db = backend.current.db!;
      const now = Date.now();
      const day = 86_400_000;
      const old = await new AuditLog(db, { clock: () => new Date(now - 100 * day) }).record({
        action: 'repair',
        resourceType: 'verification',
        resourceId: 'old',
        principal: OPERATOR,
      });
      const recent = await new AuditLog(db, { clock: () => new Date(now - 2 * day) }).record({
        action: 'repair',
        resourceType: 'verification',
        resourceId: 'recent',
        principal: OPERATOR,
      });
      // A purge dated a year ahead still cuts at now minus the retention.
      expect(await new AuditLog(db, { clock: () => new Date(now + 365 * day) }).purge(90, OPERATOR, 'retention')).toBe(
        1,
      );
      const left = await new AuditLog(db).list({ limit: 1000 });
      expect(left.find((event) => event.action === 'audit.purge')).toMatchObject({
        principal: OPERATOR,
        reason: 'retention',
        data: { days: 90, removed: 1 },
      });
      expect(left.some((event) => event.id === old.id)).toBe(false);
      expect(left.some((event) => event.id === recent.id)).toBe(true);
      await expect(new AuditLog(db).purge(0, OPERATOR, 'everything')).rejects.toThrow(
        /days: the retention purge keeps at least the last day/,
      );
    });
  });
}

describe('diffOf', () => {
  it('cuts the largest fields of an object over the limit, keeping its shape and listing them', () => {
    const big = { id: 'x', notes: 'n'.repeat(100_000), blob: { data: 'd'.repeat(50_000) }, small: 1 };
    const diff = diffOf(undefined, big, 65536);
    expect(diff.newObjectTruncated).toBe(true);
    expect(diff.truncatedFields).toEqual(['notes']);
    expect(Buffer.byteLength(diff.newObject!)).toBeLessThanOrEqual(65536);
    const kept = JSON.parse(diff.newObject!) as typeof big;
    expect(kept).toMatchObject({ id: 'x', small: 1, blob: big.blob });
    expect(kept.notes).toMatch(/…\[truncated\]$/);

    const both = diffOf(big, { ...big, blob: { data: 'e'.repeat(70_000) } }, 65536);
    expect(both.truncatedFields).toEqual(['notes', 'blob']);
  });

  it('leaves objects within the limit as they are', () => {
    expect(diffOf({ a: 1 }, null, 65536)).toEqual({
      oldObject: '{"a":1}',
      newObject: 'null',
      oldObjectTruncated: false,
      newObjectTruncated: false,
    });
  });
});
