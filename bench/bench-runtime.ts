import { join } from 'node:path';
import { FlagState } from '../flags/flag-state.js';
import { ManualFlagSource } from '../flags/manual-flags.js';
import { FileOutbox } from '../src/dualwrite/file-outbox.js';
import type { MirrorMode } from '../src/dualwrite/mirror.js';
import type { SqlExecutor } from '../src/postgres/sql-executor.js';
import { openDualWrite } from '../src/runtime/open-dual-write.js';
import type { DualWriteRuntime } from '../src/runtime/dual-write-runtime.js';
import { STAGE_POLICIES } from '../src/ports/stage.js';
import { verifyTarget } from '../verifier/verify-target.js';
import { persistentDifferences, verify } from '../verifier/verify.js';

/** Warnings and errors only: a bench's own progress lines are what it prints. */
export const QUIET_LOGGER = { info() {}, warn: console.warn, error: console.error };

/**
 * A runtime in dual-write over `db` (a bench schema) with flags set in code, a file outbox
 * named after `mode` in `dir`, no lease and no background verifier; close() closes both.
 */
export async function openBenchRuntime(
  db: SqlExecutor,
  dir: string,
  mode: MirrorMode,
): Promise<{ runtime: DualWriteRuntime; close(): Promise<void> }> {
  const outbox = await FileOutbox.open({ path: join(dir, `outbox-${mode}-${Date.now()}.jsonl`) });
  const runtime = await openDualWrite({
    db,
    env: {},
    flags: new FlagState([new ManualFlagSource({ stage: 'dual-write' })]),
    outbox,
    mirror: { mode },
    verifier: { enabled: false },
    lease: false,
    logger: QUIET_LOGGER,
  });
  return {
    runtime,
    async close() {
      await runtime.close();
      await outbox.close();
    },
  };
}

/**
 * Records that differ between the sides by a verification run now, once the mirror has
 * landed what it accepted and the outbox is replayed; undefined in a stage that writes one
 * side only. verify() itself rather than runtime.verifyNow(), which skips its run while any
 * other process verifies the same database (the advisory lock is per database).
 */
export async function verifiedDifferences(runtime: DualWriteRuntime): Promise<number | undefined> {
  const policy = STAGE_POLICIES[runtime.stage.current.stage];
  if (!policy.mirror) return undefined;
  await runtime.mirror.drain();
  const stuck = await runtime.replayer.drainFor('postgres');
  if (stuck) throw new Error(`the outbox could not be replayed before verifying: ${stuck}`);
  const targets = Object.values(runtime.stores).map((store) =>
    verifyTarget(store.definition, store.memory, store.postgres),
  );
  const report = await verify(runtime.db, targets, {
    authoritative: policy.authoritative,
    settle: () => runtime.mirror.settled(),
  });
  return report.entities.reduce((sum, entity) => sum + persistentDifferences(entity), 0);
}
