import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { buildApi } from '../src/api/app.js';
import { serve } from '../src/api/serve.js';
import type { MirrorMode } from '../src/dualwrite/mirror.js';
import { MemoryAgentTaskStore } from '../src/stores/agent-task/memory-agent-task-store.js';
import { MemoryGraphStore } from '../src/stores/graph/memory-graph-store.js';
import type { PgPoolExecutor } from '../src/postgres/pg-pool-executor.js';
import type { Stage } from '../src/ports/stage.js';
import { withBenchSchema } from './bench-database.js';
import { verifiedDifferences } from './bench-runtime.js';
import type { BenchOptions, BenchResult } from './dualwrite.bench.js';
import { seedStores, type HttpSeed, type LoadRound, type LoadSettings } from './http-workload.js';
import { format } from './measure.js';

/** What the dual-write scenarios are reported against. */
const TARGETS = { perSecond: 5000, p99Ms: 25, errors: 0 };
/** The sustained run (--long): a fixed rate, reported minute by minute. */
const SUSTAINED_RATE = 1000;

interface HttpBenchSize {
  readonly seed: HttpSeed;
  readonly connections: number;
  readonly seconds: number;
  readonly warmUpSeconds: number;
  /** Rounds of `sustainedRoundSeconds` in the sustained run. */
  readonly sustainedRounds: number;
  readonly sustainedRoundSeconds: number;
}

const FULL: HttpBenchSize = {
  seed: { projects: 2000, contributors: 2000, tasks: 2000 },
  connections: 32,
  seconds: 10,
  warmUpSeconds: 3,
  sustainedRounds: 10,
  sustainedRoundSeconds: 60,
};
const SMALL: HttpBenchSize = {
  seed: { projects: 50, contributors: 50, tasks: 50 },
  connections: 8,
  seconds: 1,
  warmUpSeconds: 0,
  sustainedRounds: 2,
  sustainedRoundSeconds: 2,
};

/** A way of serving the API; `stage` absent is the baseline, served straight from in-memory stores. */
interface Scenario {
  readonly key: string;
  readonly label: string;
  readonly stage?: Stage;
  readonly readPercent?: number;
  readonly mode?: MirrorMode;
}

const BASELINE: Scenario = { key: 'baseline', label: 'baseline: in-memory stores, no dualwrite' };
const SCENARIOS: readonly Scenario[] = [
  { key: 'memory-only', label: 'memory-only', stage: 'memory-only', mode: 'sync' },
  { key: 'dual-write-sync', label: 'dual-write, sync mirror', stage: 'dual-write', mode: 'sync' },
  { key: 'dual-write-async', label: 'dual-write, async mirror', stage: 'dual-write', mode: 'async' },
  { key: 'read-shift-50', label: 'read-shift 50%, sync mirror', stage: 'read-shift', readPercent: 50, mode: 'sync' },
];
const SUSTAINED: Scenario = SCENARIOS[1]!;

/** What one scenario measured, and what verify found afterwards. */
interface Served {
  readonly rounds: LoadRound[];
  /** undefined: the stage writes one side only. */
  readonly differences: number | undefined;
  readonly problems: string[];
}

/**
 * The example API (serve(): the runtime from environment variables, a real PostgreSQL in a
 * schema of its own) under a realistic route mix (80% GETs of projects, contributors and
 * tasks, 20% POSTs of new contributors and tasks) sent by autocannon from a second process
 * over loopback, per stage, against the same routes served straight from in-memory stores
 * in the same run. After each, a verification of both sides must find no difference.
 * --long: dual-write (sync) at a fixed 1000 requests/s for 10 minutes, minute by minute.
 */
export async function benchHttp(options: BenchOptions): Promise<BenchResult | string> {
  if (!process.env.DATABASE_URL) return 'skipped http bench: DATABASE_URL is not set (it needs a real PostgreSQL)';
  const size = options.small ? SMALL : FULL;
  const dir = await mkdtemp(join(tmpdir(), 'dw-bench-http-'));
  try {
    return await withBenchSchema('dw_bench_http', async (db) => {
      const [{ schema }] = (await db.query<{ schema: string }>('SELECT current_schema() AS schema')) as [
        { schema: string },
      ];
      const database: BenchDatabase = { db, schema, dir };
      return options.long ? await sustained(size, database) : await throughput(size, database);
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** The bench's schema (emptied before each scenario) and a folder for the runtimes' files. */
interface BenchDatabase {
  readonly db: PgPoolExecutor;
  readonly schema: string;
  readonly dir: string;
}

async function throughput(size: HttpBenchSize, database: BenchDatabase): Promise<BenchResult> {
  const settings = {
    connections: size.connections,
    seconds: size.seconds,
    warmUpSeconds: size.warmUpSeconds,
    rounds: 1,
    overallRate: 0,
    seed: size.seed,
  };
  const measured: [Scenario, Served][] = [];
  for (const [index, scenario] of [BASELINE, ...SCENARIOS].entries()) {
    console.log(`  http: ${scenario.label} ...`);
    measured.push([scenario, await serveUnderLoad(scenario, database, { ...settings, runTag: runTag(index) })]);
  }
  const baseline = measured[0]![1].rounds[0]!;
  const rows: string[][] = [];
  const summary: Record<string, number> = {};
  const failures: string[] = [];
  for (const [scenario, served] of measured) {
    const round = served.rounds[0]!;
    const relative = round.perSecond / baseline.perSecond;
    const dualWrite = scenario.stage !== undefined && scenario.stage !== 'memory-only';
    rows.push([
      scenario.label,
      format(round.perSecond),
      relative.toFixed(2),
      round.p50Ms.toFixed(1),
      round.p95Ms.toFixed(1),
      round.p99Ms.toFixed(1),
      `${round.errors} / ${round.non2xx}`,
      served.differences === undefined ? '-' : String(served.differences),
      dualWrite ? againstTargets(round) : '-',
    ]);
    Object.assign(summary, {
      [`${scenario.key}.perSecond`]: round.perSecond,
      [`${scenario.key}.relative`]: relative,
      [`${scenario.key}.p50Ms`]: round.p50Ms,
      [`${scenario.key}.p95Ms`]: round.p95Ms,
      [`${scenario.key}.p99Ms`]: round.p99Ms,
      [`${scenario.key}.errors`]: round.errors,
      [`${scenario.key}.non2xx`]: round.non2xx,
      ...(served.differences === undefined ? {} : { [`${scenario.key}.differences`]: served.differences }),
    });
    failures.push(...served.problems.map((problem) => `${scenario.label}: ${problem}`));
  }
  return {
    name: `http: example API on 127.0.0.1, autocannon in a second process, ${size.connections} connections, ${size.seconds} s per scenario, 80% GET / 20% POST, real PostgreSQL`,
    headers: [
      'scenario',
      'req/s',
      'vs baseline',
      'p50 ms',
      'p95 ms',
      'p99 ms',
      'errors / non-2xx',
      'verify differences',
      `targets (>= ${format(TARGETS.perSecond)} req/s, p99 <= ${TARGETS.p99Ms} ms, 0 errors)`,
    ],
    rows,
    summary,
    failures,
  };
}

async function sustained(size: HttpBenchSize, database: BenchDatabase): Promise<BenchResult> {
  const settings = {
    connections: 50,
    seconds: size.sustainedRoundSeconds,
    warmUpSeconds: 0,
    rounds: size.sustainedRounds,
    overallRate: SUSTAINED_RATE,
    seed: size.seed,
    runTag: runTag(0),
  };
  console.log(
    `  http: ${SUSTAINED.label} at ${format(SUSTAINED_RATE)} req/s for ${size.sustainedRounds} x ${size.sustainedRoundSeconds} s ...`,
  );
  const served = await serveUnderLoad(SUSTAINED, database, settings, (round, index) =>
    console.log(
      `  ${index + 1}: ${format(round.perSecond)} req/s, p99 ${round.p99Ms.toFixed(1)} ms, errors ${round.errors}, non-2xx ${round.non2xx}`,
    ),
  );
  const rows = served.rounds.map((round, index) => [
    String(index + 1),
    format(round.perSecond),
    round.p50Ms.toFixed(1),
    round.p99Ms.toFixed(1),
    String(round.errors),
    String(round.non2xx),
  ]);
  const errors = served.rounds.reduce((sum, round) => sum + round.errors + round.non2xx, 0);
  return {
    name: `http sustained: ${SUSTAINED.label}, ${format(SUSTAINED_RATE)} req/s for ${size.sustainedRounds} x ${size.sustainedRoundSeconds} s; verify afterwards: ${served.differences} differences`,
    headers: [`round (${size.sustainedRoundSeconds} s)`, 'req/s', 'p50 ms', 'p99 ms', 'errors', 'non-2xx'],
    rows,
    summary: {
      rounds: served.rounds.length,
      maxP99Ms: Math.max(...served.rounds.map((round) => round.p99Ms)),
      errors,
      differences: served.differences ?? -1,
    },
    failures: served.problems,
  };
}

/** Eight hex digits per scenario, so each load process makes ids of its own. */
function runTag(index: number): string {
  return (0xbe00_0000 + index).toString(16);
}

function againstTargets(round: LoadRound): string {
  const mark = (ok: boolean) => (ok ? 'met' : 'missed');
  return `req/s ${mark(round.perSecond >= TARGETS.perSecond)}, p99 ${mark(round.p99Ms <= TARGETS.p99Ms)}, errors ${mark(round.errors + round.non2xx <= TARGETS.errors)}`;
}

/** The API as `scenario` serves it, seeded, under the load of `settings`, verified afterwards. */
async function serveUnderLoad(
  scenario: Scenario,
  { db, schema, dir }: BenchDatabase,
  settings: Omit<LoadSettings, 'url'>,
  onRound?: (round: LoadRound, index: number) => void,
): Promise<Served> {
  // Warnings only: per-request info lines would measure the logger.
  const logger = pino({ level: 'warn' });
  if (scenario.stage === undefined) {
    const graph = new MemoryGraphStore();
    const tasks = new MemoryAgentTaskStore();
    await seedStores(graph, tasks, settings.seed);
    const app = buildApi({ graph, tasks, logger });
    try {
      const rounds = await load({ ...settings, url: await app.listen({ port: 0, host: '127.0.0.1' }) }, onRound);
      return { rounds, differences: undefined, problems: rejected(rounds) };
    } finally {
      await app.close();
    }
  }
  // Each scenario is a deployment of its own: its data and its lineage start empty.
  await db.query(
    'TRUNCATE projects, project_dependencies, contributors, assets, contributions, agent_tasks, dualwrite_lineage CASCADE',
  );
  const served = await serve({ env: serveEnv(scenario, schema, dir), port: 0, host: '127.0.0.1', logger });
  try {
    const problems: string[] = [];
    const inForce = served.runtime.stage.current;
    if (inForce.stage !== scenario.stage || (scenario.readPercent ?? 0) !== inForce.readPercent)
      problems.push(
        `asked for ${scenario.stage} ${scenario.readPercent ?? 0}%, ${inForce.stage} ${inForce.readPercent}% is in force`,
      );
    await seedStores(served.runtime.graph, served.runtime.tasks, settings.seed);
    const rounds = await load({ ...settings, url: served.url }, onRound);
    const differences = await verifiedDifferences(served.runtime);
    if (differences) problems.push(`verify found ${differences} records differing between memory and PostgreSQL`);
    return { rounds, differences, problems: [...problems, ...rejected(rounds)] };
  } finally {
    await served.close();
  }
}

/** The environment serve() reads: DATABASE_URL and POSTGRES_* as given, the stage and mirror of `scenario`, files in `dir`, no background verifier. */
function serveEnv(scenario: Scenario, schema: string, dir: string): NodeJS.ProcessEnv {
  const postgres = Object.entries(process.env).filter(
    ([name]) => name.startsWith('POSTGRES_') || name === 'DATABASE_URL' || name === 'PGSSLMODE',
  );
  return {
    ...Object.fromEntries(postgres),
    POSTGRES_SCHEMA: schema,
    DUAL_WRITE_MODE: scenario.stage,
    READ_FROM_POSTGRES_PERCENT: String(scenario.readPercent ?? 0),
    DUALWRITE_MIRROR_MODE: scenario.mode,
    DUALWRITE_OUTBOX_PATH: join(dir, `${scenario.key}-outbox.jsonl`),
    DUALWRITE_FLAGS_FILE: join(dir, `${scenario.key}-flags.json`),
    DUALWRITE_LAST_FLAGS_PATH: join(dir, `${scenario.key}-last-flags.json`),
    DUALWRITE_VERIFY_INTERVAL_MS: '0',
  };
}

/** Answers other than 2xx mean the bench's requests are wrong (or the API is): each round must have none. */
function rejected(rounds: readonly LoadRound[]): string[] {
  return rounds.flatMap((round, index) =>
    round.non2xx > 0 ? [`round ${index + 1}: ${round.non2xx} answers were not 2xx`] : [],
  );
}

const LOAD_SCRIPT = fileURLToPath(new URL('./http-load.ts', import.meta.url));

/** Runs the load process (bench/http-load.ts) and collects its rounds as it reports them. */
async function load(settings: LoadSettings, onRound?: (round: LoadRound, index: number) => void): Promise<LoadRound[]> {
  const child = spawn(process.execPath, ['--import', 'tsx', LOAD_SCRIPT, JSON.stringify(settings)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const rounds: LoadRound[] = [];
  createInterface({ input: child.stdout! }).on('line', (line) => {
    const round = JSON.parse(line) as LoadRound;
    onRound?.(round, rounds.length);
    rounds.push(round);
  });
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  if (code !== 0 || rounds.length !== settings.rounds)
    throw new Error(`the load process exited with ${code} after ${rounds.length} of ${settings.rounds} rounds`);
  return rounds;
}
