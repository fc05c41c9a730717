#!/usr/bin/env node
import { runDemo } from './demo.js';
import { MemoryAgentTaskStore } from './memory/memory-agent-task-store.js';
import { MemoryGraphStore } from './memory/memory-graph-store.js';
import { openDatabase } from './postgres/open-database.js';
import { databaseConfig } from './runtime/config.js';
import { PostgresAgentTaskStore } from './postgres/postgres-agent-task-store.js';
import { PostgresGraphStore } from './postgres/postgres-graph-store.js';
import { graphTarget, taskTarget, type AnyTarget } from '../verifier/entities.js';
import { backfill } from '../verifier/backfill.js';
import { formatBackfillReport } from './cli/backfill-report.js';
import { createProgressReporter } from '../verifier/progress.js';
import { repair } from '../verifier/repair.js';
import { formatVerifyReport } from './cli/verify-report.js';
import { verify } from '../verifier/verify.js';

const USAGE = `usage: dualwrite <command> [options]

commands:
  migrate            apply pending schema/ migrations to DATABASE_URL (or embedded PGlite)
  demo [--projects N] [--json]
                     mirror a sample workload into memory and PostgreSQL and compare them
  backfill --graph-snapshot FILE [--tasks-snapshot FILE] [--batch-size N] [--restart] [--json]
                     copy snapshot files into PostgreSQL: batched, resumable, never
                     overwriting a row already there; exit 1 when counts differ
  verify --graph-snapshot FILE [--tasks-snapshot FILE] [--repair] [--json]
                     compare in-memory snapshot files with PostgreSQL; exit 1 when they
                     differ; --repair copies the snapshot's version onto PostgreSQL (fenced)
  help               this text

environment: DATABASE_URL, POSTGRES_POOL_SIZE, POSTGRES_MAX_OVERFLOW, ... (see README)`;

type Command = (args: string[]) => Promise<number>;

const COMMANDS: Record<string, Command> = {
  async migrate() {
    const { db, description, migrations } = await openDatabase(databaseConfig());
    await db.close();
    console.log(`${description}: applied ${migrations.applied.length} (${migrations.applied.map((m) => m.name).join(', ') || 'none'}), already applied ${migrations.alreadyApplied.length}`);
    return 0;
  },
  async demo(args) {
    const json = args.includes('--json');
    const report = await runDemo({ projects: numberFlag(args, '--projects'), log: json ? () => {} : console.log });
    if (json) console.log(JSON.stringify(report, null, 2));
    return report.equal ? 0 : 1;
  },
  async backfill(args) {
    const graphSnapshot = stringFlag(args, '--graph-snapshot');
    const tasksSnapshot = stringFlag(args, '--tasks-snapshot');
    if (!graphSnapshot && !tasksSnapshot) throw new TypeError('backfill needs --graph-snapshot and/or --tasks-snapshot');
    const json = args.includes('--json');
    // A store without a snapshot is an empty source: nothing of it is copied.
    const source = {
      graph: await MemoryGraphStore.open({ snapshotPath: graphSnapshot }),
      tasks: await MemoryAgentTaskStore.open({ snapshotPath: tasksSnapshot }),
    };
    const { db, description } = await openDatabase(databaseConfig());
    const progress = createProgressReporter();
    try {
      const report = await backfill({ source, db, batchSize: numberFlag(args, '--batch-size'), restart: args.includes('--restart'), onProgress: json ? undefined : progress.onProgress });
      progress.finish();
      console.log(json ? JSON.stringify({ database: description, report }, null, 2) : `${description}\n${formatBackfillReport(report)}`);
      return report.countsMatch ? 0 : 1;
    } finally {
      await db.close();
    }
  },
  async verify(args) {
    const graphSnapshot = stringFlag(args, '--graph-snapshot');
    const tasksSnapshot = stringFlag(args, '--tasks-snapshot');
    if (!graphSnapshot && !tasksSnapshot) throw new TypeError('verify needs --graph-snapshot and/or --tasks-snapshot');
    const json = args.includes('--json');
    const { db, description } = await openDatabase(databaseConfig());
    try {
      const targets: AnyTarget[] = [];
      if (graphSnapshot) targets.push(graphTarget(await MemoryGraphStore.open({ snapshotPath: graphSnapshot }), new PostgresGraphStore(db)));
      if (tasksSnapshot) targets.push(taskTarget(await MemoryAgentTaskStore.open({ snapshotPath: tasksSnapshot }), new PostgresAgentTaskStore(db)));
      const progress = json ? undefined : (e: { store: string; entity: string; rowsChecked: number; rows: number }) => process.stderr.write(`\rverifying ${e.store}.${e.entity}: ${e.rowsChecked}/${e.rows} rows   `);
      // A snapshot does not change under us, so there is nothing to wait for before re-checks.
      const report = await verify(db, targets, { graceMs: 0, recheckRounds: 1, onProgress: progress });
      if (progress) process.stderr.write('\n');
      const repairs = args.includes('--repair') && !report.consistent ? await repair(report.differences, { authoritative: 'memory', db, targets }) : [];
      if (json) console.log(JSON.stringify({ database: description, report, repairs: repairs.map((r) => ({ key: r.difference.key, entity: r.difference.entity, outcome: r.outcome })) }, null, 2));
      else {
        console.log(`${description}\n${formatVerifyReport(report)}`);
        if (repairs.length) console.log(`repairs: ${repairs.filter((r) => r.outcome === 'repaired').length} repaired, ${repairs.filter((r) => r.outcome !== 'repaired').length} skipped`);
      }
      return report.consistent ? 0 : 1;
    } finally {
      await db.close();
    }
  },
  async help() {
    console.log(USAGE);
    return 0;
  },
};

function stringFlag(args: string[], name: string): string | undefined {
  const index = args.indexOf(name);
  if (index === -1) return undefined;
  const value = args[index + 1];
  if (!value || value.startsWith('--')) throw new TypeError(`${name} needs a value`);
  return value;
}

function numberFlag(args: string[], name: string): number | undefined {
  const index = args.indexOf(name);
  if (index === -1) return undefined;
  const value = Number(args[index + 1]);
  if (!Number.isInteger(value) || value < 1) throw new TypeError(`${name} must be a positive integer, got ${JSON.stringify(args[index + 1])}`);
  return value;
}

const [name = 'help', ...rest] = process.argv.slice(2);
const command = COMMANDS[name];
if (!command) {
  console.error(`unknown command ${JSON.stringify(name)}\n\n${USAGE}`);
  process.exitCode = 2;
} else {
  command(rest).then(
    (code) => (process.exitCode = code),
    (error: unknown) => {
      console.error(`dualwrite ${name}: ${error instanceof Error ? error.message : String(error)}`);
      process.exitCode = 1;
    },
  );
}

