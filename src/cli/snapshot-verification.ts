import type { AnyTarget } from '../../verifier/verify-target.js';
import { verify, type VerifyReport } from '../../verifier/verify.js';
import type { SqlExecutor } from '../postgres/sql-executor.js';
import { openCliDatabase } from './database.js';
import type { JsonOption, SnapshotOptions } from './options.js';
import { loadSnapshots, verifyTargets } from './snapshot-stores.js';
import { verifyProgress } from './verify-progress.js';

/** A verification of snapshot files against the database, with what a repair needs to act on it. */
export interface SnapshotVerification {
  /** Where the database is, safe to print. */
  readonly database: string;
  readonly db: SqlExecutor;
  readonly targets: readonly AnyTarget[];
  readonly report: VerifyReport;
}

/**
 * Loads the snapshot files, opens DATABASE_URL, compares them (progress on stderr unless
 * --json) and hands the result to `use`; the database is closed after. `keepAll` keeps
 * every difference in the report rather than the first 1000 (a repair needs them all).
 */
export async function withSnapshotVerification<T>(
  options: SnapshotOptions & JsonOption & { readonly keepAll?: boolean },
  command: string,
  use: (verification: SnapshotVerification) => Promise<T>,
): Promise<T> {
  const stores = await loadSnapshots(options, command);
  const { db, description } = await openCliDatabase();
  try {
    const targets = verifyTargets(stores, db);
    const progress = options.json ? undefined : verifyProgress();
    // A snapshot does not change under us, so there are no writes in flight to wait out before re-checks.
    const report = await verify(db, targets, {
      graceMs: 0,
      recheckRounds: 1,
      onProgress: progress?.onProgress,
      ...(options.keepAll ? { maxReported: Number.MAX_SAFE_INTEGER } : {}),
    });
    progress?.finish();
    return await use({ database: description, db, targets, report });
  } finally {
    await db.close();
  }
}
