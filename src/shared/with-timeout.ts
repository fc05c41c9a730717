/**
 * `work`, or what `timedOut` gives (or throws) once `ms` have passed without an answer; the
 * timer never outlives the race. `work` itself goes on: only the caller stops waiting.
 */
export async function withTimeout<T>(work: Promise<T>, ms: number, timedOut: () => T): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<T>((resolve, reject) => {
    timer = setTimeout(() => {
      try {
        resolve(timedOut());
      } catch (error) {
        reject(error);
      }
    }, ms);
  });
  try {
    return await Promise.race([work, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
