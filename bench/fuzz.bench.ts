import fc from 'fast-check';
import { performance } from 'node:perf_hooks';
import type { MirrorMode } from '../src/dualwrite/mirror.js';
import { BACKENDS } from '../test/support/backends.js';
import {
  CI_RUNS,
  MAX_STEPS,
  programArbitrary,
  runProgram,
  type ProgramStats,
} from '../test/support/transition-model.js';
import type { BenchResult } from './dualwrite.bench.js';

/**
 * The model-based transition test (test/dualwrite/transition-model.test.ts) at ten times
 * its CI size, on PGlite and (with DATABASE_URL) a real PostgreSQL, in both mirror modes.
 * Throws on the first divergence, with fast-check's shrunk counterexample and seed.
 */
export async function benchFuzz(runs = CI_RUNS * 10): Promise<BenchResult> {
  const rows: string[][] = [];
  const summary: Record<string, number> = {};
  for (const factory of BACKENDS.filter((candidate) => candidate.name !== 'memory' && !candidate.unavailable)) {
    const backend = await factory.open();
    try {
      for (const mode of ['sync', 'async'] as MirrorMode[]) {
        const totals = { programs: 0, calls: 0, flips: 0, outages: 0, transitions: 0, refusals: 0, maxPauseMs: 0 };
        const started = performance.now();
        await fc.assert(
          fc.asyncProperty(programArbitrary(MAX_STEPS), async (program) => {
            await backend.reset();
            const stats: ProgramStats = await runProgram(backend.db!, mode, program);
            totals.programs++;
            for (const key of ['calls', 'flips', 'outages', 'transitions', 'refusals'] as const)
              totals[key] += stats[key];
            totals.maxPauseMs = Math.max(totals.maxPauseMs, stats.maxPauseMs);
            if (totals.programs % 20 === 0)
              process.stdout.write(`  ${factory.name} ${mode}: ${totals.programs}/${runs} programs\n`);
          }),
          { numRuns: runs },
        );
        const seconds = (performance.now() - started) / 1000;
        rows.push([
          factory.name,
          mode,
          String(totals.programs),
          String(totals.calls),
          String(totals.flips),
          String(totals.transitions),
          String(totals.refusals),
          String(totals.outages),
          totals.maxPauseMs.toFixed(1),
          seconds.toFixed(1),
        ]);
        summary[`${factory.name}.${mode}.programs`] = totals.programs;
        summary[`${factory.name}.${mode}.transitions`] = totals.transitions;
        summary[`${factory.name}.${mode}.maxPauseMs`] = totals.maxPauseMs;
      }
    } finally {
      await backend.close();
    }
  }
  return {
    name: `model-based transition fuzz: ${runs} programs of up to ${MAX_STEPS} steps per backend and mirror mode, no divergence`,
    headers: [
      'backend',
      'mirror',
      'programs',
      'calls',
      'flips',
      'transitions',
      'refused',
      'outages',
      'max pause ms',
      'seconds',
    ],
    rows,
    summary,
  };
}
