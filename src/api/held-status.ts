import type { HeldEntry } from '../dualwrite/held-entries.js';
import type { AdminRuntime } from './admin-runtime.js';

/** Held entries listed in a status answer; the status page asks every 5 s, so a pile of them is counted, not sent whole. */
const LISTED = 100;

/**
 * The outbox entries the target refused for their data, for GET /admin/status's `outbox`:
 * how many (`heldCount`) and the first of them (`held`), each with what PostgreSQL said and
 * the command that clears it. Absent when there are none, so the answer reads as before
 * while nothing is held.
 */
export function heldStatus(runtime: Pick<AdminRuntime, 'mirror'>): {
  readonly heldCount?: number;
  readonly held?: readonly HeldEntry[];
} {
  const held = runtime.mirror.held?.list() ?? [];
  return held.length > 0 ? { heldCount: held.length, held: held.slice(0, LISTED) } : {};
}
