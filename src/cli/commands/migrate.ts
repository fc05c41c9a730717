import type { Command } from 'commander';
import type { Run } from '../command-runner.js';
import { openCliDatabase } from '../database.js';
import { EXIT } from '../exit-codes.js';
import { jsonOption, type JsonOption } from '../options.js';
import { printResult } from '../output.js';

/** `dualwrite migrate`: applies pending schema/ migrations. */
export function addMigrateCommand(program: Command, run: Run): void {
  program
    .command('migrate')
    .summary('apply pending schema migrations')
    .description('apply pending schema/ migrations to DATABASE_URL (or embedded PGlite); re-running applies nothing')
    .addOption(jsonOption())
    .action(
      run(async (options: JsonOption) => {
        const { db, description, migrations } = await openCliDatabase();
        await db.close();
        const result = {
          database: description,
          applied: migrations.applied.map((m) => m.name),
          alreadyApplied: migrations.alreadyApplied.map((m) => m.name),
        };
        printResult(
          options.json,
          result,
          (r) =>
            `${r.database}: applied ${r.applied.length} (${r.applied.join(', ') || 'none'}), already applied ${r.alreadyApplied.length}`,
        );
        return EXIT.ok;
      }),
    );
}
