import type { Command } from 'commander';
import { connectionTarget } from '../../postgres/operations/connection-target.js';
import { poolOptionsFromEnv } from '../../runtime/config.js';
import type { Run } from '../command-runner.js';
import { EXIT } from '../exit-codes.js';
import { jsonOption, type JsonOption } from '../options.js';
import { printResult } from '../output.js';
import { formatFields } from '../table.js';

/** `dualwrite db info`: where DATABASE_URL points and the pool settings in force, without connecting; the password is shown as ***. */
export function addDbInfoCommand(db: Command, run: Run): void {
  db.command('info')
    .summary('where DATABASE_URL points and the pool settings (no password)')
    .description(
      'show host, port, database, user, SSL mode and the pool settings in force (from DATABASE_URL and POSTGRES_*); the password is never printed',
    )
    .addOption(jsonOption())
    .action(
      run(async (options: JsonOption) => {
        const pool = poolOptionsFromEnv();
        const { host, port, database, user, password } = connectionTarget(pool.connectionString);
        const info = {
          host,
          port,
          database,
          user,
          password: password === undefined ? null : '***',
          sslMode: pool.sslMode,
          schema: pool.schema ?? null,
          pool: {
            size: pool.poolSize,
            maxOverflow: pool.maxOverflow,
            max: pool.poolSize + pool.maxOverflow,
            minSize: pool.minSize,
            maxQueriesPerConnection: pool.maxQueriesPerConnection,
            idleLifetimeSeconds: pool.idleLifetimeSeconds,
            statementTimeoutMs: pool.statementTimeoutMs,
            connectTimeoutMs: pool.connectTimeoutMs,
          },
        };
        printResult(options.json, info, (i) =>
          formatFields([
            ['host', i.host],
            ['port', i.port],
            ['database', i.database],
            ['user', i.user],
            ['password', i.password ?? '(none)'],
            ['SSL mode', i.sslMode],
            ['schema', i.schema ?? "(server's search_path)"],
            [
              'pool',
              `${i.pool.size} + ${i.pool.maxOverflow} overflow = ${i.pool.max} max, ${i.pool.minSize} kept open`,
            ],
            ['max queries', `${i.pool.maxQueriesPerConnection} per connection`],
            ['idle lifetime', `${i.pool.idleLifetimeSeconds} s`],
            ['statement timeout', i.pool.statementTimeoutMs === 0 ? 'none' : `${i.pool.statementTimeoutMs} ms`],
            ['connect timeout', `${i.pool.connectTimeoutMs} ms`],
          ]),
        );
        return EXIT.ok;
      }),
    );
}
