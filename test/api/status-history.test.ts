import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import type { VerifyReport } from '../../verifier/verify.js';
import { StatusHistory } from '../../src/api/status-history.js';
import { nextStep } from '../../src/api/next-step.js';
import { DualWriteMetrics } from '../../src/dualwrite/metrics.js';

/** The status page's history: figures per interval from the runtime's own metrics, differences per verification, one hour kept. */
describe('StatusHistory', () => {
  function setup() {
    let now = Date.parse('2026-03-01T12:00:00Z');
    const metrics = new DualWriteMetrics(new Registry());
    const runtime = {
      metrics,
      outbox: { stats: () => ({ depth: 3, oldestAgeSeconds: 42 }) },
      mirror: { mode: 'sync' as const, depth: () => 5 },
      verifier: { lastReport: undefined as VerifyReport | undefined, lastRepairs: [], lastRepairRunId: undefined },
    };
    const history = new StatusHistory({ runtime, intervalMs: 10_000, now: () => now });
    return { metrics, runtime, history, advance: (ms: number) => void (now += ms), now: () => now };
  }

  it('counts latency quantiles, error rates and reads per second over the interval since the sample before', async () => {
    const { metrics, history, advance } = setup();
    const memory = metrics.call('graph', 'getProject', 'memory');
    const postgres = metrics.call('graph', 'getProject', 'postgres');
    for (let n = 0; n < 50; n++) postgres.record(0.02, false);
    await history.sample();
    expect(history.snapshot().samples).toEqual([]);

    // Only what follows the baseline counts: 100 memory calls (1 failed), 100 PostgreSQL calls in two buckets.
    for (let n = 0; n < 99; n++) memory.record(0.000005, true);
    memory.record(0.000005, false);
    for (let n = 0; n < 90; n++) postgres.record(0.002, true);
    for (let n = 0; n < 10; n++) postgres.record(0.02, true);
    metrics.readsFrom('graph', 'memory').value += 180;
    metrics.readsFrom('graph', 'postgres').value += 20;
    advance(10_000);
    await history.sample();

    const [sample] = history.snapshot().samples;
    expect(sample).toMatchObject({
      outbox: { depth: 3, oldestAgeSeconds: 42 },
      mirrorQueueDepth: 5,
      readsPerSecond: { memory: 18, postgres: 2, fallback: 0 },
    });
    expect(sample!.sides.memory.errorRate).toBeCloseTo(0.01, 9);
    expect(sample!.sides.postgres.errorRate).toBe(0);
    // Rank 50 of 100 lies in the (1 ms, 2.5 ms] bucket; rank 95 half way through (10 ms, 25 ms].
    expect(sample!.sides.postgres.p50Ms).toBeCloseTo(1 + 1.5 * (50 / 90), 6);
    expect(sample!.sides.postgres.p95Ms).toBeCloseTo(17.5, 6);
    expect(sample!.sides.postgres.p99Ms).toBeCloseTo(23.5, 6);
    expect(sample!.sides.memory.p99Ms).toBeLessThan(0.01);

    advance(10_000);
    await history.sample();
    expect(history.snapshot().samples[1]!.sides).toEqual({
      memory: { errorRate: null, p50Ms: null, p95Ms: null, p99Ms: null },
      postgres: { errorRate: null, p50Ms: null, p95Ms: null, p99Ms: null },
    });
  });

  it('notes each verification once, with its persistent differences per entity', async () => {
    const { runtime, history } = setup();
    const report = (startedAt: string, contributors: number): VerifyReport => ({
      startedAt,
      incomplete: [],
      seconds: 0.1,
      consistent: contributors === 0,
      differences: [],
      entities: [
        {
          store: 'graph',
          entity: 'projects',
          rowsMemory: 2,
          rowsPostgres: 2,
          rangesCompared: 1,
          rowsFetched: 0,
          differences: { missing_in_postgres: 0, missing_in_memory: 0, fields_differ: 0 },
          transient: 1,
          consistencyRatio: 1,
        },
        {
          store: 'graph',
          entity: 'contributors',
          rowsMemory: 4,
          rowsPostgres: 4,
          rangesCompared: 1,
          rowsFetched: 4,
          differences: { missing_in_postgres: contributors, missing_in_memory: 0, fields_differ: 1 },
          transient: 0,
          consistencyRatio: 0.5,
        },
      ],
    });
    runtime.verifier.lastReport = report('2026-03-01T11:59:00.000Z', 0);
    expect(history.snapshot().verifications).toEqual([
      { at: Date.parse('2026-03-01T11:59:00.000Z'), differences: { 'graph/projects': 0, 'graph/contributors': 1 } },
    ]);
    await history.sample();
    runtime.verifier.lastReport = report('2026-03-01T11:59:30.000Z', 2);
    await history.sample();
    expect(history.snapshot().verifications.map((point) => point.differences['graph/contributors'])).toEqual([1, 3]);
  });

  it('forgets samples and verifications older than an hour', async () => {
    const { runtime, history, advance, now } = setup();
    runtime.verifier.lastReport = {
      startedAt: new Date(now()).toISOString(),
      seconds: 0,
      consistent: true,
      entities: [],
      differences: [],
      incomplete: [],
    };
    await history.sample();
    for (let n = 0; n < 3; n++) {
      advance(10_000);
      await history.sample();
    }
    expect(history.snapshot()).toMatchObject({
      intervalMs: 10_000,
      samples: { length: 3 },
      verifications: { length: 1 },
    });
    advance(60 * 60_000 - 15_000);
    await history.sample();
    // Kept: the samples of the last hour (20 s and 30 s after the baseline) and the new one.
    expect(history.snapshot().samples.map((sample) => sample.at)).toEqual([
      now() - 3_595_000,
      now() - 3_585_000,
      now(),
    ]);
    expect(history.snapshot().verifications).toEqual([]);
  });
});

describe('nextStep', () => {
  it.each([
    [{ stage: 'memory-only', readPercent: 0 }, { stage: 'dual-write' }],
    [
      { stage: 'dual-write', readPercent: 0 },
      { stage: 'read-shift', readPercent: 10 },
    ],
    [
      { stage: 'read-shift', readPercent: 10 },
      { stage: 'read-shift', readPercent: 25 },
    ],
    [
      { stage: 'read-shift', readPercent: 30 },
      { stage: 'read-shift', readPercent: 50 },
    ],
    [
      { stage: 'read-shift', readPercent: 50 },
      { stage: 'read-shift', readPercent: 100 },
    ],
    [{ stage: 'read-shift', readPercent: 100 }, { stage: 'postgres-primary' }],
    [{ stage: 'postgres-primary', readPercent: 0 }, { stage: 'postgres-only' }],
    [{ stage: 'postgres-only', readPercent: 0 }, undefined],
  ] as const)('from %o is %o', (inForce, next) => {
    expect(nextStep(inForce)).toEqual(next);
  });
});
