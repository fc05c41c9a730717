import type { FlagState } from '../../flags/flag-state.js';
import type { OutboxReplayer } from '../dualwrite/replayer.js';
import type { AnyStoreDefinition } from '../stores/store-definition.js';
import type { LineageRecorder } from './lineage-recorder.js';
import { memoryAtStart, rebuildMemory, type MemoryAtStart, type RebuildReport } from './memory-rebuild.js';
import { rebuildStores, type Sides } from './store-sides.js';

/**
 * Brings memory up to what the lineage says before the process serves: marks PostgreSQL
 * incomplete when memory-only ran since its last resync, and rebuilds memory from PostgreSQL
 * (after replaying what the outbox holds for it) when memory is written in the stage at start
 * and cannot prove itself current.
 */
export async function prepareMemory(
  lineage: LineageRecorder,
  flags: FlagState,
  memoryGeneration: number | undefined,
  runtime: {
    readonly definitions: readonly AnyStoreDefinition[];
    readonly sides: Record<string, Sides>;
    readonly replayer: OutboxReplayer;
    readonly logger: Pick<Console, 'info'>;
  },
): Promise<MemoryAtStart & { readonly rebuilt?: RebuildReport }> {
  const prior = await lineage.read();
  if (prior && !prior.postgresComplete) flags.postgresIncomplete();
  const decision = memoryAtStart(prior, flags.current.stage, memoryGeneration);
  if (!decision.rebuild) return decision;
  const { logger } = runtime;
  logger.info(`dualwrite: rebuilding memory from PostgreSQL before serving: ${decision.reason}`);
  const stuck = await runtime.replayer.drainFor('postgres');
  if (stuck) throw new Error(`dualwrite: cannot rebuild memory from PostgreSQL before serving: ${stuck}`);
  const stores = rebuildStores(runtime.definitions, runtime.sides);
  let lastLogged = Date.now();
  const rebuilt = await rebuildMemory(stores, {
    onProgress: ({ store, entity, records }) => {
      if (Date.now() - lastLogged < 2000) return;
      lastLogged = Date.now();
      logger.info(`dualwrite: rebuilding memory: ${records} records copied (now ${store}.${entity})`);
    },
  });
  logger.info(
    `dualwrite: memory rebuilt from PostgreSQL: ${rebuilt.records} records in ${rebuilt.seconds.toFixed(2)} s`,
  );
  flags.memoryResynced();
  return { ...decision, rebuilt };
}
