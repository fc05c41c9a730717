/**
 * A process to kill: an async-mirrored runtime over DATABASE_URL (schema CRASH_SCHEMA) whose
 * outbox and intent log live in CRASH_DIR, writing CRASH_WRITES projects with 16 callers and
 * printing "acked <n>" once each write is acknowledged. The test kills it with SIGKILL.
 */
import { join } from 'node:path';
import { FlagState } from '../../flags/flag-state.js';
import { ManualFlagSource } from '../../flags/manual-flags.js';
import { FileOutbox } from '../../src/dualwrite/file-outbox.js';
import { openDualWrite } from '../../src/runtime/open-dual-write.js';
import { PgPoolExecutor } from '../../src/postgres/pg-pool-executor.js';
import { poolOptionsFromEnv } from '../../src/runtime/config.js';

const dir = process.env.CRASH_DIR!;
const writes = Number(process.env.CRASH_WRITES);
const db = new PgPoolExecutor({
  ...poolOptionsFromEnv(),
  schema: process.env.CRASH_SCHEMA,
  poolSize: 4,
  maxOverflow: 0,
  minSize: 0,
  connectTimeoutMs: 500,
});
const rt = await openDualWrite({
  db,
  env: {},
  flags: new FlagState([new ManualFlagSource({ stage: 'dual-write' })]),
  outbox: await FileOutbox.open({ path: join(dir, 'outbox.jsonl') }),
  mirror: { mode: 'async' },
  verifier: { enabled: false },
  lease: { ttlMs: 1000 },
  logger: { info() {}, warn() {}, error() {} },
});
let next = 0;
await Promise.all(
  Array.from({ length: 16 }, async () => {
    while (next < writes) {
      const n = next++;
      await rt.graph.upsertProject({ ecosystem: 'npm', name: `crash-${n}`, description: `acknowledged ${n}` });
      process.stdout.write(`acked ${n}\n`);
    }
  }),
);
process.stdout.write('done\n');
await new Promise(() => {});
