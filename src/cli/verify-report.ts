import type { VerifyReport } from '../../verifier/verify.js';
import { formatTable } from './table.js';

/** The verify report for people: a table per entity, then the first differences. */
export function formatVerifyReport(report: VerifyReport, shown = 20): string {
  const table = formatTable(
    [
      'store',
      'entity',
      'memory',
      'postgres',
      'missing in pg',
      'missing in memory',
      'fields differ',
      'transient',
      'consistency',
    ],
    report.entities.map((e) => [
      e.store,
      e.entity,
      e.rowsMemory,
      e.rowsPostgres,
      e.differences.missing_in_postgres,
      e.differences.missing_in_memory,
      e.differences.fields_differ,
      e.transient,
      e.consistencyRatio.toFixed(6),
    ]),
  );
  const lines = report.differences
    .slice(0, shown)
    .map(
      (d) =>
        `  ${d.store}.${d.entity} ${JSON.stringify(d.key)}: ${d.kind}${d.fields ? ` (${d.fields.join(', ')})` : ''}`,
    );
  const more =
    report.differences.length > shown ? [`  ... and ${report.differences.length - shown} more (see --json)`] : [];
  const verdict = report.consistent ? 'CONSISTENT' : 'DIFFERENCES FOUND';
  return [table, '', `${verdict} in ${report.seconds.toFixed(2)} s`, ...lines, ...more].join('\n');
}
