import type { VerifyOptions } from '../../verifier/verify.js';
import type { ProgressStream } from './waiting-indicator.js';

type VerifyProgress = Parameters<NonNullable<VerifyOptions['onProgress']>>[0];

/** A progress line per table or entity, for a command that goes through rows: update() as rows are done, finish() at the end. */
export interface RowProgress {
  update(name: string, rowsDone: number, rows: number): void;
  finish(): void;
}

/**
 * Renders progress through rows on stderr: on a terminal one line per name, redrawn in
 * place ("verify graph.projects: 40% (4,000/10,000 rows)"); elsewhere a line each time a
 * name passes another ~10%, so logs stay short. Call finish() when the work returns.
 */
export function rowProgress(verb: string, stream: ProgressStream = process.stderr): RowProgress {
  const tty = stream.isTTY === true;
  const printedDecile = new Map<string, number>();
  let open = false;
  return {
    update(name, rowsDone, rows) {
      const fraction = rows > 0 ? Math.min(1, rowsDone / rows) : 1;
      const line = `${verb} ${name}: ${Math.floor(fraction * 100)}% (${rowsDone.toLocaleString('en-US')}/${rows.toLocaleString('en-US')} rows)`;
      if (tty) {
        const entered = !printedDecile.has(name);
        printedDecile.set(name, 0);
        stream.write(`${entered && open ? '\n' : '\r'}${line}\u001b[K`);
        open = true;
        return;
      }
      const decile = Math.floor(fraction * 10);
      if (decile <= (printedDecile.get(name) ?? -1)) return;
      printedDecile.set(name, decile);
      stream.write(`${line}\n`);
    },
    finish() {
      if (open) stream.write('\n');
      open = false;
    },
  };
}

/** verify's progress on stderr (rowProgress). */
export function verifyProgress(stream: ProgressStream = process.stderr): {
  onProgress(event: VerifyProgress): void;
  finish(): void;
} {
  const progress = rowProgress('verify', stream);
  return {
    onProgress: (event) => progress.update(`${event.store}.${event.entity}`, event.rowsChecked, event.rows),
    finish: () => progress.finish(),
  };
}
