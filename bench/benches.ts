import { benchBackfill } from './backfill.bench.js';
import { benchBulkIndex } from './bulk-index.bench.js';
import { benchDeploys } from './deploys.bench.js';
import { benchMirroredWrites, benchReadOverhead, type BenchOptions, type BenchResult } from './dualwrite.bench.js';
import { benchFaults } from './faults.bench.js';
import { benchFuzz } from './fuzz.bench.js';
import { benchHttp } from './http.bench.js';
import { benchRestart } from './restart.bench.js';
import { benchSqlite } from './sqlite.bench.js';
import { benchTaskCas } from './task-cas.bench.js';
import { benchTransition } from './transition.bench.js';
import { benchRows, benchVerify } from './verify.bench.js';

/** Every bench `npm run bench` knows, by name, each at its full size or (options.small) at a size that finishes in seconds. */
export const BENCHES: Record<string, (options: BenchOptions) => Promise<BenchResult | string>> = {
  'read-overhead': ({ small }) => (small ? benchReadOverhead(1000, 2000) : benchReadOverhead()),
  'mirrored-writes': ({ small }) => benchMirroredWrites(small ? 200 : undefined),
  verify: ({ small }) => benchVerify(small ? 500 : benchRows()),
  backfill: ({ small }) => benchBackfill(small ? 500 : benchRows()),
  fuzz: ({ small }) => benchFuzz(small ? 1 : undefined),
  transition: ({ small }) => benchTransition(small ? { transitions: 2, steadyMs: 300, betweenMs: 100 } : undefined),
  faults: ({ small }) =>
    benchFaults(small ? { outageSeconds: 2, killedWrites: 2000, warmUpMs: 200, killServer: false } : undefined),
  http: (options) => benchHttp(options),
  'bulk-index': ({ small }) => benchBulkIndex(small ? { projects: 100 } : undefined),
  'task-cas': ({ small }) => benchTaskCas(small ? { tasks: 64 } : undefined),
  sqlite: ({ small }) => (small ? benchSqlite(300) : benchSqlite()),
  restart: ({ small }) => benchRestart(small ? 500 : benchRows()),
  deploys: ({ small }) => benchDeploys(small ? { restartsPerStage: 2, writers: 4, keys: 200, loadMs: 400 } : undefined),
};
