import { Command, CommanderError } from 'commander';
import type { Run } from './command-runner.js';
import { addAuditCommand } from './commands/audit.js';
import { addBackfillCommand } from './commands/backfill.js';
import { addDbCommands } from './commands/db.js';
import { addDemoCommand } from './commands/demo.js';
import { addJobsCommand } from './commands/jobs.js';
import { addMigrateCommand } from './commands/migrate.js';
import { addMigrateSqliteCommand } from './commands/migrate-sqlite.js';
import { addOutboxCommands } from './commands/outbox.js';
import { addRepairCommand } from './commands/repair.js';
import { addResyncCommand } from './commands/resync.js';
import { addServeCommand } from './commands/serve.js';
import { addStageCommands } from './commands/stage.js';
import { addStatusCommand } from './commands/status.js';
import { addVerifyCommand } from './commands/verify.js';
import { EXIT, EXIT_CODES_HELP, exitCodeOf } from './exit-codes.js';
import { packageVersion } from './package-version.js';

const ENVIRONMENT_HELP = `Environment:
  DUALWRITE_URL          admin API of the running process (default http://127.0.0.1:8080; --url overrides it)
  DUALWRITE_ADMIN_TOKEN  its bearer token (never printed)
  DATABASE_URL           PostgreSQL for serve, migrate, migrate-sqlite, demo, db, backfill and verify/repair of snapshot files
                         (unset: embedded PGlite); POSTGRES_* and the runtime's variables: see README
  DUALWRITE_ALLOW_RESET  1 lets db reset-test replace a database whose name does not say it is a test one`;

/**
 * The dualwrite command line. Every command and group answers --help; unknown commands and
 * options, missing and bad values are usage errors (exit 2). Handlers are given `run`,
 * which records the exit code their action resolves to.
 */
export function buildProgram(run: Run): Command {
  const program = new Command('dualwrite')
    .description(
      "Move an API's in-memory stores to PostgreSQL: serve the example API, migrate, backfill, verify and repair, and move or roll back a running process's stage.",
    )
    .version(packageVersion(), '-V, --version', 'print the version')
    // Set before the commands are added, so that they inherit both.
    .exitOverride()
    // A command's options are its own wherever they stand: `repair undo ID --reason x` gives the reason to undo, not to repair.
    .enablePositionalOptions()
    .showHelpAfterError('(add --help for usage)')
    .addHelpText('after', `\n${ENVIRONMENT_HELP}\n\n${EXIT_CODES_HELP}`);
  addServeCommand(program, run);
  addMigrateCommand(program, run);
  addMigrateSqliteCommand(program, run);
  addDemoCommand(program, run);
  addBackfillCommand(program, run);
  addVerifyCommand(program, run);
  addRepairCommand(program, run);
  addResyncCommand(program, run);
  addStageCommands(program, run);
  addStatusCommand(program, run);
  addOutboxCommands(program, run);
  addAuditCommand(program, run);
  addJobsCommand(program, run);
  addDbCommands(program, run);
  return program;
}

/**
 * Runs the command line `argv` (without node and the script) and resolves to the exit code:
 * the handler's, or the one its error calls for, after saying on stderr what went wrong.
 */
export async function runCli(argv: readonly string[]): Promise<number> {
  let exitCode: number = EXIT.ok;
  let commandName = 'dualwrite';
  const run: Run =
    (handler) =>
    async (...args) => {
      exitCode = await handler(...args);
    };
  const program = buildProgram(run);
  program.hook('preAction', (_program, command) => void (commandName = fullName(command)));
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return exitCode;
  } catch (error) {
    // Commander has printed its own message (and the help hint) already.
    if (!(error instanceof CommanderError))
      process.stderr.write(`${commandName}: ${error instanceof Error ? error.message : String(error)}\n`);
    return exitCodeOf(error);
  }
}

/** "dualwrite stage set": the command's name with its parents'. */
function fullName(command: Command): string {
  return command.parent ? `${fullName(command.parent)} ${command.name()}` : command.name();
}
