import PQueue from 'p-queue';
import type { ComparedSide } from '../src/ports/compared-side.js';
import type { KeyRange, RangeChecksum } from '../src/ports/range-checksums.js';
import type { RecordKey } from '../src/ports/record-port.js';
import type { Side } from '../src/ports/stage.js';
import { differenceOf } from './difference.js';
import type { VerifyOptions } from './verify-options.js';
import type { Difference } from './verify-report.js';

/** A side compared, with its name in reports. */
export interface LabelledSide {
  readonly label: Side;
  readonly side: ComparedSide;
}

/** What comparing an entity found, before the re-checks. */
export interface EntityFindings {
  /** Side a's rows when the comparison started, and side b's in the initial ranges. */
  readonly rows: Readonly<Record<Side, number>>;
  readonly rangesCompared: number;
  readonly rowsFetched: number;
  readonly differences: readonly Difference[];
}

/** The options of VerifyOptions a comparison uses, defaults applied. */
interface Settings {
  readonly rangeRows: number;
  readonly leafRows: number;
  readonly fanout: number;
  readonly concurrency: number;
  readonly onProgress?: VerifyOptions['onProgress'];
}

/**
 * Compares one entity on two sides: checksums of key ranges, descending only into ranges
 * that differ (data-diff's bisection), then comparing the few records of each differing
 * leaf. Side a's keys split the initial ranges; the first and last are open-ended, so keys
 * only side b holds fall in one. `concurrency` ranges are compared at a time, and a
 * differing range queues its sub-ranges, so none waits for a slower sibling.
 */
export class EntityComparison {
  private readonly settings: Settings;
  private readonly queue: PQueue;
  private failure: unknown;
  private rowsA = 0;
  private rowsB = 0;
  private rowsChecked = 0;
  private rangesCompared = 0;
  private rowsFetched = 0;
  private readonly differences: Difference[] = [];

  constructor(
    private readonly store: string,
    private readonly entity: string,
    private readonly a: LabelledSide,
    private readonly b: LabelledSide,
    options: VerifyOptions,
  ) {
    this.settings = {
      rangeRows: options.rangeRows ?? 20000,
      leafRows: options.leafRows ?? 256,
      fanout: options.fanout ?? 16,
      concurrency: options.concurrency ?? 4,
      onProgress: options.onProgress,
    };
    this.queue = new PQueue({ concurrency: this.settings.concurrency });
  }

  /** Runs the comparison once; the first failure of any range rejects it. */
  async run(): Promise<EntityFindings> {
    const checksums = this.a.side.checksums;
    this.rowsA = await checksums.count(this.entity, {});
    const bounds = await checksums.splitKeys(this.entity, {}, this.settings.rangeRows, this.rowsA);
    for (const range of rangesBetween({}, bounds)) this.schedule(range, true);
    await this.queue.onIdle();
    if (this.failure !== undefined) throw this.failure;
    this.progress();
    return {
      rows: { [this.a.label]: this.rowsA, [this.b.label]: this.rowsB } as Record<Side, number>,
      rangesCompared: this.rangesCompared,
      rowsFetched: this.rowsFetched,
      differences: this.differences,
    };
  }

  private schedule(range: KeyRange, initial = false): void {
    void this.queue
      .add(() => this.compareRange(range, initial))
      .catch((error: unknown) => {
        this.failure ??= error;
        this.queue.clear();
      });
  }

  private async compareRange(range: KeyRange, initial: boolean): Promise<void> {
    // b is asked first: a side that computes inside its call (JavaScript, SQLite) then works while b's server does.
    const [b, a] = await Promise.all([
      this.b.side.checksums.checksum(this.entity, range),
      this.a.side.checksums.checksum(this.entity, range),
    ]);
    this.rangesCompared++;
    // The initial ranges cover every key once: their counts add up to b's rows.
    if (initial) this.rowsB += b.rows;
    if (a.rows === b.rows && a.sum === b.sum) {
      this.rowsChecked += a.rows;
      const whole = range.after === undefined && range.until === undefined;
      if (whole || this.queue.size % 8 === 0) this.progress();
      return;
    }
    const rows = Math.max(a.rows, b.rows);
    if (rows <= this.settings.leafRows) {
      this.rowsChecked += rows;
      return this.compareLeaf(range);
    }
    const points = await this.splitPoints(range, a, b);
    if (points.length === 0) return this.compareLeaf(range);
    for (const part of rangesBetween(range, points)) this.schedule(part);
  }

  /** Keys splitting a range into about `fanout` parts, taken from the side holding more of its rows. */
  private splitPoints(range: KeyRange, a: RangeChecksum, b: RangeChecksum): Promise<RecordKey[]> {
    const [{ side }, rows] = a.rows >= b.rows ? [this.a, a.rows] : [this.b, b.rows];
    return side.checksums.splitKeys(this.entity, range, Math.max(1, Math.floor(rows / this.settings.fanout)), rows);
  }

  /** Compares a range's records one by one. */
  private async compareLeaf(range: KeyRange): Promise<void> {
    const scan = { ...range, limit: Number.MAX_SAFE_INTEGER };
    const [aRecords, bRecords] = await Promise.all([
      this.a.side.records.scanRecords(this.entity, scan),
      this.b.side.records.scanRecords(this.entity, scan),
    ]);
    this.rowsFetched += aRecords.length + bRecords.length;
    for (const { key, records } of this.byKey(aRecords, bRecords)) {
      const difference = differenceOf(this.store, this.entity, key, records);
      if (difference) this.differences.push(difference);
    }
  }

  /** Every key either side holds, with each side's record under it (null where it holds none); a's keys first. */
  private byKey(aRecords: readonly object[], bRecords: readonly object[]) {
    const pairs = new Map<string, { key: RecordKey; records: Record<Side, unknown> }>();
    const pair = (key: RecordKey, aRecord: unknown, bRecord: unknown) => ({
      key,
      records: { [this.a.label]: aRecord, [this.b.label]: bRecord } as Record<Side, unknown>,
    });
    for (const record of aRecords) {
      const key = this.a.side.records.keyOf(this.entity, record);
      pairs.set(key.join('\u0000'), pair(key, record, null));
    }
    for (const record of bRecords) {
      const key = this.b.side.records.keyOf(this.entity, record);
      const paired = pairs.get(key.join('\u0000'));
      if (paired) paired.records[this.b.label] = record;
      else pairs.set(key.join('\u0000'), pair(key, null, record));
    }
    return pairs.values();
  }

  private progress(): void {
    this.settings.onProgress?.({
      store: this.store,
      entity: this.entity,
      rowsChecked: this.rowsChecked,
      rows: this.rowsA,
    });
  }
}

/** The parts of `range` that `points` (ascending, inside it) split it into. */
function rangesBetween(range: KeyRange, points: readonly RecordKey[]): KeyRange[] {
  const bounds = [range.after, ...points, range.until];
  return bounds.slice(1).map((until, index) => ({ after: bounds[index], until }));
}
