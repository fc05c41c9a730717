import { Counter, Gauge, type Registry } from 'prom-client';
import type { Side } from '../src/ports/stage.js';
import type { DifferenceKind, VerifyReport } from './verify.js';

/** Verifier metric names, for dashboards and alert rules. */
export const VERIFY_METRIC = {
  rowsChecked: 'dualwrite_verify_rows_checked_total',
  differences: 'dualwrite_verify_differences',
  consistency: 'dualwrite_verify_consistency_ratio',
  duration: 'dualwrite_verify_run_duration_seconds',
  lastSuccess: 'dualwrite_verify_last_success_timestamp_seconds',
  runs: 'dualwrite_verify_runs_total',
  repairs: 'dualwrite_repairs_total',
  incomplete: 'dualwrite_verify_side_incomplete',
} as const;

const KINDS: readonly DifferenceKind[] = ['missing_in_postgres', 'missing_in_memory', 'fields_differ'];
const SIDES: readonly Side[] = ['memory', 'postgres'];

/** Verifier metrics on an injected registry; record() publishes one run's report. */
export class VerifierMetrics {
  readonly rowsChecked: Counter<'entity'>;
  readonly differences: Gauge<'entity' | 'kind'>;
  readonly consistency: Gauge<'entity'>;
  readonly duration: Gauge;
  readonly lastSuccess: Gauge;
  readonly runs: Counter<'outcome'>;
  readonly repairs: Counter<'entity' | 'outcome'>;
  readonly incomplete: Gauge<'entity' | 'side'>;

  constructor(registry: Registry) {
    const registers = [registry];
    this.rowsChecked = new Counter({
      name: VERIFY_METRIC.rowsChecked,
      help: 'Rows covered by verification (by checksum or row by row).',
      labelNames: ['entity'],
      registers,
    });
    this.differences = new Gauge({
      name: VERIFY_METRIC.differences,
      help: 'Persistent differences found by the last run.',
      labelNames: ['entity', 'kind'],
      registers,
    });
    this.consistency = new Gauge({
      name: VERIFY_METRIC.consistency,
      help: 'Share of rows equal on both sides in the last run (1 = consistent).',
      labelNames: ['entity'],
      registers,
    });
    this.duration = new Gauge({
      name: VERIFY_METRIC.duration,
      help: 'Duration of the last verification run.',
      registers,
    });
    this.lastSuccess = new Gauge({
      name: VERIFY_METRIC.lastSuccess,
      help: 'Unix time of the last run that completed (whatever it found); until one has, the time the process started.',
      registers,
    });
    // Staleness counts from the start, so a verifier that never completes a run is noticed too.
    this.lastSuccess.set(Date.now() / 1000);
    this.runs = new Counter({
      name: VERIFY_METRIC.runs,
      help: 'Verification runs by outcome: consistent, differences, failed, skipped (another replica held the lock).',
      labelNames: ['outcome'],
      registers,
    });
    this.incomplete = new Gauge({
      name: VERIFY_METRIC.incomplete,
      help: "1 when the last run found this side missing a large share of the other side's rows of the entity (restarted or truncated); such a run is never repaired automatically.",
      labelNames: ['entity', 'side'],
      registers,
    });
    this.repairs = new Counter({
      name: VERIFY_METRIC.repairs,
      help: 'Repairs by outcome: repaired, skipped_newer (a newer write landed first).',
      labelNames: ['entity', 'outcome'],
      registers,
    });
  }

  record(report: VerifyReport): void {
    for (const entity of report.entities) {
      const label = `${entity.store}.${entity.entity}`;
      this.rowsChecked.inc({ entity: label }, Math.max(entity.rowsMemory, entity.rowsPostgres));
      for (const kind of KINDS) this.differences.set({ entity: label, kind }, entity.differences[kind]);
      this.consistency.set({ entity: label }, entity.consistencyRatio);
      for (const side of SIDES) this.incomplete.set({ entity: label, side }, entity.incomplete === side ? 1 : 0);
    }
    this.duration.set(report.seconds);
    this.lastSuccess.set(Date.now() / 1000);
    this.runs.inc({ outcome: report.consistent ? 'consistent' : 'differences' });
  }
}
