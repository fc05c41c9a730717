import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import { FlagState } from '../../flags/flag-state.js';
import { ManualFlagSource } from '../../flags/manual-flags.js';
import { FileOutbox } from '../../src/dualwrite/file-outbox.js';
import { openDualWrite } from '../../src/runtime/open-dual-write.js';
import type { DualWriteRuntime } from '../../src/runtime/dual-write-runtime.js';
import type { SqlExecutor, SqlQueryable } from '../../src/postgres/sql-executor.js';
import type { TcpProxy } from './tcp-proxy.js';

/**
 * Runs test/support/crash-child.ts (an async-mirrored writer) against DATABASE_URL `url`,
 * cuts `proxy` once a quarter of `writes` are acknowledged (when given), and kills the
 * child with SIGKILL at half. Returns the numbers of the writes it acknowledged.
 */
export async function writeUntilKilled(options: {
  url: string;
  schema: string;
  dir: string;
  writes: number;
  cut?: TcpProxy;
}): Promise<Set<number>> {
  const { writes } = options;
  const child = spawn(process.execPath, ['--import', 'tsx', 'test/support/crash-child.ts'], {
    env: {
      ...process.env,
      DATABASE_URL: options.url,
      CRASH_SCHEMA: options.schema,
      CRASH_DIR: options.dir,
      CRASH_WRITES: String(writes),
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const acked = new Set<number>();
  const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)));
  await new Promise<void>((resolve, reject) => {
    child.on('exit', () =>
      reject(new Error(`the child exited before it was killed, after ${acked.size} acknowledgements`)),
    );
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const match = /^acked (\d+)$/.exec(line);
      if (!match) return;
      acked.add(Number(match[1]));
      if (options.cut && acked.size === writes / 4) options.cut.cut();
      if (acked.size === writes / 2) {
        child.kill('SIGKILL');
        resolve();
      }
    });
  });
  if ((await exited) !== 'SIGKILL') throw new Error('the child was not killed by SIGKILL');
  return acked;
}

/** The acknowledged writes of a killed child that PostgreSQL does not hold as acknowledged. */
export async function lostWrites(db: SqlQueryable, acked: ReadonlySet<number>): Promise<number[]> {
  const rows = await db.query<{ name: string; description: string }>(
    "SELECT name, description FROM projects WHERE name LIKE 'crash-%'",
  );
  const stored = new Map(rows.map((row) => [row.name, row.description]));
  return [...acked].filter((n) => stored.get(`crash-${n}`) !== `acknowledged ${n}`);
}

/**
 * What a process started after the kill does: an async-mirrored runtime on the same folder
 * (whose intent log it recovers first) over `db`; `warnings` collects what it says.
 */
export async function reopenAfterCrash(
  db: SqlExecutor,
  dir: string,
  warnings: string[] = [],
): Promise<{ rt: DualWriteRuntime; outbox: FileOutbox }> {
  const outbox = await FileOutbox.open({ path: join(dir, 'outbox.jsonl') });
  const rt = await openDualWrite({
    db,
    env: {},
    flags: new FlagState([new ManualFlagSource({ stage: 'dual-write' })]),
    outbox,
    mirror: { mode: 'async' },
    verifier: { enabled: false },
    lease: { ttlMs: 1000 },
    logger: {
      info() {},
      warn: (line: string) => void warnings.push(line),
      error: (line: string) => void warnings.push(line),
    },
  });
  return { rt, outbox };
}
