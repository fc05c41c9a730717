import { printNote } from './output.js';

/**
 * An AbortSignal that Ctrl-C (SIGINT) aborts, for work that stops cleanly at its next step;
 * a second Ctrl-C exits at once with 130. dispose() gives SIGINT back to node's default.
 */
export function abortOnInterrupt(whatStops: string): { readonly signal: AbortSignal; dispose(): void } {
  const controller = new AbortController();
  const onSigint = () => {
    if (controller.signal.aborted) process.exit(130);
    printNote(`\nCtrl-C: ${whatStops} (Ctrl-C again to exit at once)`);
    controller.abort();
  };
  process.on('SIGINT', onSigint);
  return { signal: controller.signal, dispose: () => void process.off('SIGINT', onSigint) };
}
