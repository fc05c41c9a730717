import type { SchemaVersion } from './schema-version.js';
import type { ServerHealth } from '../../ports/database-health.js';

/** Above this share of max_connections, or of the data disk used, the server is unhealthy: new connections or writes are about to fail. */
export const HEALTH_LIMIT = 0.9;

/** Why the database is unhealthy, one reason a line; empty when it is healthy. */
export function unhealthyReasons(health: ServerHealth, schema: SchemaVersion): string[] {
  const reasons: string[] = [];
  if (schema.pending.length > 0)
    reasons.push(
      `${schema.pending.length} migration(s) not applied: ${schema.pending.join(', ')} (run dualwrite migrate)`,
    );
  const { used, max } = health.connections;
  if (used > max * HEALTH_LIMIT)
    reasons.push(`connections ${used} of max_connections ${max}, above ${HEALTH_LIMIT * 100}%`);
  if (health.disk) {
    const usedShare = 1 - health.disk.freeBytes / health.disk.totalBytes;
    if (usedShare > HEALTH_LIMIT)
      reasons.push(`data disk ${(usedShare * 100).toFixed(1)}% full, above ${HEALTH_LIMIT * 100}%`);
  }
  return reasons;
}
