import { writeFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { BENCHES } from './benches.js';
import { printResult, type BenchOptions, type BenchResult } from './dualwrite.bench.js';

/**
 * `npm run bench [-- name ...] [--small] [--long] [--out=DIR]`: runs the named benches (all
 * by default), prints tables, writes DIR/<name>.json per bench and DIR/latest.json (DIR:
 * bench/results). --small (or BENCH_SMALL=1) runs each at a size that finishes in seconds,
 * for CI; its figures mean nothing. A bench whose own checks fail prints FAIL and the run
 * exits 1 after writing its results.
 */
const flags = process.argv.slice(2).filter((arg) => arg.startsWith('-'));
const options: BenchOptions = {
  small: flags.includes('--small') || process.env.BENCH_SMALL === '1',
  long: flags.includes('--long'),
};
const out = flags.find((flag) => flag.startsWith('--out='))?.slice('--out='.length) || 'bench/results';
const unknownFlags = flags.filter((flag) => !['--small', '--long'].includes(flag) && !flag.startsWith('--out='));
const selected = process.argv.slice(2).filter((arg) => !arg.startsWith('-'));
const unknown = selected.filter((name) => !BENCHES[name]);
if (unknown.length > 0 || unknownFlags.length > 0) {
  console.error(
    `unknown ${unknown.length > 0 ? `bench ${unknown.join(', ')}` : `option ${unknownFlags.join(', ')}`}; available: ${Object.keys(BENCHES).join(', ')}; options: --small, --long, --out=DIR`,
  );
  process.exit(2);
}
await mkdir(out, { recursive: true });
const results: Record<string, BenchResult | string> = {};
const failed: string[] = [];
for (const name of selected.length > 0 ? selected : Object.keys(BENCHES)) {
  console.log(`running ${name}${options.small ? ' (small)' : ''}${options.long ? ' (long)' : ''} ...`);
  const result = await BENCHES[name]!(options);
  results[name] = result;
  printResult(result);
  const failures = typeof result === 'string' ? [] : (result.failures ?? []);
  for (const failure of failures) console.log(`FAIL ${name}: ${failure}`);
  if (failures.length > 0) failed.push(name);
  await writeFile(
    join(out, `${name}.json`),
    JSON.stringify({ at: new Date().toISOString(), node: process.version, bench: name, options, result }, null, 2),
  );
}
await writeFile(
  join(out, 'latest.json'),
  JSON.stringify({ at: new Date().toISOString(), node: process.version, options, results }, null, 2),
);
if (failed.length > 0) {
  console.log(`\nFAIL: ${failed.join(', ')}`);
  process.exitCode = 1;
}
