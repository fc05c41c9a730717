import { Option, type Command } from 'commander';
import type { Run } from '../command-runner.js';
import { unreachableOr } from '../database.js';
import { EXIT } from '../exit-codes.js';
import { integerIn, jsonOption, type JsonOption } from '../options.js';
import { printResult } from '../output.js';

interface DemoOptions extends JsonOption {
  readonly projects?: number;
}

/** `dualwrite demo`: the migration walked forward and back on a sample workload. */
export function addDemoCommand(program: Command, run: Run): void {
  program
    .command('demo')
    .summary('walk a sample workload through every stage and back, comparing both sides')
    .description(
      'mirror a sample workload into memory and PostgreSQL, backfill, verify, shift reads, make PostgreSQL primary and roll back, comparing both sides (embedded PGlite, or DATABASE_URL in schema dualwrite_demo, emptied first); exit 1 when they differ',
    )
    .addOption(new Option('--projects <n>', 'sample size in projects (default 200)').argParser(integerIn(1)))
    .addOption(jsonOption())
    .action(
      run(async (options: DemoOptions) => {
        // Loaded here: the whole runtime takes a second to import, which every other command would pay.
        const { runDemo } = await import('../../demo.js');
        // The demo's narration is for people: with --json only the report is printed.
        const report = await runDemo({ projects: options.projects, log: options.json ? () => {} : (line) => process.stdout.write(`${line}\n`) }).catch((error: unknown) => {
          throw unreachableOr(error);
        });
        if (options.json) printResult(true, report, String);
        return report.equal ? EXIT.ok : EXIT.failed;
      }),
    );
}
