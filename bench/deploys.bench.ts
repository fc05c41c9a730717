import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, fsyncSync, openSync, writeSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { Stage } from '../src/ports/stage.js';
import { freePort } from '../test/support/free-port.js';
import { withBenchSchema } from './bench-database.js';
import type { BenchResult } from './dualwrite.bench.js';

/** How long the deploy storm runs. */
export interface DeployStormSize {
  /** Restarts of the API in each stage that memory or PostgreSQL keeps across them (alternating SIGTERM and SIGKILL). */
  readonly restartsPerStage: number;
  /** Writing loops; each owns its keys, so a key's acknowledgements come in the order of its writes. */
  readonly writers: number;
  readonly keys: number;
  /** Load between two events (stage changes, restarts). */
  readonly loadMs: number;
}

const TOKEN = 'deploy-storm-admin-token-5d1e';
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** One step of the storm: a stage change through the admin API, a resync, or a restart by a signal. */
type StormStep =
  | { readonly stage: Stage; readonly percent?: number; readonly force?: boolean }
  | { readonly resync: 'postgres' | 'memory' }
  | { readonly restart: 'SIGTERM' | 'SIGKILL' };

/**
 * The walk through every stage and back, with restarts wherever the data outlives the process:
 * from dual-write on (PostgreSQL holds every write), never in memory-only, where the API's
 * store is memory alone and a restart loses it whatever dualwrite does.
 */
function stormSteps(restartsPerStage: number): StormStep[] {
  const restarts = (): StormStep[] =>
    Array.from({ length: restartsPerStage }, (_, index) => ({ restart: index % 2 === 0 ? 'SIGKILL' : 'SIGTERM' }));
  return [
    { stage: 'dual-write' },
    { resync: 'postgres' },
    ...restarts(),
    // Forced: the gate's evidence is not what this storm is about (each advance is audited as forced).
    { stage: 'read-shift', percent: 50, force: true },
    ...restarts(),
    { stage: 'postgres-primary', force: true },
    ...restarts(),
    { stage: 'postgres-only', force: true },
    ...restarts(),
    { stage: 'postgres-primary' },
    { resync: 'memory' },
    ...restarts(),
    { stage: 'dual-write' },
    ...restarts(),
  ];
}

/**
 * The deploy storm: the example API (`dualwrite serve`, a child process on the real
 * PostgreSQL, background verification every second with repair on) under writes from this
 * process, walked memory-only -> dual-write -> read-shift -> postgres-primary -> postgres-only
 * -> back to dual-write through its admin API, and stopped (SIGTERM) or killed (SIGKILL) and
 * started again between the steps. Every acknowledged write goes to an fsynced log here,
 * outside the API. At the end, read back through a restarted API (the side in force) and
 * from PostgreSQL: nothing acknowledged is missing or older, repair deleted nothing, and a
 * verification finds the sides equal.
 */
export async function benchDeploys(
  size: DeployStormSize = { restartsPerStage: 6, writers: 8, keys: 4000, loadMs: 2000 },
): Promise<BenchResult | string> {
  if (!process.env.DATABASE_URL) return 'skipped deploys bench: DATABASE_URL is not set (it needs a real PostgreSQL)';
  const dir = await mkdtemp(join(tmpdir(), 'dw-deploys-'));
  try {
    return await withBenchSchema('dw_deploys', async (db) => {
      const schema = (await db.query<{ schema: string }>('SELECT current_schema() AS schema'))[0]!.schema;
      const api = new StormApi(dir, schema);
      const load = new StormLoad(join(dir, 'acks.log'), size);
      await api.start();
      load.start(api);
      const failures: string[] = [];
      const started = performance.now();
      await sleep(size.loadMs);
      for (const step of stormSteps(size.restartsPerStage)) {
        if ('restart' in step) await api.restart(step.restart);
        else if ('resync' in step)
          await api.admin('/admin/resync', { to: step.resync, reason: `storm: resync ${step.resync}` });
        else
          await api.admin('/admin/stage', {
            stage: step.stage,
            ...(step.percent !== undefined ? { percent: step.percent } : {}),
            reason: `storm: ${step.stage}`,
            ...(step.force ? { force: true } : {}),
          });
        await sleep(size.loadMs);
      }
      await load.stop();
      const seconds = (performance.now() - started) / 1000;
      // The truth is the log on disk, read back; the API is read after one more start, as a deploy would leave it.
      const acked = parseAcks(await readFile(join(dir, 'acks.log'), 'utf8'));
      await api.restart('SIGTERM');
      const verification = await api.admin<{
        consistent: boolean;
        entities: { differences: Record<string, number> }[];
      }>('/admin/verify', { reason: 'storm: the end' });
      if (!verification.consistent)
        failures.push(
          `the final verification found differences: ${JSON.stringify(verification.entities.map((entity) => entity.differences))}`,
        );
      const served = await api.readDescriptions(load.keysWritten());
      const inPostgres = new Map(
        (
          await db.query<{ name: string; description: string }>(
            "SELECT name, description FROM projects WHERE ecosystem = 'npm'",
          )
        ).map((row) => [row.name, row.description]),
      );
      const behind = (side: ReadonlyMap<string, string | null>) =>
        [...acked].filter(([key, seq]) => !load.acceptable(key, seq, side.get(key)));
      const lostServed = behind(served);
      const lostPostgres = behind(inPostgres);
      if (lostServed.length > 0)
        failures.push(
          `${lostServed.length} acknowledged writes missing or older on the side in force, e.g. ${JSON.stringify(lostServed.slice(0, 3))}`,
        );
      if (lostPostgres.length > 0)
        failures.push(
          `${lostPostgres.length} acknowledged writes missing or older in PostgreSQL, e.g. ${JSON.stringify(lostPostgres.slice(0, 3))}`,
        );
      const [deleted] = await db.query<{ count: string }>(
        `SELECT count(*) AS count FROM dualwrite_repairs WHERE outcome = 'repaired' AND after = 'null'::jsonb`,
      );
      const deletedByRepair = Number(deleted!.count);
      if (deletedByRepair > 0) failures.push(`repair deleted ${deletedByRepair} rows`);
      await api.stop();

      const { rebuilds, restarts } = api;
      const rebuildMaxSeconds = Math.max(0, ...rebuilds.map((rebuild) => rebuild.seconds));
      return {
        name: `deploy storm: ${restarts} restarts (SIGTERM and SIGKILL) through every stage and back, ${size.writers} writers over ${size.keys} keys, background repair on`,
        headers: [
          'restarts',
          'writes acknowledged',
          'lost (side in force)',
          'lost (PostgreSQL)',
          'deleted by repair',
          'memory rebuilds',
          'largest rebuild (records)',
          'slowest rebuild (s)',
          'writes/s',
          'seconds',
        ],
        rows: [
          [
            String(restarts),
            String(load.acknowledged),
            String(lostServed.length),
            String(lostPostgres.length),
            String(deletedByRepair),
            String(rebuilds.length),
            String(Math.max(0, ...rebuilds.map((rebuild) => rebuild.records))),
            rebuildMaxSeconds.toFixed(2),
            (load.acknowledged / seconds).toFixed(0),
            seconds.toFixed(1),
          ],
        ],
        summary: {
          restarts,
          acknowledged: load.acknowledged,
          lost: lostServed.length + lostPostgres.length,
          deletedByRepair,
          rebuilds: rebuilds.length,
          rebuildMaxSeconds,
        },
        failures,
      };
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** The last sequence number acknowledged per key, from the log's `key seq` lines. */
function parseAcks(log: string): Map<string, number> {
  const acked = new Map<string, number>();
  for (const line of log.split('\n')) {
    if (line === '') continue;
    const [key, seq] = line.split(' ');
    acked.set(key!, Math.max(acked.get(key!) ?? 0, Number(seq)));
  }
  return acked;
}

/** `dualwrite serve` as a child process, restarted on demand; what it logged about rebuilding memory is collected. */
class StormApi {
  private child: ChildProcess | undefined;
  private port = 0;
  readonly rebuilds: { records: number; seconds: number }[] = [];
  restarts = 0;

  constructor(
    private readonly dir: string,
    private readonly schema: string,
  ) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    this.port = await freePort();
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', 'src/cli/main.ts', 'serve', '--port', String(this.port)],
      {
        env: {
          ...process.env,
          POSTGRES_SCHEMA: this.schema,
          POSTGRES_POOL_SIZE: '6',
          POSTGRES_POOL_MIN_SIZE: '0',
          DUAL_WRITE_MODE: 'memory-only',
          DUALWRITE_FLAGS_FILE: join(this.dir, 'flags.json'),
          DUALWRITE_LAST_FLAGS_PATH: join(this.dir, 'last-flags.json'),
          DUALWRITE_OUTBOX_PATH: join(this.dir, 'outbox.jsonl'),
          DUALWRITE_ADMIN_TOKEN: TOKEN,
          DUALWRITE_REPAIR: 'true',
          DUALWRITE_VERIFY_INTERVAL_MS: '1000',
          DUALWRITE_LEASE_TTL_MS: '2000',
          REDIS_URL: '',
          UNLEASH_URL: '',
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    this.child = child;
    const said: string[] = [];
    const collect = (chunk: Buffer) => {
      const text = chunk.toString();
      said.push(...text.split('\n').filter(Boolean));
      said.splice(0, Math.max(0, said.length - 20));
      for (const match of text.matchAll(/memory rebuilt from PostgreSQL: (\d+) records in ([\d.]+) s/g))
        this.rebuilds.push({ records: Number(match[1]), seconds: Number(match[2]) });
    };
    child.stdout!.on('data', collect);
    child.stderr!.on('data', collect);
    const deadline = Date.now() + 60_000;
    for (;;) {
      if (child.exitCode !== null)
        throw new Error(`dualwrite serve exited with ${child.exitCode} at start; its last words:\n${said.join('\n')}`);
      if (Date.now() > deadline) throw new Error('dualwrite serve did not answer /healthz within 60 s');
      const healthy = await fetch(`${this.url}/healthz`).then(
        (answer) => answer.ok,
        () => false,
      );
      if (healthy) return;
      await sleep(100);
    }
  }

  /** Stops the API with `signal` (SIGTERM: graceful; SIGKILL: at once), then starts it again. */
  async restart(signal: 'SIGTERM' | 'SIGKILL'): Promise<void> {
    await this.stop(signal);
    await this.start();
    this.restarts++;
  }

  async stop(signal: 'SIGTERM' | 'SIGKILL' = 'SIGTERM'): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill(signal);
    await exited;
  }

  async admin<T = unknown>(path: string, body: object): Promise<T> {
    const answer = await fetch(`${this.url}${path}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    const json = (await answer.json()) as T & { error?: string };
    if (!answer.ok) throw new Error(`POST ${path} ${JSON.stringify(body)} answered ${answer.status}: ${json.error}`);
    return json;
  }

  /** Each key's description as the API serves it (null when absent). */
  async readDescriptions(keys: readonly string[]): Promise<Map<string, string | null>> {
    const read = new Map<string, string | null>();
    for (const key of keys) {
      const answer = await fetch(`${this.url}/projects/npm/${key}`);
      read.set(key, answer.status === 404 ? null : ((await answer.json()) as { description: string }).description);
    }
    return read;
  }
}

/**
 * Writers that keep upserting projects through the API, each over keys of its own. A write
 * that fails (the API is down or restarting) is sent again until it is acknowledged; only
 * then is it appended to the log. A key may therefore hold the write in flight when the
 * writers stopped: the last acknowledged one, or that one, is acceptable, nothing older.
 */
class StormLoad {
  private readonly fd: number;
  private unsynced = 0;
  private sequence = 0;
  private running = false;
  private loops: Promise<void>[] = [];
  private readonly inFlight = new Map<string, number>();
  private readonly written = new Set<string>();
  acknowledged = 0;

  constructor(
    path: string,
    private readonly size: DeployStormSize,
  ) {
    this.fd = openSync(path, 'a');
  }

  start(api: StormApi): void {
    this.running = true;
    this.loops = Array.from({ length: this.size.writers }, (_, writer) => this.write(api, writer));
  }

  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops);
    fsyncSync(this.fd);
    closeSync(this.fd);
  }

  keysWritten(): string[] {
    return [...this.written];
  }

  /** Whether `found` is the acknowledged write `seq` of `key` or the one sent after it and not acknowledged. */
  acceptable(key: string, seq: number, found: string | null | undefined): boolean {
    const inFlight = this.inFlight.get(key);
    return found === description(seq) || (inFlight !== undefined && found === description(inFlight));
  }

  private async write(api: StormApi, writer: number): Promise<void> {
    const keys = Math.ceil(this.size.keys / this.size.writers);
    for (let n = 0; this.running; n++) {
      const key = `storm-${writer + this.size.writers * (n % keys)}`;
      const seq = ++this.sequence;
      this.inFlight.set(key, seq);
      this.written.add(key);
      while (!(await this.put(api, key, seq))) {
        if (!this.running) return;
        await sleep(20);
      }
      this.inFlight.delete(key);
      this.acknowledge(key, seq);
    }
  }

  private async put(api: StormApi, key: string, seq: number): Promise<boolean> {
    try {
      const answer = await fetch(`${api.url}/projects/npm/${key}`, {
        method: 'PUT',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ description: description(seq) }),
      });
      await answer.arrayBuffer();
      return answer.ok;
    } catch {
      return false;
    }
  }

  private acknowledge(key: string, seq: number): void {
    writeSync(this.fd, `${key} ${seq}\n`);
    this.acknowledged++;
    if (++this.unsynced >= 100) {
      fsyncSync(this.fd);
      this.unsynced = 0;
    }
  }
}

function description(seq: number): string {
  return `write ${seq}`;
}
