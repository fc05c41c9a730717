import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { formatBackfillReport } from '../backfill-report.js';
import { formatVerifyReport } from '../verify-report.js';
import { formatTable } from '../table.js';
import { EvidenceRefusedError } from '../../runtime/evidence-gate.js';
import { openDualWrite } from '../../runtime/open-dual-write.js';
import type { DualWriteRuntime } from '../../runtime/dual-write-runtime.js';
import type { ProjectRef } from '../../stores/graph/graph-model.js';
import type { Stage } from '../../ports/stage.js';
import { MemoryAgentTaskStore } from '../../stores/agent-task/memory-agent-task-store.js';
import { MemoryGraphStore } from '../../stores/graph/memory-graph-store.js';
import { openDatabase, type DatabaseConfig } from '../../postgres/open-database.js';
import { PgPoolExecutor } from '../../postgres/pg-pool-executor.js';
import type { PostgresPoolOptions } from '../../postgres/pool-config.js';
import { databaseConfig } from '../../runtime/config.js';
import { applySampleWrite, sampleWrites } from './sample-data.js';

export interface DemoOptions {
  /** Sample size in projects. Default 200. */
  readonly projects?: number;
  readonly env?: NodeJS.ProcessEnv;
  readonly log?: (line: string) => void;
  /** Called with the runtime after the walk, before it is closed (the CLI's --serve keeps the example API up until Ctrl-C). */
  readonly serve?: (runtime: DualWriteRuntime) => Promise<void>;
}

export interface DemoStep {
  readonly stage: Stage;
  readonly readPercent: number;
  readonly note: string;
  readonly readsFromPostgres: number;
  readonly readsFromMemory: number;
}

export interface DemoReport {
  readonly database: string;
  readonly steps: DemoStep[];
  readonly backfilled: number;
  readonly consistentAfterBackfill: boolean;
  /** The advance the evidence gate refused before the first verification, as it said it. */
  readonly refusedAdvance: string;
  readonly keptAfterRollback: boolean;
  readonly consistentAtEnd: boolean;
  readonly equal: boolean;
}

/**
 * The main job, end to end: an API's in-memory stores already hold data; dualwrite
 * turns on dual-write, backfills PostgreSQL, verifies both sides, shifts reads to
 * PostgreSQL step by step, makes PostgreSQL primary, rolls back by flag and verifies
 * again. On embedded PGlite unless DATABASE_URL is set (then in schema dualwrite_demo).
 */
export async function runDemo(options: DemoOptions = {}): Promise<DemoReport> {
  const log = options.log ?? console.log;
  const env = options.env ?? process.env;
  // On a real server the demo works in its own schema, emptied first, and never touches other data.
  const database = databaseConfig(env);
  const demoDatabase: DatabaseConfig =
    database.kind === 'postgres'
      ? { kind: 'postgres', pool: { ...database.pool, schema: database.pool.schema ?? 'dualwrite_demo' } }
      : { kind: 'pglite' };
  if (demoDatabase.kind === 'postgres') await dropSchema(demoDatabase.pool);
  const { db, description } = await openDatabase(demoDatabase);
  const dir = await mkdtemp(join(tmpdir(), 'dualwrite-demo-'));
  let runtime: DualWriteRuntime | undefined;
  try {
    log(`database: ${description}`);
    // The API as it is today: its data lives in memory only.
    const memory = { graph: new MemoryGraphStore(), tasks: new MemoryAgentTaskStore() };
    const writes = sampleWrites({ projects: options.projects ?? 200 });
    for (const write of writes) await applySampleWrite(write, memory);
    log(`the API's in-memory stores hold ${writes.length} writes' worth of data`);

    // An operator's flags file in the demo's folder: every move below goes through setFlags, and so through the evidence gate.
    const demoEnv = {
      DUAL_WRITE_MODE: 'memory-only',
      DUALWRITE_FLAGS_FILE: join(dir, 'flags.json'),
      DUALWRITE_LAST_FLAGS_PATH: join(dir, 'last-flags.json'),
      DUALWRITE_OUTBOX_PATH: join(dir, 'outbox.jsonl'),
    };
    runtime = await openDualWrite({
      db,
      memory,
      env: demoEnv,
      verifier: { enabled: false, graceMs: 50 },
      lease: false,
      logger: quietLogger(log),
    });
    const dw = runtime;
    const steps: DemoStep[] = [];
    const move = async (stage: Stage, readPercent: number, note: string) => {
      await dw.setFlags({ stage, readPercent }, { reason: note, principal: 'demo' });
      // The change is in force once the writes made before it have landed on both sides.
      const transition = await dw.stage.settled();
      if (transition.refused) throw new Error(`stage ${stage} refused: ${transition.refused}`);
    };
    // The API keeps serving: reads of every project, and a write, at each step.
    const serve = async (note: string) => {
      const { stage, readPercent } = dw.stage.current;
      const before = readCounts(dw);
      for (const project of await memory.graph.scanRecords('projects', { limit: 1000 }))
        await dw.graph.getProject(project);
      await dw.graph.upsertProject({ ecosystem: 'npm', name: `written-in-${stage}-${readPercent}`, description: note });
      const after = readCounts(dw);
      steps.push({
        stage,
        readPercent,
        note,
        readsFromPostgres: after.postgres - before.postgres,
        readsFromMemory: after.memory - before.memory,
      });
    };
    const step = async (stage: Stage, readPercent: number, note: string) => {
      await move(stage, readPercent, note);
      await serve(note);
    };

    await move('dual-write', 0, 'writes mirrored to PostgreSQL; reads from memory');
    // Backfilled before the API's reads: a read compared with a PostgreSQL that does not hold the
    // record yet is a shadow mismatch, and the gate counts every one in its window.
    log('backfilling PostgreSQL from memory, then verifying (read-shift waits for this) ...');
    const resynced = await dw.resyncPostgres({ batchSize: 1000 });
    const filled = resynced.backfill;
    const afterBackfill = resynced.verify;
    log(formatBackfillReport(filled));
    log(formatVerifyReport(afterBackfill, 5));
    await serve('writes mirrored to PostgreSQL; reads from memory');

    // The evidence gate wants a recent clean verification of the live process (the resync's counts),
    // and enough PostgreSQL calls and shadow comparisons, before reads move: first without the
    // calls and comparisons, then with them.
    const canary = { stage: 'read-shift', readPercent: 10 } as const;
    const refusal = await dw.setFlags(canary, { reason: 'canary', principal: 'demo' }).then(
      () => {
        throw new Error('the evidence gate let read-shift through without PostgreSQL calls or shadow comparisons');
      },
      (error: unknown) => {
        if (!(error instanceof EvidenceRefusedError)) throw error;
        return error.message;
      },
    );
    log(`evidence gate: ${refusal}`);
    const verified = await dw.verifyNow({ reason: 'evidence for read-shift', principal: 'demo' });
    log(
      `verified: ${verified?.consistent ? 'consistent' : 'DIFFERENCES'}; serving reads in dual-write until the gate has its PostgreSQL calls and shadow comparisons ...`,
    );
    const served = await serveUntilAllowed(dw, await memory.graph.scanRecords('projects', { limit: 1000 }), canary);
    const verdict = await dw.judge(canary);
    const shadowed = verdict.checks.find((check) => check.name === 'shadow-mismatches')?.detail;
    log(
      `${served} reads served, ${shadowed}; the gate now says: ${verdict.allowed ? 'allowed' : `refused (${verdict.refusal})`}`,
    );

    await step('read-shift', 10, 'sticky 10% of keys read from PostgreSQL');
    await step('read-shift', 50, 'sticky 50% of keys read from PostgreSQL');
    await step('read-shift', 100, 'all reads from PostgreSQL; memory still authoritative');
    await step('postgres-primary', 100, 'PostgreSQL authoritative; writes mirrored to memory');
    await step('dual-write', 0, 'rolled back by flag: memory authoritative again');
    const kept =
      (await memory.graph.getProject({ ecosystem: 'npm', name: 'written-in-postgres-primary-100' })) !== null;

    await dw.mirror.drain();
    const atEnd = await dw.verifier.runOnce();
    log(
      formatTable(
        ['stage', 'read %', 'reads from pg', 'reads from memory', 'what happens'],
        steps.map((s) => [s.stage, s.readPercent, s.readsFromPostgres, s.readsFromMemory, s.note]),
      ),
    );
    log(`a write made while PostgreSQL was primary is in memory after the rollback: ${kept ? 'yes' : 'NO'}`);
    log(formatVerifyReport(atEnd!, 5));
    const equal = afterBackfill.consistent && atEnd!.consistent && kept && filled.countsMatch;
    log(equal ? 'migration walked forward and back with both sides equal' : 'SOMETHING DIFFERS');
    const report = {
      database: description,
      steps,
      backfilled: filled.totals.copied,
      consistentAfterBackfill: afterBackfill.consistent,
      refusedAdvance: refusal,
      keptAfterRollback: kept,
      consistentAtEnd: atEnd!.consistent,
      equal,
    };
    if (options.serve) await options.serve(dw);
    return report;
  } finally {
    await runtime?.close();
    await db.close();
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * Reads the gate's evidence may take: at the default 5% sample rate its 100 shadow comparisons
 * come after about 2,000 reads, so this many means something other than traffic is missing.
 */
const MAX_EVIDENCE_READS = 40_000;

/**
 * The API's traffic while dual-write gathers evidence: reads of every project, round after
 * round, a sampled share of them compared with PostgreSQL, until the gate allows `to` (or
 * MAX_EVIDENCE_READS, after which the advance is refused with the reason). Returns the reads made.
 */
async function serveUntilAllowed(
  dw: DualWriteRuntime,
  projects: readonly ProjectRef[],
  to: { readonly stage: Stage; readonly readPercent: number },
): Promise<number> {
  let reads = 0;
  while (reads < MAX_EVIDENCE_READS && !(await dw.judge(to)).allowed) {
    for (const project of projects) await dw.graph.getProject(project);
    reads += projects.length;
    // A comparison is counted once it has finished.
    await dw.shadow.settle();
  }
  return reads;
}

function readCounts(dw: DualWriteRuntime): { memory: number; postgres: number } {
  return {
    memory: dw.metrics.readsFrom('graph', 'memory').value,
    postgres: dw.metrics.readsFrom('graph', 'postgres').value,
  };
}

/** The demo's own lines only; the runtime's warnings still show. */
function quietLogger(log: (line: string) => void): Pick<Console, 'info' | 'warn' | 'error'> {
  return { info: () => {}, warn: log, error: log };
}

async function dropSchema(options: PostgresPoolOptions): Promise<void> {
  const admin = new PgPoolExecutor({ ...options, schema: undefined, minSize: 0 });
  try {
    await admin.query(`DROP SCHEMA IF EXISTS ${options.schema} CASCADE`);
  } finally {
    await admin.close();
  }
}
