import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { FlagState } from '../flags/flag-state.js';
import { ManualFlagSource } from '../flags/manual-flags.js';
import { FileOutbox } from '../src/dualwrite/file-outbox.js';
import type { MirrorMode } from '../src/dualwrite/mirror.js';
import { openDualWrite } from '../src/runtime/open-dual-write.js';
import type { DualWriteRuntime } from '../src/runtime/dual-write-runtime.js';
import { loadMigrations, migrate } from '../src/postgres/migrations.js';
import { PgPoolExecutor } from '../src/postgres/pg-pool-executor.js';
import { poolOptionsFromEnv } from '../src/runtime/config.js';
import { lostWrites, reopenAfterCrash, writeUntilKilled } from '../test/support/crash-run.js';
import { privatePostgresUnavailable, startPrivatePostgres } from '../test/support/private-postgres.js';
import { startPrivateRedis } from '../test/support/private-redis.js';
import { dumpSide } from '../test/support/runtimes.js';
import { startTcpProxy, type TcpProxy } from '../test/support/tcp-proxy.js';
import { withBenchSchema } from './bench-database.js';
import type { BenchResult } from './dualwrite.bench.js';

/** How long the faults bench runs. */
export interface FaultsBenchSize {
  /** How long PostgreSQL is gone in each outage. Default DUALWRITE_FAULT_OUTAGE_SECONDS, else 30. */
  readonly outageSeconds: number;
  /** Writes the SIGKILLed child is asked for (killed at half). Default 20000. */
  readonly killedWrites: number;
  /** Steady writing before each outage. Default 2000 ms. */
  readonly warmUpMs: number;
  /** Whether the rows that SIGKILL a private PostgreSQL cluster run (when one can be made; each makes a cluster). Default true. */
  readonly killServer: boolean;
}
/** Only these rows, by summary name (e.g. outage.async,sigkill), to profile one; default all. */
const ONLY = process.env.DUALWRITE_FAULTS_ONLY?.split(',').filter(Boolean);
const wanted = (name: string) => !ONLY || ONLY.includes(name);
const WRITES_PER_SECOND = 4000;
const WRITERS = 16;
const KEYS = 2000;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Real faults against a real PostgreSQL, reached through a TCP proxy that is cut (the
 * shared server itself is never touched), a private PostgreSQL cluster SIGKILLed and
 * started again, a private redis-server killed and restarted,
 * and a writing child process killed with SIGKILL: for each, caller errors, the slowest
 * write, acknowledged writes lost, how far the outbox grew and how long after PostgreSQL
 * answered again the sides were equal.
 */
export async function benchFaults(
  size: FaultsBenchSize = {
    outageSeconds: Number(process.env.DUALWRITE_FAULT_OUTAGE_SECONDS || 30),
    killedWrites: 20_000,
    warmUpMs: 2000,
    killServer: true,
  },
): Promise<BenchResult | string> {
  if (!process.env.DATABASE_URL) return 'skipped faults bench: DATABASE_URL is not set (it needs a real PostgreSQL)';
  const rows: string[][] = [];
  const summary: Record<string, number> = {};
  const outages: { mode: MirrorMode; redis: RedisOutbox; fault: 'cut' | 'server-killed' }[] = [
    { mode: 'sync', redis: false, fault: 'cut' },
    { mode: 'async', redis: false, fault: 'cut' },
    { mode: 'sync', redis: 'persistent', fault: 'cut' },
    { mode: 'sync', redis: 'volatile', fault: 'cut' },
  ];
  const privateCluster = size.killServer ? privatePostgresUnavailable() : 'not asked for at this size';
  if (privateCluster) console.log(`  skipping the PostgreSQL SIGKILL rows: ${privateCluster}`);
  else
    outages.push(
      { mode: 'sync', redis: false, fault: 'server-killed' },
      { mode: 'async', redis: false, fault: 'server-killed' },
    );
  for (const { mode, redis, fault } of outages) {
    const name = `outage.${mode}${redis === 'persistent' ? '.redis' : redis === 'volatile' ? '.redis-volatile' : ''}${fault === 'cut' ? '' : '.killed'}`;
    if (!wanted(name)) continue;
    const outage = fault === 'cut' ? await cutUnderLoad(mode, redis, size) : await serverKilledUnderLoad(mode, size);
    const how = fault === 'cut' ? 'PostgreSQL cut off' : 'PostgreSQL SIGKILLed (private cluster), restarted after';
    const outbox = !redis
      ? ', file outbox'
      : redis === 'persistent'
        ? ', Redis outbox killed for a third of it'
        : ', Redis outbox without persistence, restarted empty in the middle';
    const what = `${how} ${size.outageSeconds} s under ${WRITES_PER_SECOND} writes/s, dual-write, ${mode}${outbox}`;
    rows.push([
      what,
      String(outage.callerErrors),
      outage.slowestMs.toFixed(0),
      String(outage.lost),
      String(outage.peakOutbox),
      String(outage.grewAfterRecovery),
      outage.drainSeconds.toFixed(1),
      String(outage.behindWhenEmpty),
      outage.provenSeconds.toFixed(1),
    ]);
    summary[`${name}.drainSeconds`] = outage.drainSeconds;
    summary[`${name}.behindWhenEmpty`] = outage.behindWhenEmpty;
    summary[`${name}.provenSeconds`] = outage.provenSeconds;
    summary[`${name}.lost`] = outage.lost;
    summary[`${name}.slowestMs`] = outage.slowestMs;
  }
  for (const cut of [false, true]) {
    if (!wanted(`sigkill${cut ? '.cut' : ''}`)) continue;
    const killed = await killWhileWriting(cut, size.killedWrites);
    rows.push([
      `process SIGKILLed mid-run, async mirror${cut ? ', PostgreSQL cut off' : ''}`,
      '-',
      '-',
      String(killed.lost),
      String(killed.recovered),
      '-',
      killed.recoverySeconds.toFixed(1),
      '-',
      '-',
    ]);
    summary[`sigkill${cut ? '.cut' : ''}.lost`] = killed.lost;
  }
  for (const allowUnavailable of [false, true]) {
    const name = `rollback-in-outage.${allowUnavailable ? 'unavailable-keys' : 'wait'}`;
    if (!wanted(name)) continue;
    const outcome = await rollbackDuringOutage(allowUnavailable, size);
    const what = `rollback postgres-primary -> dual-write ${Math.ceil(size.outageSeconds / 6)} s into a ${size.outageSeconds} s cut, async: ${allowUnavailable ? 'keys behind made unavailable (--allow-unavailable)' : 'waiting for PostgreSQL (default)'}`;
    rows.push([
      what,
      String(outcome.callerErrors),
      outcome.slowestMs.toFixed(0),
      String(outcome.lost),
      '-',
      '-',
      '-',
      '-',
      outcome.provenSeconds.toFixed(1),
    ]);
    summary[`${name}.callerErrors`] = outcome.callerErrors;
    summary[`${name}.unavailableKeys`] = outcome.unavailableKeys;
    summary[`${name}.lost`] = outcome.lost;
  }
  return {
    name: 'faults: real PostgreSQL behind a TCP proxy, and SIGKILL of a writing process',
    headers: [
      'what happened',
      'caller errors',
      'slowest write ms',
      'acknowledged writes lost (at the end)',
      'outbox peak (recovered)',
      'outbox grew after recovery',
      'seconds until outbox empty',
      'records behind when it was',
      'seconds until proven equal',
    ],
    rows,
    summary,
    failures: Object.entries(summary)
      .filter(([name, value]) => name.endsWith('.lost') && value > 0)
      .map(([name, value]) => `${name}: ${value} acknowledged writes missing or older in PostgreSQL at the end`),
  };
}

async function throughProxy<T>(work: (url: string, proxy: TcpProxy) => Promise<T>): Promise<T> {
  const url = new URL(process.env.DATABASE_URL!);
  const proxy = await startTcpProxy({ host: url.hostname, port: Number(url.port || 5432) });
  try {
    url.hostname = '127.0.0.1';
    url.port = String(proxy.port);
    return await work(url.toString(), proxy);
  } finally {
    await proxy.close();
  }
}

/** The outbox of a run: a file (false), or a private redis-server with or without persistence. */
type RedisOutbox = false | 'persistent' | 'volatile';

/** How PostgreSQL is taken away during a run, and given back. */
interface Fault {
  begin(): Promise<void> | void;
  end(): Promise<void> | void;
}

/**
 * PostgreSQL cut off through a TCP proxy for `size.outageSeconds` under steady load. With
 * `redis`, the outbox is a private redis-server's stream, killed for the middle third of
 * the outage and restarted.
 */
function cutUnderLoad(mode: MirrorMode, redis: RedisOutbox, size: FaultsBenchSize) {
  return withBenchSchema(`dw_faults_${mode}${redis ? '_redis' : ''}`, (direct) =>
    throughProxy(async (url, proxy) => {
      const schema = (await direct.query<{ s: string }>('SELECT current_schema() AS s'))[0]!.s;
      return outageUnderLoad(
        mode,
        redis,
        size,
        { url, schema },
        { begin: () => proxy.cut(), end: () => proxy.restore() },
      );
    }),
  );
}

/** A private PostgreSQL cluster's postmaster and backends SIGKILLed under load, started again (crash recovery) `size.outageSeconds` later. */
async function serverKilledUnderLoad(mode: MirrorMode, size: FaultsBenchSize) {
  const server = await startPrivatePostgres('dwbench');
  try {
    const setup = new PgPoolExecutor({ ...poolOptionsFromEnv({ DATABASE_URL: server.url }), minSize: 0 });
    await migrate(setup, await loadMigrations());
    await setup.close();
    return await outageUnderLoad(
      mode,
      false,
      size,
      { url: server.url },
      { begin: () => server.kill(), end: () => server.start() },
    );
  } finally {
    await server.drop();
  }
}

async function outageUnderLoad(
  mode: MirrorMode,
  redis: RedisOutbox,
  { outageSeconds, warmUpMs }: FaultsBenchSize,
  target: { url: string; schema?: string },
  fault: Fault,
) {
  const dir = await mkdtemp(join(tmpdir(), 'dw-faults-'));
  const db = new PgPoolExecutor({
    ...poolOptionsFromEnv({ DATABASE_URL: target.url }),
    schema: target.schema,
    minSize: 0,
    connectTimeoutMs: 1000,
  });
  const privateRedis = redis ? await startPrivateRedis(dir, redis === 'persistent') : undefined;
  // Killed however the run ends: a redis-server of this bench must not outlive it.
  try {
    const outbox = privateRedis ? undefined : await FileOutbox.open({ path: join(dir, 'outbox.jsonl') });
    const rt = await openDualWrite({
      db,
      env: privateRedis
        ? {
            REDIS_URL: privateRedis.url,
            DUALWRITE_OUTBOX_PATH: join(dir, 'local-outbox.jsonl'),
            DUALWRITE_INTENT_LOG_PATH: join(dir, 'intents.jsonl'),
          }
        : {},
      flags: new FlagState([new ManualFlagSource({ stage: 'dual-write' })]),
      outbox,
      mirror: { mode },
      verifier: { enabled: false },
      logger: { info() {}, warn() {}, error() {} },
    });
    const load = steadyWrites(rt);
    const progress = (what: string) =>
      process.stdout.write(`  ${mode}: ${what} (outbox ${rt.outbox.stats().depth}, written ${load.written})\n`);
    await sleep(warmUpMs);
    await fault.begin();
    progress('PostgreSQL gone');
    for (let second = 0; second < outageSeconds; second++) {
      if (privateRedis && second === Math.floor(outageSeconds / 3)) {
        await privateRedis.kill();
        progress('Redis killed');
      }
      if (privateRedis && second === Math.floor((2 * outageSeconds) / 3)) {
        await privateRedis.restart();
        progress('Redis restarted');
      }
      await sleep(1000);
      if (second % 10 === 9) progress(`${second + 1} s into the outage`);
    }
    const atRestore = rt.outbox.stats().depth;
    await fault.end();
    progress('PostgreSQL back');
    const restored = performance.now();
    let peakAfter = atRestore;
    // Equal but for the mirror's normal lag: nothing left in the outbox.
    while (rt.outbox.stats().depth > 0) {
      peakAfter = Math.max(peakAfter, rt.outbox.stats().depth);
      if (performance.now() - restored > 600_000) throw new Error('the outbox did not drain within 10 minutes');
      await sleep(100);
    }
    const drainSeconds = (performance.now() - restored) / 1000;
    progress(`drained in ${drainSeconds.toFixed(1)} s`);
    await load.stop();
    await rt.mirror.drain();
    // What "outbox empty" would have called converged.
    const behindWhenEmpty = await behind(rt);
    // Proven equal: a clean verification after the outage. After a loss the runtime's own recovery
    // makes it; otherwise a verification as the background verifier would run it on its schedule.
    while (!rt.convergence().converged) {
      if (performance.now() - restored > 600_000)
        throw new Error(`the sides were not proven equal within 10 minutes: ${rt.convergence().detail}`);
      if (rt.recovery.current) await sleep(100);
      else await rt.verifier.runOnce();
    }
    const provenSeconds = (performance.now() - restored) / 1000;
    progress(`proven equal ${provenSeconds.toFixed(1)} s after PostgreSQL answered`);
    // Whatever the writers' last writes journaled is replayed before the sides are compared.
    const stuck = await rt.replayer.drainFor('postgres');
    if (stuck) throw new Error(`the outbox could not be drained at the end: ${stuck}`);
    const lost = await behind(rt);
    await rt.close();
    await outbox?.close();
    await db.close();
    await rm(dir, { recursive: true, force: true });
    return {
      callerErrors: load.callerErrors,
      lost,
      slowestMs: load.slowestMs,
      peakOutbox: atRestore,
      grewAfterRecovery: peakAfter > atRestore ? `yes (to ${peakAfter})` : 'no',
      drainSeconds,
      behindWhenEmpty,
      provenSeconds,
    };
  } finally {
    await privateRedis?.kill();
  }
}

/**
 * postgres-primary, async mirror, under steady writes; PostgreSQL is cut off, and a sixth of
 * the way into the outage an operator rolls back to dual-write, either waiting for the copies
 * toward memory (refused while PostgreSQL is away) or letting their keys be unavailable.
 * Caller errors are counted over the outage; once PostgreSQL is back every acknowledged
 * write must be on both sides.
 */
async function rollbackDuringOutage(allowUnavailable: boolean, { outageSeconds, warmUpMs }: FaultsBenchSize) {
  return withBenchSchema(`dw_faults_rollback${allowUnavailable ? '_u' : ''}`, (direct) =>
    throughProxy(async (url, proxy) => {
      const dir = await mkdtemp(join(tmpdir(), 'dw-faults-rollback-'));
      const schema = (await direct.query<{ s: string }>('SELECT current_schema() AS s'))[0]!.s;
      const db = new PgPoolExecutor({
        ...poolOptionsFromEnv({ DATABASE_URL: url }),
        schema,
        minSize: 0,
        connectTimeoutMs: 1000,
      });
      const outbox = await FileOutbox.open({ path: join(dir, 'outbox.jsonl') });
      const rt = await openDualWrite({
        db,
        env: {
          DUAL_WRITE_MODE: 'postgres-primary',
          DUALWRITE_FLAGS_FILE: join(dir, 'flags.json'),
          DUALWRITE_LAST_FLAGS_PATH: join(dir, 'last-flags.json'),
        },
        outbox,
        mirror: { mode: 'async' },
        verifier: { enabled: false },
        logger: { info() {}, warn() {}, error() {} },
      });
      let unavailableKeys = 0;
      const load = steadyWrites(rt, (error) => {
        if (error instanceof Error && error.message.includes('waits for a copy')) unavailableKeys++;
      });
      const progress = (what: string) =>
        process.stdout.write(
          `  rollback (${allowUnavailable ? 'unavailable keys' : 'wait'}): ${what} (outbox ${rt.outbox.stats().depth}, errors ${load.callerErrors})\n`,
        );
      await sleep(warmUpMs);
      proxy.cut();
      const cut = performance.now();
      progress('PostgreSQL cut off');
      await sleep((outageSeconds * 1000) / 6);
      await rt
        .setFlags(
          { stage: 'dual-write' },
          { reason: 'bench: roll back during the outage', principal: 'bench', allowUnavailable },
        )
        .then(
          () => progress(`rolled back to ${rt.stage.current.stage}`),
          (error: unknown) => progress(`rollback refused: ${(error as Error).message.slice(0, 120)}`),
        );
      await sleep(Math.max(0, outageSeconds * 1000 - (performance.now() - cut)));
      proxy.restore();
      progress('PostgreSQL back');
      const restored = performance.now();
      await load.stop();
      await rt.mirror.drain();
      // Waited: the operator asks again once PostgreSQL answers (refused until the circuit's next probe has found it).
      while (rt.stage.current.stage !== 'dual-write') {
        await rt
          .setFlags({ stage: 'dual-write' }, { reason: 'bench: PostgreSQL is back', principal: 'bench' })
          .catch(async (error: unknown) => {
            if (performance.now() - restored > 60_000) throw error;
            await sleep(500);
          });
      }
      // As the background replayer would: each side's circuit lets a probe through once a second.
      for (const side of ['memory', 'postgres'] as const) {
        for (let stuck = await rt.replayer.drainFor(side); stuck; stuck = await rt.replayer.drainFor(side)) {
          if (performance.now() - restored > 60_000) throw new Error(stuck);
          await sleep(200);
        }
      }
      // Writes PostgreSQL committed as the cut dropped their answer were never acknowledged, nor copied to memory
      // (a new key among them exists in PostgreSQL only): the sides differ there until an operator repairs toward
      // the authoritative side, confirming those deletions, as after any outage in postgres-primary.
      while (!rt.convergence().converged) {
        if (performance.now() - restored > 120_000)
          throw new Error(`not proven equal within 2 minutes: ${rt.convergence().detail}`);
        await rt.verifier.runOnce({
          repair: { reason: 'bench: repair after the outage', allowDeletes: Number.MAX_SAFE_INTEGER },
        });
        await rt.verifier.runOnce({ repair: false });
      }
      const provenSeconds = (performance.now() - restored) / 1000;
      const lost = await behind(rt);
      await rt.close();
      await outbox.close();
      await db.close();
      await rm(dir, { recursive: true, force: true });
      return { callerErrors: load.callerErrors, unavailableKeys, slowestMs: load.slowestMs, lost, provenSeconds };
    }),
  );
}

/** WRITES_PER_SECOND upserts over KEYS projects from WRITERS callers, each at its due time, until stop(); what failed is counted (and told to `onError`). */
function steadyWrites(rt: DualWriteRuntime, onError?: (error: unknown) => void) {
  let running = true;
  const load = {
    written: 0,
    callerErrors: 0,
    slowestMs: 0,
    async stop(): Promise<void> {
      running = false;
      await Promise.all(writers);
    },
  };
  const started = performance.now();
  const writers = Array.from({ length: WRITERS }, async (_, writer) => {
    for (let n = 0; running; n++) {
      const due = started + ((n * WRITERS + writer) * 1000) / WRITES_PER_SECOND;
      await sleep(Math.max(0, due - performance.now()));
      const i = n * WRITERS + writer;
      const began = performance.now();
      await rt.graph.upsertProject({ ecosystem: 'npm', name: `k${i % KEYS}`, description: `write ${i}` }).then(
        () => void load.written++,
        (error: unknown) => {
          load.callerErrors++;
          onError?.(error);
        },
      );
      load.slowestMs = Math.max(load.slowestMs, performance.now() - began);
    }
  });
  return load;
}

/** Projects whose latest version in memory (the authoritative side: every acknowledged write) PostgreSQL lacks. */
async function behind(rt: DualWriteRuntime): Promise<number> {
  const memory = await dumpSide(rt, 'memory');
  const postgres = await dumpSide(rt, 'postgres');
  const inPostgres = new Map(
    (postgres.projects as { name: string; description: string }[]).map((p) => [p.name, p.description]),
  );
  return (memory.projects as { name: string; description: string }[]).filter(
    (p) => inPostgres.get(p.name) !== p.description,
  ).length;
}

async function killWhileWriting(cut: boolean, writes: number) {
  return withBenchSchema(`dw_faults_kill${cut ? '_cut' : ''}`, (direct) =>
    throughProxy(async (url, proxy) => {
      const dir = await mkdtemp(join(tmpdir(), 'dw-faults-kill-'));
      const schema = (await direct.query<{ s: string }>('SELECT current_schema() AS s'))[0]!.s;
      const acked = await writeUntilKilled({ url, schema, dir, writes, cut: cut ? proxy : undefined });
      proxy.restore();
      const started = performance.now();
      const warnings: string[] = [];
      const { rt, outbox } = await reopenAfterCrash(direct, dir, warnings);
      const recovered = Number(warnings.map((line) => /(\d+) acknowledged/.exec(line)?.[1]).find(Boolean) ?? 0);
      const depth = outbox.stats().depth;
      const stuck = await rt.replayer.drainFor('postgres');
      if (stuck) throw new Error(stuck);
      const recoverySeconds = (performance.now() - started) / 1000;
      const lost = (await lostWrites(direct, acked)).length;
      await rt.close();
      await outbox.close();
      await rm(dir, { recursive: true, force: true });
      return { lost, recovered: `${depth} (${recovered} from the intent log)`, recoverySeconds };
    }),
  );
}
