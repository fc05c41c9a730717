import { randomBytes } from 'node:crypto';
import { Option, type Command } from 'commander';
import type { DualWriteRuntime } from '../../runtime/dual-write-runtime.js';
import type { Run } from '../command-runner.js';
import { unreachableOr } from '../database.js';
import { EXIT } from '../exit-codes.js';
import { integerIn, jsonOption, type JsonOption } from '../options.js';
import { printNote, printResult } from '../output.js';

interface DemoOptions extends JsonOption {
  readonly projects?: number;
  readonly serve?: boolean;
  readonly port?: number;
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
    .addOption(
      new Option(
        '--serve',
        'after the walk, keep the example API and its status page up until Ctrl-C, printing their URLs and tokens',
      ),
    )
    .addOption(
      new Option('--port <n>', 'with --serve: the port (default 8080; 0 picks a free one)').argParser(
        integerIn(0, 65535),
      ),
    )
    .addOption(jsonOption())
    .action(
      run(async (options: DemoOptions) => {
        // Loaded here: the whole runtime takes a second to import, which every other command would pay.
        const { runDemo } = await import('../demo/demo.js');
        // The demo's narration is for people: with --json only the report is printed.
        const serve = options.serve
          ? (runtime: DualWriteRuntime) => serveUntilInterrupted(runtime, options.port ?? 8080)
          : undefined;
        const report = await runDemo({
          projects: options.projects,
          serve,
          log: options.json ? () => {} : (line) => process.stdout.write(`${line}\n`),
        }).catch((error: unknown) => {
          throw unreachableOr(error);
        });
        if (options.json) printResult(true, report, String);
        return report.equal ? EXIT.ok : EXIT.failed;
      }),
    );
}

/**
 * The example API and its status page over the demo's runtime, with tokens made for this
 * run (printed, since the person running the demo needs them), until SIGINT or SIGTERM.
 */
async function serveUntilInterrupted(runtime: DualWriteRuntime, port: number): Promise<void> {
  const { buildApi } = await import('../../api/app.js');
  const adminToken = randomBytes(18).toString('hex');
  const statusToken = randomBytes(18).toString('hex');
  const app = buildApi({ graph: runtime.graph, tasks: runtime.tasks, runtime, adminToken, statusToken });
  const url = await app.listen({ port, host: '127.0.0.1' });
  printNote(
    [
      `example API:  ${url}`,
      `status page:  ${url}/status?token=${statusToken}`,
      `admin token:  export DUALWRITE_URL=${url} DUALWRITE_ADMIN_TOKEN=${adminToken}   (then: dualwrite status, stage set, rollback, ...)`,
      'Ctrl-C stops it',
    ].join('\n'),
  );
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await app.close();
}
