import { performance } from 'node:perf_hooks';
import type { LineageState } from '../postgres/runtime-state/lineage-store.js';
import type { RecordPort } from '../ports/record-port.js';
import { STAGE_POLICIES, type Stage } from '../ports/stage.js';

/** What a starting process does with the memory it comes back with, and why. */
export interface MemoryAtStart {
  readonly rebuild: boolean;
  readonly reason: string;
}

/**
 * Whether a process starting in `stage` must refill memory from PostgreSQL before it serves.
 * Memory comes back from a restart empty (or from a snapshot of some earlier moment), so
 * wherever memory is written and PostgreSQL has received every acknowledged write since the
 * last memory-only run, PostgreSQL is the newer of the two, unless the memory given proves
 * it was saved at the lineage's current generation (no process has started or moved
 * authority since).
 */
export function memoryAtStart(
  lineage: LineageState | undefined,
  stage: Stage,
  memoryGeneration: number | undefined,
): MemoryAtStart {
  const policy = STAGE_POLICIES[stage];
  if (!lineage)
    return { rebuild: false, reason: 'no process has recorded a stage on this database yet: memory is all there is' };
  if (lineage.stage === 'memory-only')
    return {
      rebuild: false,
      reason: 'memory-only was last in force, so PostgreSQL missed writes: memory is all there is',
    };
  if (policy.authoritative !== 'memory' && policy.mirror !== 'memory')
    return { rebuild: false, reason: `memory is not written in ${stage}` };
  if (memoryGeneration === lineage.generation)
    return {
      rebuild: false,
      reason: `memory was saved at generation ${memoryGeneration}, which no process has moved since`,
    };
  const proof =
    memoryGeneration === undefined
      ? 'memory came back with no generation to prove it current'
      : `memory was saved at generation ${memoryGeneration}, the lineage is at ${lineage.generation}`;
  return {
    rebuild: true,
    reason: `PostgreSQL holds every acknowledged write since ${lineage.postgresCurrentSince ?? lineage.changedAt} (${lineage.stage} last in force) and ${proof}`,
  };
}

/** One store's two sides, as the rebuild copies them. */
export interface RebuildStore {
  readonly name: string;
  /** Entity names in dependency order. */
  readonly entities: readonly string[];
  readonly from: RecordPort<Record<string, object>>;
  readonly to: RecordPort<Record<string, object>> & { clear(): void };
}

export interface RebuildReport {
  readonly records: number;
  readonly seconds: number;
  /** Records copied per store.entity. */
  readonly entities: Readonly<Record<string, number>>;
}

/** Options of rebuildMemory. */
export interface RebuildOptions {
  /** Records fetched per page. Default 10000. */
  readonly pageSize?: number;
  /** Called after each page with the records copied so far. */
  readonly onProgress?: (progress: {
    readonly store: string;
    readonly entity: string;
    readonly records: number;
  }) => void;
}

/**
 * Makes each store's `to` side hold exactly its `from` side's records: clears it, then
 * copies entity by entity in dependency order, a page at a time, the next page fetched
 * while the current one is stored.
 */
export async function rebuildMemory(
  stores: readonly RebuildStore[],
  options: RebuildOptions = {},
): Promise<RebuildReport> {
  const started = performance.now();
  const entities: Record<string, number> = {};
  let records = 0;
  for (const store of stores) {
    store.to.clear();
    for (const entity of store.entities) {
      const limit = options.pageSize ?? 10_000;
      let copied = 0;
      let next = store.from.scanRecords(entity, { limit });
      for (;;) {
        const page = await next;
        if (page.length === 0) break;
        next =
          page.length < limit
            ? Promise.resolve([])
            : store.from.scanRecords(entity, { after: store.from.keyOf(entity, page[page.length - 1]!), limit });
        // Awaited on the next turn; until then a failure of the fetch must not count as unhandled.
        next.catch(() => {});
        await store.to.putRecords(entity, page);
        copied += page.length;
        records += page.length;
        options.onProgress?.({ store: store.name, entity, records });
      }
      entities[`${store.name}.${entity}`] = copied;
    }
  }
  return { records, seconds: (performance.now() - started) / 1000, entities };
}
