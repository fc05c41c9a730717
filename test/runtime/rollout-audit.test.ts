import { afterEach, describe, expect, it } from 'vitest';
import { AuditLog } from '../../src/postgres/runtime-state/audit-log.js';
import { openPglite } from '../support/pglite.js';
import type { EffectiveFlags } from '../../src/ports/flags.js';
import { RolloutAudit } from '../../src/runtime/rollout-audit.js';
import { eventually } from '../support/eventually.js';
import { FaultySql } from '../support/faulty-sql.js';

const flags = (stage: EffectiveFlags['stage']): EffectiveFlags => ({
  stage,
  readPercent: 0,
  rolloutGroup: 'g',
  source: 'file',
});
const OPERATOR = { principal: { uid: 'ops', username: 'ops', type: 'user' as const }, reason: 'why' };

/** Audit entries are written in order, kept while PostgreSQL does not take them, and never stop being written. */
describe('RolloutAudit', () => {
  const cleanups: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  async function open() {
    const pglite = await openPglite();
    cleanups.push(() => pglite.close());
    const db = new FaultySql(pglite);
    const warnings: string[] = [];
    const audit = new RolloutAudit(
      new AuditLog(db),
      { warn: (line: string) => void warnings.push(line) },
      { retryMs: 5 },
    );
    cleanups.push(() => audit.close());
    return { db, audit, log: new AuditLog(pglite), warnings };
  }

  it('goes on writing after retries found nothing to write', async () => {
    const { audit, log } = await open();
    // Time passing is the point: ten retry ticks (every 5 ms) find nothing pending.
    await new Promise((resolve) => setTimeout(resolve, 50));
    await audit.stageChanged(flags('dual-write'), flags('postgres-primary'), OPERATOR);
    await audit.stageChanged(flags('postgres-primary'), flags('dual-write'), OPERATOR);
    expect((await log.list()).map((event) => [event.from, event.to])).toEqual([
      ['postgres-primary', 'dual-write'],
      ['dual-write', 'postgres-primary'],
    ]);
  });

  it('keeps what PostgreSQL does not take, with the time it happened, and writes it once PostgreSQL answers', async () => {
    const { db, audit, log, warnings } = await open();
    db.down = true;
    await audit.stageChanged(flags('dual-write'), flags('read-shift'), OPERATOR);
    await audit.stageChanged(flags('read-shift'), flags('dual-write'), OPERATOR);
    expect(audit.waiting).toBe(2);
    expect(warnings).toHaveLength(1);
    const resumedAt = Date.now();
    db.down = false;
    await eventually(() => expect(audit.waiting).toBe(0));
    // Each keeps the time it happened, decided before the outage ended (ties are ordered by id).
    const events = await log.list();
    expect(events.map((event) => event.to).sort()).toEqual(['dual-write', 'read-shift 0%']);
    expect(events.every((event) => Date.parse(event.occurredAt) <= resumedAt)).toBe(true);
  });
});
