/**
 * Runs `check` until it stops throwing, and returns what it returned; after `timeoutMs`
 * (default 10000) throws its last error. For what happens on the runtime's own timers
 * (a retried recovery, a replay round), instead of sleeping for a fixed time.
 */
export async function eventually<T>(
  check: () => T | Promise<T>,
  { timeoutMs = 10_000, everyMs = 20 } = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await check();
    } catch (error) {
      if (Date.now() >= deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, everyMs));
    }
  }
}
