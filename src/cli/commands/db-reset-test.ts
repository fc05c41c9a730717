import type { Command } from 'commander';
import { fileURLToPath } from 'node:url';
import { connectionTarget } from '../../postgres/operations/connection-target.js';
import { poolOptionsFromEnv, testResetAllowed } from '../../runtime/config.js';
import type { Run } from '../command-runner.js';
import { CliError, EXIT } from '../exit-codes.js';
import { jsonOption, type JsonOption } from '../options.js';
import { printResult } from '../output.js';
import { formatRestore, runRestore } from './db-restore.js';

/** The standard test snapshot (fixtures/make-sample-dump.ts made it from the sample data), with its metadata.json beside it. */
export const SAMPLE_DUMP = fileURLToPath(new URL('../../../fixtures/sample.dump', import.meta.url));

/** A database name that says it is a test database: "test", "app_test", "test_42", "dw_test_db_x". */
const TEST_DATABASE_NAME = /(^|_)test(_|$)/;

/** `dualwrite db reset-test`: the standard snapshot in place of a test database, whatever it held. */
export function addDbResetTestCommand(db: Command, run: Run): void {
  db.command('reset-test')
    .summary('replace a test database with the standard snapshot')
    .description(
      "replace DATABASE_URL's database with the standard test snapshot (fixtures/sample.dump), whatever it holds; refused unless the database name contains test as a word (test, app_test, test_1) or DUALWRITE_ALLOW_RESET=1",
    )
    .addOption(jsonOption())
    .action(
      run(async (options: JsonOption) => {
        const pool = poolOptionsFromEnv();
        const { database } = connectionTarget(pool.connectionString);
        if (!TEST_DATABASE_NAME.test(database) && !testResetAllowed()) {
          throw new CliError(
            EXIT.failed,
            `${database} is not named as a test database (${TEST_DATABASE_NAME}): refusing to reset it; set DUALWRITE_ALLOW_RESET=1 to reset it anyway`,
          );
        }
        const started = performance.now();
        // The database replaced is test data being thrown away: dropped, not kept aside.
        const report = await runRestore({ database: pool, file: SAMPLE_DUMP, force: true, dropReplaced: true });
        const result = { ...report, durationMs: Math.round(performance.now() - started) };
        printResult(options.json, result, (r) => `${formatRestore(r)}\nreset in ${(r.durationMs / 1000).toFixed(1)} s`);
        return EXIT.ok;
      }),
    );
}
