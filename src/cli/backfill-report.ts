import type { BackfillReport } from '../../verifier/backfill.js';
import { formatTable } from './table.js';

/** The report as an aligned table for people, with a closing verdict line. */
export function formatBackfillReport(report: BackfillReport): string {
  const number = (value: number) => value.toLocaleString('en-US');
  const rows = report.entities.map((e) => [
    e.entity,
    e.status,
    number(e.scanned),
    number(e.copied),
    number(e.skippedExisting),
    e.unresolved > 0 ? number(e.unresolved) : '',
    number(e.memoryCount),
    number(e.postgresCount),
    e.countsMatch ? 'match' : 'DIFFER',
  ]);
  const t = report.totals;
  rows.push([
    'total',
    '',
    number(t.scanned),
    number(t.copied),
    number(t.skippedExisting),
    t.unresolved > 0 ? number(t.unresolved) : '',
    number(t.memoryCount),
    number(t.postgresCount),
    report.countsMatch ? 'match' : 'DIFFER',
  ]);
  const headers = [
    'entity',
    'status',
    'scanned',
    'copied',
    'already there',
    'unresolved',
    'memory',
    'postgres',
    'counts',
  ];
  // The unresolved column (edges whose projects PostgreSQL lacks) only when there are any.
  const shown =
    t.unresolved > 0 ? headers.map((_, i) => i) : headers.map((_, i) => i).filter((i) => headers[i] !== 'unresolved');
  const table = formatTable(
    shown.map((i) => headers[i]!),
    rows.map((row) => shown.map((i) => row[i])),
  );
  const speed = `${number(t.scanned)} records scanned in ${report.seconds.toFixed(1)} s (${number(report.rowsPerSecond)} rows/s, batches of ${number(report.batchSize)})${report.startedOver ? ', started over' : ''}`;
  const verdict = report.interrupted
    ? 'INTERRUPTED: run the backfill again to resume after the last committed batch'
    : report.countsMatch
      ? 'counts match on every entity'
      : `COUNTS DIFFER: ${report.entities
          .filter((e) => !e.countsMatch)
          .map((e) => `${e.entity} (memory ${number(e.memoryCount)}, postgres ${number(e.postgresCount)})`)
          .join(', ')}`;
  return `${table}\n${speed}\n${verdict}`;
}
