/** Options of verify(). */
/** Differences a report keeps by default; repairs and counts see them all. */
export const DEFAULT_MAX_REPORTED = 1000;

export interface VerifyOptions {
  /** Rows per initial key range. Default 20000. */
  readonly rangeRows?: number;
  /** Sub-ranges a differing range is split into. Default 16. */
  readonly fanout?: number;
  /** A differing range with at most this many rows on each side is compared row by row. Default 256. */
  readonly leafRows?: number;
  /** Times a difference is re-checked before it counts. Default 3. */
  readonly recheckRounds?: number;
  /** Pause before each re-check, after `settle`. Default 500 ms. */
  readonly graceMs?: number;
  /** Waits for writes in flight (the mirror's settled()) before re-checks. Default: none. */
  readonly settle?: () => Promise<void>;
  /** The side written first; re-checks read it before settling. Default "memory". */
  readonly authoritative?: 'memory' | 'postgres';
  /** Range checksum queries run at once. Default 4. */
  readonly concurrency?: number;
  /** Differences kept in the report (all are counted). Default DEFAULT_MAX_REPORTED (1000). */
  readonly maxReported?: number;
  /**
   * A side is reported incomplete for an entity when the rows it misses are at least this
   * share of the other side's rows, and at least incompleteMinRows. Default 0.05.
   */
  readonly incompleteShare?: number;
  /** See incompleteShare. Default 10. */
  readonly incompleteMinRows?: number;
  readonly onProgress?: (event: VerifyProgress) => void;
}

/** How far the comparison of an entity got: rows checked of the rows the first side held when it started. */
export interface VerifyProgress {
  readonly store: string;
  readonly entity: string;
  readonly rowsChecked: number;
  readonly rows: number;
}
