/**
 * Whether the tests of `what` can run: `unavailable` says why not. They are then skipped
 * with a line saying why, except under CI=true, where a missing service is an error.
 */
export function canRun(what: string, unavailable: string | undefined): boolean {
  if (unavailable === undefined) return true;
  if (process.env.CI) throw new Error(`${what} cannot be skipped in CI: ${unavailable}`);
  console.warn(`skipping ${what}: ${unavailable}`);
  return false;
}

/** Why a test needing environment variable `name` cannot run, or undefined when it is set. */
export function unsetVariable(name: string): string | undefined {
  return process.env[name] ? undefined : `${name} is not set`;
}
