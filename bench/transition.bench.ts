import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { FlagState } from '../flags/flag-state.js';
import { ManualFlagSource } from '../flags/manual-flags.js';
import { FileOutbox } from '../src/dualwrite/file-outbox.js';
import type { MirrorMode } from '../src/dualwrite/mirror.js';
import { openDualWrite } from '../src/runtime/open-dual-write.js';
import type { Stage } from '../src/ports/stage.js';
import { withBenchSchema } from './bench-database.js';
import type { BenchResult } from './dualwrite.bench.js';
import { percentile } from './measure.js';

const WRITERS = 64;
const KEYS = 500;

/** How long the transition bench runs. */
export interface TransitionBenchSize {
  /** Stage transitions per mirror mode. Default 10. */
  readonly transitions: number;
  /** Steady writing before the first transition. Default 1500 ms. */
  readonly steadyMs: number;
  /** Steady writing after each transition. Default 300 ms. */
  readonly betweenMs: number;
}

/**
 * What a stage transition costs while the API writes: 64 callers upsert 500 projects
 * non-stop into a real PostgreSQL while the stage moves dual-write <-> postgres-primary
 * `transitions` times. Reported per mirror mode: how long new writes waited in each transition (the
 * barrier), and write latency in the steady state against the same writes during the
 * transitions, measured in the same run.
 */
export async function benchTransition(
  { transitions, steadyMs, betweenMs }: TransitionBenchSize = { transitions: 10, steadyMs: 1500, betweenMs: 300 },
): Promise<BenchResult | string> {
  if (!process.env.DATABASE_URL)
    return 'skipped transition bench: DATABASE_URL is not set (it needs a real PostgreSQL)';
  const dir = await mkdtemp(join(tmpdir(), 'dw-bench-'));
  const rows: string[][] = [];
  const summary: Record<string, number> = {};
  try {
    await withBenchSchema('dw_bench_transition', async (db) => {
      for (const mode of ['sync', 'async'] as MirrorMode[]) {
        await db.query('TRUNCATE projects CASCADE');
        const source = new ManualFlagSource({ stage: 'dual-write' });
        const outbox = await FileOutbox.open({ path: join(dir, `outbox-${mode}.jsonl`) });
        const rt = await openDualWrite({
          db,
          env: {},
          flags: new FlagState([source]),
          outbox,
          mirror: { mode },
          verifier: { enabled: false },
          logger: { info() {}, warn: console.warn, error: console.error },
        });
        const steady: number[] = [];
        const during: number[] = [];
        // Bumped when a transition starts and when it ends: a write that saw it change overlapped one.
        let phase = 0;
        let running = true;
        let counter = 0;
        const writers = Array.from({ length: WRITERS }, async () => {
          while (running) {
            const n = counter++;
            const startPhase = phase;
            const started = performance.now();
            await rt.graph.upsertProject({ ecosystem: 'npm', name: `k${n % KEYS}`, description: `v${n}` });
            (startPhase % 2 === 1 || phase !== startPhase ? during : steady).push(performance.now() - started);
          }
        });
        await new Promise((resolve) => setTimeout(resolve, steadyMs));
        const pauses: number[] = [];
        for (let i = 0; i < transitions; i++) {
          const stage: Stage = i % 2 === 0 ? 'postgres-primary' : 'dual-write';
          phase++;
          source.set({ stage });
          const state = await rt.stage.settled();
          phase++;
          if (state.refused || state.flags.stage !== stage)
            throw new Error(`transition to ${stage} refused: ${state.refused}`);
          pauses.push(state.lastPauseMs ?? 0);
          await new Promise((resolve) => setTimeout(resolve, betweenMs));
        }
        running = false;
        await Promise.all(writers);
        await rt.mirror.drain();
        await rt.close();
        await outbox.close();
        const steadyP99 = percentile(steady, 0.99);
        rows.push([
          mode,
          String(steady.length + during.length),
          percentile(pauses, 0.5).toFixed(1),
          Math.max(...pauses).toFixed(1),
          percentile(steady, 0.5).toFixed(2),
          steadyP99.toFixed(2),
          Math.max(...during).toFixed(2),
          (Math.max(...during) / steadyP99).toFixed(1),
        ]);
        summary[`${mode}.pauseMedianMs`] = percentile(pauses, 0.5);
        summary[`${mode}.pauseMaxMs`] = Math.max(...pauses);
        summary[`${mode}.steadyP99Ms`] = steadyP99;
        summary[`${mode}.duringMaxMs`] = Math.max(...during);
      }
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  return {
    name: `stage transition cost: ${WRITERS} writers on ${KEYS} keys, ${transitions} transitions dual-write <-> postgres-primary, real PostgreSQL`,
    headers: [
      'mirror',
      'writes',
      'writes paused ms (median)',
      'paused ms (max)',
      'steady p50 ms',
      'steady p99 ms',
      'max write ms in a transition',
      'max / steady p99',
    ],
    rows,
    summary,
  };
}
