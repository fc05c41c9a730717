import { InvalidArgumentError, Option, type Command } from 'commander';
import { httpUrlProblem } from '../runtime/config.js';

/**
 * Options several commands share, built fresh for each command (commander keeps state on
 * an Option), and the parsers that reject a bad value before the command runs (exit 2).
 */

/** `--json`: what a machine reads. */
export interface JsonOption {
  readonly json?: boolean;
}

/** `--url`: the admin API of a running process. */
export interface AdminOptions extends JsonOption {
  readonly url?: string;
}

/** `--graph-snapshot`, `--tasks-snapshot`: snapshot files of the in-memory stores. */
export interface SnapshotOptions {
  readonly graphSnapshot?: string;
  readonly tasksSnapshot?: string;
}

/** A command that works on a running process, or on snapshot files when it is given them. */
export type ProcessOrSnapshotOptions = AdminOptions & SnapshotOptions;

export function jsonOption(): Option {
  return new Option('--json', 'print the result as JSON on stdout, for scripts (and no progress on stderr)');
}

export function urlOption(): Option {
  return new Option(
    '--url <url>',
    'admin API of the running process (default: $DUALWRITE_URL, else http://127.0.0.1:8080; token from $DUALWRITE_ADMIN_TOKEN)',
  ).argParser((raw: string) => {
    const problem = httpUrlProblem(raw);
    if (problem) throw new InvalidArgumentError(problem);
    return raw;
  });
}

/** Adds --url and --json: a command that asks a running process through its admin API. */
export function withAdminOptions(command: Command): Command {
  return command.addOption(urlOption()).addOption(jsonOption());
}

/** Adds --url and --json, and the snapshot file options, which exclude --url: a command that works on a running process or on snapshot files. */
export function withProcessOrSnapshotOptions(command: Command): Command {
  withAdminOptions(command);
  for (const option of snapshotFileOptions()) command.addOption(option.conflicts('url'));
  return command;
}

export function snapshotFileOptions(): Option[] {
  return [
    new Option(
      '--graph-snapshot <file>',
      'snapshot file of the graph store (projects, edges, contributors, assets, contributions)',
    ),
    new Option('--tasks-snapshot <file>', 'snapshot file of the agent task store'),
  ];
}

/** A parser of whole numbers from `min` to `max`. */
export function integerIn(min: number, max = Number.MAX_SAFE_INTEGER): (raw: string) => number {
  return (raw) => {
    const value = Number(raw);
    if (!/^\d+$/.test(raw) || !Number.isSafeInteger(value) || value < min || value > max) {
      throw new InvalidArgumentError(
        max === Number.MAX_SAFE_INTEGER ? `must be an integer >= ${min}` : `must be an integer from ${min} to ${max}`,
      );
    }
    return value;
  };
}

/** A parser of free text that must say something (a reason recorded with a change). */
export function nonBlank(raw: string): string {
  if (raw.trim() === '') throw new InvalidArgumentError('must not be blank');
  return raw;
}
