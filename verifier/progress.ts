import type { BackfillProgress } from './backfill.js';

/** Where progress goes: stderr by default. */
export interface ProgressStream {
  write(text: string): unknown;
  readonly isTTY?: boolean;
  readonly columns?: number;
}

export interface ProgressReporter {
  /** Pass as backfill's onProgress. */
  readonly onProgress: (event: BackfillProgress) => void;
  /** Ends the open bar line, if any; call when the run returns. */
  finish(): void;
}

/**
 * Renders backfill progress: on a terminal one bar per entity, redrawn in place (\r);
 * otherwise (a log file, CI) one line each time an entity passes another ~10%, so logs
 * stay short.
 */
export function createProgressReporter(
  stream: ProgressStream = process.stderr,
  options: { tty?: boolean } = {},
): ProgressReporter {
  const tty = options.tty ?? stream.isTTY === true;
  let openEntity: string | undefined;
  const printedDecile = new Map<string, number>();

  const finishLine = () => {
    if (openEntity !== undefined) stream.write('\n');
    openEntity = undefined;
  };

  return {
    onProgress(event) {
      const fraction = event.total > 0 ? Math.min(1, event.scanned / event.total) : 1;
      // Two stores may have entities of the same name.
      const entity = `${event.store}.${event.entity}`;
      if (tty) {
        if (openEntity !== undefined && openEntity !== entity) finishLine();
        openEntity = entity;
        stream.write(`\r${progressBar(event, fraction, barWidth(stream.columns))}\u001b[K`);
        return;
      }
      const decile = Math.floor(fraction * 10);
      if (decile <= (printedDecile.get(entity) ?? -1)) return;
      printedDecile.set(entity, decile);
      stream.write(`${progressLine(event, fraction)}\n`);
    },
    finish: finishLine,
  };
}

/** One in-place bar: "contributors  [########------------]  40%  4,000/10,000  copied 3,990  52,000 rows/s". */
export function progressBar(event: BackfillProgress, fraction: number, width = 24): string {
  const filled = Math.round(fraction * width);
  const bar = `${'#'.repeat(filled)}${'-'.repeat(width - filled)}`;
  return `${event.entity.padEnd(13)} [${bar}] ${percent(fraction).padStart(4)}  ${counts(event)}`;
}

/** One log line: "backfill contributors: 40% (4,000/10,000 scanned, 3,990 copied, 52,000 rows/s)". */
export function progressLine(event: BackfillProgress, fraction: number): string {
  return `backfill ${event.entity}: ${percent(fraction)} (${counts(event)})`;
}

function counts(event: BackfillProgress): string {
  const n = (value: number) => value.toLocaleString('en-US');
  return `${n(event.scanned)}/${n(event.total)} scanned, ${n(event.copied)} copied, ${n(event.rowsPerSecond)} rows/s`;
}

function percent(fraction: number): string {
  return `${Math.floor(fraction * 100)}%`;
}

/** Bar width that keeps the line within the terminal. */
function barWidth(columns: number | undefined): number {
  return columns === undefined ? 24 : Math.max(10, Math.min(40, columns - 80));
}
