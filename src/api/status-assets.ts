import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

/** A file the status page loads: read once, when first asked for. */
export interface StatusAsset {
  readonly type: string;
  read(): Promise<Buffer>;
}

function asset(path: string, type: string): StatusAsset {
  let content: Promise<Buffer> | undefined;
  return {
    type,
    read: () => {
      // A failed read is tried again on the next request rather than remembered.
      content ??= readFile(path).catch((error: unknown) => {
        content = undefined;
        throw error;
      });
      return content;
    },
  };
}

const fromPackage = createRequire(import.meta.url);
const pageFile = (name: string) => fileURLToPath(new URL(`./status-page/${name}`, import.meta.url));

/** uPlot from its package (no CDN: the page works on a closed network), and the page's own script and style, by file name. */
export const STATUS_ASSETS: ReadonlyMap<string, StatusAsset> = new Map([
  ['uPlot.iife.min.js', asset(fromPackage.resolve('uplot/dist/uPlot.iife.min.js'), 'text/javascript; charset=utf-8')],
  ['uPlot.min.css', asset(fromPackage.resolve('uplot/dist/uPlot.min.css'), 'text/css; charset=utf-8')],
  ['status.js', asset(pageFile('status.js'), 'text/javascript; charset=utf-8')],
  ['status.css', asset(pageFile('status.css'), 'text/css; charset=utf-8')],
]);
