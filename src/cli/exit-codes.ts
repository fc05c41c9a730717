import { CommanderError } from 'commander';
import { ConfigError } from '../runtime/config.js';
import { DualWriteError } from '../domain/errors.js';

/**
 * The dualwrite CLI's exit codes, the same for every command:
 *
 * - 0 `ok`: the command did what it was asked (verify: the sides are equal).
 * - 1 `failed`: it ran and the answer is no: differences found, counts differ after a
 *   backfill, a stage change refused (by a safety rule, or not in force yet), a repair that
 *   left differences, or the process refused the request (a verification skipped, flags
 *   owned by Unleash, an outbox replay that stopped at a failure), or any other failure.
 * - 2 `usage`: the command line or the environment is wrong (an unknown command or option,
 *   a missing or bad value, a missing snapshot file, a bad environment variable); nothing
 *   was done.
 * - 3 `unreachable`: the admin API or the database could not be reached, or refused the
 *   admin token; nothing was done.
 * - 130 `interrupted`: stopped by Ctrl-C (SIGINT); a backfill resumes when run again.
 */
export const EXIT = { ok: 0, failed: 1, usage: 2, unreachable: 3, interrupted: 130 } as const;
export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** The exit codes as `dualwrite --help` prints them. */
export const EXIT_CODES_HELP = `Exit codes:
  0    success (verify: the sides are equal)
  1    the answer is no: differences found, counts differ, a stage change refused or not in
       force yet, a repair that left differences, a request the process refused, any other failure
  2    usage error: unknown command or option, bad or missing value, bad environment variable
  3    the admin API or the database could not be reached, or the admin token was refused
  130  interrupted (Ctrl-C); run the same backfill again to resume`;

/** A failure the CLI explains itself: `message` is printed as it is, then the process exits with `exitCode`. */
export class CliError extends DualWriteError {
  constructor(
    readonly exitCode: ExitCode,
    message: string,
  ) {
    super(message);
  }
}

/** The exit code for an error that ended a command. */
export function exitCodeOf(error: unknown): number {
  if (error instanceof CliError) return error.exitCode;
  // Commander's own: help and --version end with 0, everything else is a usage error.
  if (error instanceof CommanderError) return error.exitCode === 0 ? EXIT.ok : EXIT.usage;
  if (error instanceof ConfigError) return EXIT.usage;
  return EXIT.failed;
}
