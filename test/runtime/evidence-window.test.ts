import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { DualWriteMetrics } from '../../src/dualwrite/metrics.js';
import { EvidenceWindow } from '../../src/runtime/evidence-window.js';

const OUTBOX = { outbox: { depth: 0, oldestAgeSeconds: 0 } };

/** The gate's figures come from the runtime's own metrics, counted over the window only. */
describe('EvidenceWindow', () => {
  function setup() {
    let now = 0;
    const metrics = new DualWriteMetrics(new Registry());
    const window = new EvidenceWindow({ registry: metrics.registry, windowMs: 60_000, now: () => now });
    return { metrics, window, advance: (ms: number) => void (now += ms) };
  }

  it('counts PostgreSQL calls and mirror writes, their failures, and shadow comparisons made inside the window', async () => {
    const { metrics, window, advance } = setup();
    const postgres = metrics.call('graph', 'upsertProject', 'postgres');
    for (let n = 0; n < 50; n++) postgres.record(0.002, false);
    metrics.shadowCompares.inc({ store: 'graph', operation: 'getProject', outcome: 'mismatch' }, 7);
    await window.sample();

    // Older than the window once 90 s have passed: only what follows counts.
    advance(90_000);
    await window.sample();
    for (let n = 0; n < 98; n++) postgres.record(0.002, true);
    postgres.record(0.002, false);
    const mirrored = (outcome: 'applied' | 'failed' | 'unreachable' | 'rejected' | 'behind_journal', n: number) =>
      (metrics.mirrorWrites.labels({ store: 'graph', target: 'postgres', outcome }).value += n);
    mirrored('applied', 50);
    mirrored('failed', 1);
    mirrored('unreachable', 2);
    // Refused by PostgreSQL for their data: failed calls, and named as such.
    mirrored('rejected', 4);
    // Journaled behind earlier writes: PostgreSQL was not tried, so they do not count.
    mirrored('behind_journal', 7);
    metrics.shadowCompares.inc({ store: 'graph', operation: 'getProject', outcome: 'match' }, 999);
    metrics.shadowCompares.inc({ store: 'graph', operation: 'getProject', outcome: 'mismatch' });
    metrics.shadowCompares.inc({ store: 'graph', operation: 'getProject', outcome: 'skipped_pending' }, 5);
    advance(30_000);

    const evidence = await window.evidence(OUTBOX);
    expect(evidence.postgresCalls).toEqual({ total: 99 + 57, failed: 1 + 7, rejected: 4 });
    expect(evidence.shadow).toEqual({ compared: 1000, mismatched: 1 });
  });

  it("computes each side's p95 from the latency histogram, interpolated in its bucket", async () => {
    const { metrics, window, advance } = setup();
    await window.sample();
    const memory = metrics.call('graph', 'getProject', 'memory');
    const postgres = metrics.call('graph', 'getProject', 'postgres');
    // 100 memory calls under 10 µs; PostgreSQL: 90 between 1 and 2.5 ms, 10 between 10 and 25 ms.
    for (let n = 0; n < 100; n++) memory.record(0.000005, true);
    for (let n = 0; n < 90; n++) postgres.record(0.002, true);
    for (let n = 0; n < 10; n++) postgres.record(0.02, true);
    advance(1000);
    const { p95Ms } = await window.evidence(OUTBOX);
    expect(p95Ms.memory).toBeCloseTo(0.0095, 6);
    // Rank 95 of 100 falls half way through the (10 ms, 25 ms] bucket.
    expect(p95Ms.postgres).toBeCloseTo(17.5, 6);
  });

  it('has no latency figure for a side without calls', async () => {
    const { window } = setup();
    expect((await window.evidence(OUTBOX)).p95Ms).toEqual({});
  });
});
