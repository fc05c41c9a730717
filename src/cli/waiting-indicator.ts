/** Where a progress line goes: stderr by default. */
export interface ProgressStream {
  write(text: string): unknown;
  readonly isTTY?: boolean;
}

/** Seconds between lines when stderr is not a terminal (a log file, CI). */
const LOG_EVERY_SECONDS = 10;

/**
 * Shows that a request to a running process is still going, since the admin API does not
 * stream its progress: on a terminal the elapsed seconds, redrawn in place every second
 * and erased at the end; elsewhere one line every 10 s. Resolves or rejects as `work` does.
 */
export async function whileWaiting<T>(
  label: string,
  work: Promise<T>,
  stream: ProgressStream | undefined = process.stderr,
): Promise<T> {
  if (!stream) return work;
  const started = Date.now();
  const tty = stream.isTTY === true;
  const timer = setInterval(
    () => {
      const seconds = Math.round((Date.now() - started) / 1000);
      stream.write(tty ? `\r${label}: ${seconds} s\u001b[K` : `${label}: still running after ${seconds} s\n`);
    },
    (tty ? 1 : LOG_EVERY_SECONDS) * 1000,
  );
  try {
    return await work;
  } finally {
    clearInterval(timer);
    if (tty) stream.write('\r\u001b[K');
  }
}
