import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { METRIC } from '../../src/dualwrite/metrics.js';
import { openPglite } from '../support/pglite.js';
import { openDualWrite } from '../../src/runtime/open-dual-write.js';
import { eventually } from '../support/eventually.js';
import { FaultySql } from '../support/faulty-sql.js';
import { metricSum } from '../support/metrics.js';

/**
 * The opt-in automatic retreat: in read-shift, a PostgreSQL that fails past the threshold
 * sends reads back to memory (dual-write) and makes the mirror journal instead of waiting;
 * the retreat is audited and counted, and going forward again goes through the evidence gate.
 */
describe('automatic retreat', () => {
  const cleanups: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  async function open(autoRetreat: boolean) {
    const dir = await mkdtemp(join(tmpdir(), 'dw-retreat-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const pglite = await openPglite();
    cleanups.push(() => pglite.close());
    const db = new FaultySql(pglite);
    const rt = await openDualWrite({
      db,
      env: {
        DUAL_WRITE_MODE: 'read-shift',
        READ_FROM_POSTGRES_PERCENT: '50',
        DUALWRITE_OUTBOX_PATH: join(dir, 'outbox.jsonl'),
        DUALWRITE_FLAGS_FILE: join(dir, 'flags.json'),
        DUALWRITE_LAST_FLAGS_PATH: join(dir, 'last.json'),
        DUALWRITE_VERIFY_INTERVAL_MS: '0',
      },
      lease: false,
      // Judged only when the test says (checkMs far away), on a window covering the whole test.
      autoRetreat: autoRetreat && { minCalls: 5, checkMs: 3_600_000, windowMs: 3_600_000 },
      logger: { info() {}, warn() {}, error() {} },
    });
    cleanups.push(() => rt.close());
    return { rt, db };
  }

  it('sends reads back to memory when PostgreSQL fails, audited and counted; forward again only through the gate', async () => {
    const { rt, db } = await open(true);
    for (let n = 0; n < 10; n++) await rt.graph.upsertProject({ ecosystem: 'npm', name: `ok-${n}` });
    // Healthy: nothing to retreat from.
    expect(await rt.autoRetreat!.check()).toBeUndefined();
    expect(rt.stage.current).toMatchObject({ stage: 'read-shift', readPercent: 50 });

    db.down = true;
    // Callers feel nothing (memory is authoritative), but PostgreSQL fails every mirror write.
    for (let n = 0; n < 10; n++) await rt.graph.upsertProject({ ecosystem: 'npm', name: `down-${n}` });
    const reason = await rt.autoRetreat!.check();
    expect(reason).toMatch(/^automatic retreat from read-shift 50%: 10 of 20 PostgreSQL calls failed \(over 5%\)/);
    expect((await rt.stage.settled()).flags).toMatchObject({ stage: 'dual-write', readPercent: 0 });
    expect(await metricSum(rt.metrics.registry, METRIC.retreats)).toBe(1);
    // The mirror journals at once rather than waiting on the failing target.
    expect(rt.mirror.breakerFor('postgres').state).not.toBe('closed');

    // Written while PostgreSQL is down, the retreat's audit entry waits and lands once it
    // answers (the audit retries every 5 s).
    db.down = false;
    const retreats = await eventually(async () => {
      const listed = await rt.audit.list({ action: 'stage.retreat' });
      expect(listed).toHaveLength(1);
      return listed;
    });
    expect(retreats[0]).toMatchObject({
      from: 'read-shift 50%',
      to: 'dual-write',
      principal: { uid: 'dualwrite', type: 'service' },
      reason,
    });

    // Nothing further to retreat from in dual-write; going forward is refused on this evidence.
    expect(await rt.autoRetreat!.check()).toBeUndefined();
    await expect(
      rt.setFlags({ stage: 'read-shift', readPercent: 50 }, { reason: 'try again', principal: 'ops' }),
    ).rejects.toMatchObject({ name: 'EvidenceRefusedError' });
  });

  it('is off unless asked for', async () => {
    const { rt } = await open(false);
    expect(rt.autoRetreat).toBeUndefined();
  });
});
