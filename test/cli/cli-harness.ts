import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { serve, type ServedApi } from '../../src/api/serve.js';
import { MemoryAgentTaskStore } from '../../src/stores/agent-task/memory-agent-task-store.js';
import { MemoryGraphStore } from '../../src/stores/graph/memory-graph-store.js';
import type { PgPoolExecutor } from '../../src/postgres/pg-pool-executor.js';
import { applySampleWrite, sampleWrites } from '../../src/cli/demo/sample-data.js';
import { availableBackends, openPostgresSchema } from '../support/backends.js';

/** The admin token of the example API the tests start; a test checks it never appears in the CLI's output. */
export const ADMIN_TOKEN = 'cli-test-admin-token-5e81d';

/** What a CLI run left: its exit code, stdout and stderr. */
export interface CliResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** A CLI process still running, for tests that signal it. */
export interface RunningCli {
  readonly child: ChildProcess;
  /** Resolves with the first stderr line that matches. */
  stderrLine(pattern: RegExp): Promise<string>;
  readonly result: Promise<CliResult>;
}

/** The environment of the tests' own process less what would point the CLI elsewhere. */
function baseEnv(): NodeJS.ProcessEnv {
  const {
    DATABASE_URL: _db,
    POSTGRES_SCHEMA: _schema,
    DUALWRITE_URL: _url,
    DUALWRITE_ADMIN_TOKEN: _token,
    REDIS_URL: _redis,
    UNLEASH_URL: _unleash,
    ...inherited
  } = process.env;
  return inherited;
}

/** Starts `dualwrite <args>` (src/cli/main.ts through tsx) with `env` added to a clean environment. */
export function startCli(args: readonly string[], env: NodeJS.ProcessEnv = {}): RunningCli {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], {
    env: { ...baseEnv(), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  const waiting: { pattern: RegExp; resolve: (line: string) => void }[] = [];
  const answerWaiting = () => {
    for (const wait of waiting.splice(0)) {
      const line = stderr.split('\n').find((candidate) => wait.pattern.test(candidate));
      if (line === undefined) waiting.push(wait);
      else wait.resolve(line);
    }
  };
  child.stdout!.on('data', (chunk: Buffer) => void (stdout += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
    answerWaiting();
  });
  const result = new Promise<CliResult>((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
  return {
    child,
    result,
    stderrLine: (pattern) =>
      new Promise((resolve) => {
        waiting.push({ pattern, resolve });
        answerWaiting();
      }),
  };
}

/** Runs `dualwrite <args>` to its end. */
export function runCli(args: readonly string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  return startCli(args, env).result;
}

/**
 * True when a real PostgreSQL (DATABASE_URL) is there to test against; otherwise prints
 * why the tests that need it are skipped, and under CI=true throws instead.
 */
export function postgresAvailable(): boolean {
  return availableBackends(['postgres']).length > 0;
}

/** A schema of its own in the DATABASE_URL database, and the environment that points the CLI (or a runtime) at it. */
export interface TestDatabase {
  readonly db: PgPoolExecutor;
  readonly env: NodeJS.ProcessEnv;
  drop(): Promise<void>;
}

export async function openTestDatabase(): Promise<TestDatabase> {
  const { db, schema, drop } = await openPostgresSchema('dw_cli');
  return { db, env: { DATABASE_URL: process.env.DATABASE_URL, POSTGRES_SCHEMA: schema }, drop };
}

/** The example API (src/api/serve.ts) listening on a free port over a dual-write runtime in a schema of its own. */
export interface ExampleApi {
  readonly served: ServedApi;
  readonly database: TestDatabase;
  /** What a CLI needs to reach its admin API. */
  readonly cliEnv: NodeJS.ProcessEnv;
  close(): Promise<void>;
}

/** The environment of a dual-write runtime keeping its files in `dir`: dual-write, the admin token, the background verifier off. */
export function runtimeEnv(dir: string): NodeJS.ProcessEnv {
  return {
    DUALWRITE_ADMIN_TOKEN: ADMIN_TOKEN,
    DUAL_WRITE_MODE: 'dual-write',
    DUALWRITE_FLAGS_FILE: join(dir, 'flags.json'),
    DUALWRITE_LAST_FLAGS_PATH: join(dir, 'last-flags.json'),
    DUALWRITE_OUTBOX_PATH: join(dir, 'outbox.jsonl'),
    DUALWRITE_VERIFY_INTERVAL_MS: '0',
  };
}

/** Starts the example API in dual-write, its runtime's files in a temporary folder, the background verifier off; `env` adds to its environment. */
export async function startExampleApi(env: NodeJS.ProcessEnv = {}): Promise<ExampleApi> {
  const database = await openTestDatabase();
  const dir = await mkdtemp(join(tmpdir(), 'dw-cli-'));
  const served = await serve({
    env: { ...database.env, ...runtimeEnv(dir), POSTGRES_POOL_MIN_SIZE: '0', ...env },
    port: 0,
    host: '127.0.0.1',
    logger: pino({ level: 'silent' }),
  });
  return {
    served,
    database,
    cliEnv: { DUALWRITE_URL: served.url, DUALWRITE_ADMIN_TOKEN: ADMIN_TOKEN },
    async close() {
      await served.close();
      await database.drop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Snapshot files of the sample workload (every entity) in `dir`, as an API's in-memory stores would save them. */
export async function writeSampleSnapshots(dir: string, projects: number): Promise<{ graph: string; tasks: string }> {
  const paths = { graph: join(dir, 'graph.json'), tasks: join(dir, 'tasks.json') };
  const stores = {
    graph: new MemoryGraphStore({ snapshotPath: paths.graph }),
    tasks: new MemoryAgentTaskStore({ snapshotPath: paths.tasks }),
  };
  for (const write of sampleWrites({ projects })) await applySampleWrite(write, stores);
  await stores.graph.saveSnapshot();
  await stores.tasks.saveSnapshot();
  return paths;
}
