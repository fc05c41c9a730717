import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import type { Command } from 'commander';
import { buildProgram } from '../../src/cli/program.js';
import { runCli } from './cli-harness.js';

/** What every command shares, needing no server: help, the version, usage errors (exit 2). */
describe('dualwrite command line', () => {
  const COMMANDS = [
    'serve',
    'migrate',
    'demo',
    'backfill',
    'verify',
    'repair',
    'stage',
    'stage show',
    'stage set',
    'stage gate',
    'rollback',
    'status',
    'outbox',
    'outbox show',
    'outbox replay',
    'audit',
    'jobs',
    'resync',
    'migrate-sqlite',
  ];

  it('--help lists the commands, the environment and the exit codes', async () => {
    const help = await runCli(['--help']);
    expect(help).toMatchObject({ code: 0, stderr: '' });
    for (const name of [
      'serve',
      'migrate',
      'demo',
      'backfill',
      'verify',
      'repair',
      'stage',
      'rollback',
      'status',
      'outbox',
      'audit',
    ])
      expect(help.stdout).toMatch(new RegExp(`^  ${name} `, 'm'));
    expect(help.stdout).toContain('DUALWRITE_ADMIN_TOKEN');
    expect(help.stdout).toMatch(/^Exit codes:\n  0 .*\n  1 [\s\S]*\n  2 .*\n  3 .*\n  130 /m);
  });

  it('every command answers --help with its own usage and options', async () => {
    // In process: one help text per command, without starting a process for each.
    const program = buildProgram(() => async () => {});
    const helpOf = (command: string) => {
      const found = command
        .split(' ')
        .reduce<Command | undefined>((parent, name) => parent?.commands.find((c) => c.name() === name), program);
      expect(found, command).toBeDefined();
      return found!.helpInformation();
    };
    for (const command of COMMANDS) expect(helpOf(command)).toContain(`Usage: dualwrite ${command} `);
    expect((await runCli(['stage', 'set', '--help'])).stdout).toBe(helpOf('stage set'));
    expect(helpOf('stage set')).toMatch(
      /--percent <n>[\s\S]*--force[\s\S]*--reason <text>[\s\S]*--url <url>[\s\S]*--json/,
    );
    expect(helpOf('backfill')).toMatch(/--graph-snapshot <file>[\s\S]*--batch-size <n>[\s\S]*--restart/);
    expect(helpOf('verify')).toMatch(/--url <url>[\s\S]*--graph-snapshot <file>/);
  });

  it('--version prints the version of package.json', async () => {
    const { version } = JSON.parse(await readFile('package.json', 'utf8')) as { version: string };
    expect(await runCli(['--version'])).toEqual({ code: 0, stdout: `${version}\n`, stderr: '' });
  });

  it('rejects unknown commands, unknown options, stray arguments and bad values with exit 2, doing nothing', async () => {
    const cases: [string[], string][] = [
      [['frobnicate'], "unknown command 'frobnicate'"],
      [['status', '--frob'], "unknown option '--frob'"],
      [['verify', 'extra'], 'too many arguments'],
      [['backfill', '--graph-snapshot', 'g.json', '--batch-size', '0'], 'must be an integer >= 1'],
      [['status', '--url', 'ftp://host'], 'must be an http:// or https:// URL'],
      [['status', '--url', 'http://admin:pw@host'], 'must not contain a user or password'],
      [['stage'], 'Usage: dualwrite stage'],
    ];
    const results = await Promise.all(cases.map(([args]) => runCli(args, { DUALWRITE_URL: 'http://127.0.0.1:9' })));
    for (const [index, [args, message]] of cases.entries()) {
      expect({ args, code: results[index]!.code, stdout: results[index]!.stdout }).toEqual({
        args,
        code: 2,
        stdout: '',
      });
      expect(results[index]!.stderr).toContain(message);
    }
  });

  it('serve with a bad PORT is a usage error naming the variable, before anything is opened', async () => {
    const result = await runCli(['serve'], { PORT: 'eighty' });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('PORT must be an integer from 0 to 65535, got "eighty"');
  });

  it('a bad DUALWRITE_URL is a usage error naming the variable', async () => {
    const result = await runCli(['status'], { DUALWRITE_URL: 'localhost:8080' });
    expect(result).toMatchObject({
      code: 2,
      stderr: 'dualwrite status: DUALWRITE_URL must be an http:// or https:// URL, got "localhost:8080"\n',
    });
  });
});
