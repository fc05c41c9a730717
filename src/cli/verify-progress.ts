import type { VerifyOptions } from '../../verifier/verify.js';
import type { ProgressStream } from './waiting-indicator.js';

type VerifyProgress = Parameters<NonNullable<VerifyOptions['onProgress']>>[0];

/**
 * Renders verify's progress on stderr: on a terminal one line per entity, redrawn in place
 * ("verify graph.projects: 40% (4,000/10,000 rows)"); elsewhere a line each time an entity
 * passes another ~10%, so logs stay short. Call finish() when the run returns.
 */
export function verifyProgress(stream: ProgressStream = process.stderr): { onProgress(event: VerifyProgress): void; finish(): void } {
  const tty = stream.isTTY === true;
  const printedDecile = new Map<string, number>();
  let open = false;
  return {
    onProgress(event) {
      const name = `${event.store}.${event.entity}`;
      const fraction = event.rows > 0 ? Math.min(1, event.rowsChecked / event.rows) : 1;
      const line = `verify ${name}: ${Math.floor(fraction * 100)}% (${event.rowsChecked.toLocaleString('en-US')}/${event.rows.toLocaleString('en-US')} rows)`;
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
