import { writeFile, mkdir } from 'node:fs/promises';
import { benchBackfill } from './backfill.bench.js';
import { benchMirroredWrites, benchReadOverhead, printResult, type BenchResult } from './dualwrite.bench.js';
import { benchFaults } from './faults.bench.js';
import { benchFuzz } from './fuzz.bench.js';
import { benchSqlite } from './sqlite.bench.js';
import { benchTransition } from './transition.bench.js';
import { benchVerify } from './verify.bench.js';

/** `npm run bench [-- name ...]`: runs the named benches (all by default), prints tables, writes bench/results/latest.json. */
const BENCHES: Record<string, () => Promise<BenchResult | string>> = {
  'read-overhead': () => benchReadOverhead(),
  'mirrored-writes': () => benchMirroredWrites(),
  verify: () => benchVerify(),
  backfill: () => benchBackfill(),
  fuzz: () => benchFuzz(),
  transition: () => benchTransition(),
  faults: () => benchFaults(),
  sqlite: () => benchSqlite(),
};

const selected = process.argv.slice(2).filter((arg) => !arg.startsWith('-'));
const unknown = selected.filter((name) => !BENCHES[name]);
if (unknown.length > 0) {
  console.error(`unknown bench ${unknown.join(', ')}; available: ${Object.keys(BENCHES).join(', ')}`);
  process.exit(2);
}
const results: Record<string, BenchResult | string> = {};
for (const name of selected.length > 0 ? selected : Object.keys(BENCHES)) {
  console.log(`running ${name} ...`);
  results[name] = await BENCHES[name]!();
  printResult(results[name]!);
}
await mkdir('bench/results', { recursive: true });
await writeFile('bench/results/latest.json', JSON.stringify({ at: new Date().toISOString(), node: process.version, results }, null, 2));
