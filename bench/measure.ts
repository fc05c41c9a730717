import { performance } from 'node:perf_hooks';

export interface Rate {
  readonly operations: number;
  readonly seconds: number;
  readonly perSecond: number;
}

/** Runs `work` (which performs `operations` operations) and returns its rate. */
export async function rate(operations: number, work: () => Promise<void>): Promise<Rate> {
  const start = performance.now();
  await work();
  const seconds = (performance.now() - start) / 1000;
  return { operations, seconds, perSecond: operations / seconds };
}

/** The median rate of `rounds` runs, alternating candidates so machine noise hits all alike. */
export async function compareRates(
  rounds: number,
  candidates: Record<string, () => Promise<Rate>>,
): Promise<Record<string, Rate>> {
  const samples: Record<string, Rate[]> = Object.fromEntries(Object.keys(candidates).map((name) => [name, []]));
  for (let round = 0; round < rounds; round++) {
    for (const [name, run] of Object.entries(candidates)) samples[name]!.push(await run());
  }
  return Object.fromEntries(
    Object.entries(samples).map(([name, runs]) => [
      name,
      runs.sort((a, b) => a.perSecond - b.perSecond)[Math.floor(runs.length / 2)]!,
    ]),
  );
}

/** Runs `total` calls of `call` with at most `concurrency` in flight. */
export async function withConcurrency(
  total: number,
  concurrency: number,
  call: (index: number) => Promise<unknown>,
): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, total) }, async () => {
      while (next < total) await call(next++);
    }),
  );
}

export function format(perSecond: number): string {
  return Math.round(perSecond).toLocaleString('en-US');
}

/** The value below which a fraction `p` (0..1) of `values` lie (nearest rank); 0 for none. */
export function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? 0;
}
