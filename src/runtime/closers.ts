/** What the runtime opened, each with how to close it: closed in reverse order by close(), or when opening fails. */
export type Closers = (() => Promise<void>)[];

/** Closes everything in `closers`, newest first; with `quietly`, a failure to close does not stop the rest. */
export async function closeAll(closers: Closers, { quietly = false } = {}): Promise<void> {
  for (const close of closers.splice(0).reverse()) await (quietly ? close().catch(() => {}) : close());
}
