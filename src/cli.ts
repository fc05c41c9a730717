#!/usr/bin/env node
import { runDemo } from './demo.js';
import { openDatabase } from './postgres/open-database.js';

const USAGE = `usage: dualwrite <command> [options]

commands:
  migrate            apply pending schema/ migrations to DATABASE_URL (or embedded PGlite)
  demo [--projects N] [--json]
                     mirror a sample workload into memory and PostgreSQL and compare them
  help               this text

environment: DATABASE_URL, POSTGRES_POOL_SIZE, POSTGRES_MAX_OVERFLOW, ... (see README)`;

type Command = (args: string[]) => Promise<number>;

const COMMANDS: Record<string, Command> = {
  async migrate() {
    const { db, description, migrations } = await openDatabase();
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
  async help() {
    console.log(USAGE);
    return 0;
  },
};

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

