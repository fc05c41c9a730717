import { Option, type Command } from 'commander';
import type { Run } from '../command-runner.js';
import { unreachableOr } from '../database.js';
import { EXIT } from '../exit-codes.js';
import { integerIn } from '../options.js';

interface ServeOptions {
  readonly port?: number;
  readonly host?: string;
}

/** `dualwrite serve`: the example HTTP API over a dual-write runtime, until SIGTERM or Ctrl-C. */
export function addServeCommand(program: Command, run: Run): void {
  program
    .command('serve')
    .summary('run the example HTTP API over a dual-write runtime')
    .description(
      'run the example HTTP API over a dual-write runtime, configured from the environment (see README); SIGTERM or Ctrl-C stops it gracefully',
    )
    .addOption(
      new Option('--port <port>', 'port to listen on, 0 for any free one (default: $PORT, else 8080)').argParser(
        integerIn(0, 65535),
      ),
    )
    .addOption(new Option('--host <address>', 'address to listen on (default: $HOST, else 127.0.0.1)'))
    .action(
      run(async (options: ServeOptions) => {
        // Loaded here: the API and the runtime under it take a second to import, which every other command would pay.
        const { serve } = await import('../../api/serve.js');
        try {
          // Resolves once listening; serve() then owns the process until its shutdown signal.
          await serve({ port: options.port, host: options.host });
        } catch (error) {
          throw unreachableOr(error);
        }
        return EXIT.ok;
      }),
    );
}
