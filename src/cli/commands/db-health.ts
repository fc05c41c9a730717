import type { Command } from 'commander';
import { connectionTarget } from '../../postgres/operations/connection-target.js';
import { unhealthyReasons } from '../../postgres/operations/health-verdict.js';
import { loadMigrations } from '../../postgres/migrations.js';
import { readSchemaVersion, type SchemaVersion } from '../../postgres/operations/schema-version.js';
import { openServerConnection } from '../../postgres/operations/server-connection.js';
import type { ServerHealth } from '../../ports/database-health.js';
import { readServerHealth } from '../../postgres/operations/server-health.js';
import { poolOptionsFromEnv } from '../../runtime/config.js';
import type { Run } from '../command-runner.js';
import { EXIT } from '../exit-codes.js';
import { jsonOption, type JsonOption } from '../options.js';
import { printResult } from '../output.js';
import { formatFields } from '../table.js';
import { dbCommandError } from './db-errors.js';

interface HealthReport {
  readonly healthy: boolean;
  readonly reasons: readonly string[];
  readonly server: ServerHealth;
  readonly migrations: SchemaVersion;
}

/** `dualwrite db health`: the server's state and the schema's, exit 1 with the reasons when unhealthy, 3 when unreachable. */
export function addDbHealthCommand(db: Command, run: Run): void {
  db.command('health')
    .summary('reachability, versions, size, disk, connections, replicas, migrations')
    .description(
      'check DATABASE_URL: reachable, server version, database size, free disk (when visible), connections against max_connections, replica lag, migrations applied against shipped; exit 1 with the reasons when unhealthy (migrations pending, connections or disk above 90%), 3 when unreachable',
    )
    .addOption(jsonOption())
    .action(
      run(async (options: JsonOption) => {
        const pool = poolOptionsFromEnv();
        let report: HealthReport;
        try {
          // A connection of its own, not openCliDatabase: that would apply the very migrations health reports missing.
          const db = await openServerConnection(connectionTarget(pool.connectionString), pool.sslMode, {
            schema: pool.schema,
            connectTimeoutMs: pool.connectTimeoutMs,
          });
          try {
            const server = await readServerHealth(db);
            const migrations = await readSchemaVersion(db, await loadMigrations());
            const reasons = unhealthyReasons(server, migrations);
            report = { healthy: reasons.length === 0, reasons, server, migrations };
          } finally {
            await db.close();
          }
        } catch (error) {
          throw dbCommandError(error, pool.connectionString);
        }
        printResult(options.json, report, formatHealth);
        return report.healthy ? EXIT.ok : EXIT.failed;
      }),
    );
}

function formatHealth(report: HealthReport): string {
  const { server, migrations } = report;
  const fields = formatFields([
    ['status', report.healthy ? 'HEALTHY' : 'UNHEALTHY'],
    ['server version', server.version],
    ['database size', megabytes(server.databaseBytes)],
    [
      'disk',
      server.disk
        ? `${megabytes(server.disk.freeBytes)} free of ${megabytes(server.disk.totalBytes)}`
        : 'not visible from here',
    ],
    ['connections', `${server.connections.used} of ${server.connections.max}`],
    [
      'replicas',
      server.replicas.length === 0
        ? 'none'
        : server.replicas.map((replica) => `${replica.name} ${replica.lagSeconds.toFixed(1)} s behind`).join(', '),
    ],
    [
      'migrations',
      `${migrations.applied.length} applied of ${migrations.available.length} (schema version ${migrations.current})`,
    ],
  ]);
  return report.reasons.length === 0
    ? fields
    : `${fields}\n\n${report.reasons.map((reason) => `unhealthy: ${reason}`).join('\n')}`;
}

function megabytes(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}
