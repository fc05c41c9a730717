import { createDualWriteStore } from '../dualwrite/dual-write-store.js';
import { AGENT_TASK_DEFINITION } from '../stores/agent-task/agent-task-store-definition.js';
import { GRAPH_DEFINITION } from '../stores/graph/graph-store-definition.js';
import type { StoreDefinition } from '../stores/store-definition.js';
import { closeAll, type Closers } from './closers.js';
import { assembleComponents, type Components } from './components.js';
import type { DualWriteRuntime, RuntimeStore } from './dual-write-runtime.js';
import { ResyncAndRepair } from './resync-and-repair.js';
import { RolloutController } from './rollout-controller.js';
import type { DualWriteRuntimeOptions } from './runtime-options.js';

/**
 * Assembles the runtime. A dependency that cannot be reached fails it with an error naming
 * the dependency, after everything already opened has been closed again.
 */
export async function openDualWrite(options: DualWriteRuntimeOptions = {}): Promise<DualWriteRuntime> {
  const closers: Closers = [];
  try {
    const components = await assembleComponents(options, closers);
    const rollout = new RolloutController(components, options, closers);
    return runtimeOf(components, rollout, new ResyncAndRepair(components), closers);
  } catch (error) {
    await closeAll(closers, { quietly: true });
    throw error;
  }
}

/** The runtime the application holds: the stores it calls, the components, and the operator's use cases. */
function runtimeOf(
  c: Components,
  rollout: RolloutController,
  actions: ResyncAndRepair,
  closers: Closers,
): DualWriteRuntime {
  const stores = dualStores(c);
  // The built-in stores by their definitions: a store of another interface may be named "graph" too.
  const graph = Object.values(stores).find((store) => store.definition === GRAPH_DEFINITION);
  const tasks = Object.values(stores).find((store) => store.definition === AGENT_TASK_DEFINITION);
  const runtime: Omit<DualWriteRuntime, 'graph' | 'tasks'> = {
    memory: builtIn({}, { graph: graph?.memory, tasks: tasks?.memory }, 'runtime.memory') as DualWriteRuntime['memory'],
    postgres: builtIn(
      {},
      { graph: graph?.postgres, tasks: tasks?.postgres },
      'runtime.postgres',
    ) as DualWriteRuntime['postgres'],
    stores,
    store: <Store, Records extends object>(definition: StoreDefinition<Store, Records>) => storeOf(stores, definition),
    db: c.db,
    flags: c.flags,
    stage: c.gate,
    mirror: c.mirror,
    outbox: c.outbox,
    replayer: c.replayer,
    shadow: c.shadow,
    metrics: c.metrics,
    verifierMetrics: c.verifierMetrics,
    verifier: c.verifier,
    jobs: c.jobs.store,
    audit: c.auditLog,
    lineage: {
      get current() {
        return c.lineage.last;
      },
      atStart: c.atStart,
    },
    autoRetreat: rollout.autoRetreat,
    recovery: c.recovery,
    convergence: () => rollout.convergence(),
    rollbackSafety: () => rollout.rollbackSafety(),
    judge: async (requested) => (await rollout.judge(requested)).verdict,
    setFlags: (requested, change) => rollout.setFlags(requested, change),
    verifyNow: (request) => actions.verifyNow(request),
    undoRepair: (runId, request) => actions.undoRepair(runId, request),
    replayOutbox: (request) => actions.replayOutbox(request),
    resyncPostgres: (options) => actions.resyncPostgres(options),
    resyncMemory: (options) => actions.resyncMemory(options),
    close: async () => {
      await c.gate.stop();
      await c.verifier.stop();
      await c.mirror.drain();
      await c.replayer.stop();
      await c.shadow.settle();
      await closeAll(closers);
    },
  };
  return builtIn(runtime, { graph: graph?.dual, tasks: tasks?.dual }, 'runtime') as DualWriteRuntime;
}

/** Each store's drop-in implementation that follows the stage in force, with its two sides. */
function dualStores(c: Components): Readonly<Record<string, RuntimeStore>> {
  const common = { gate: c.gate, mirror: c.mirror, metrics: c.metrics, shadow: c.shadow, context: c.context };
  const stores: Record<string, RuntimeStore> = {};
  for (const definition of c.definitions) {
    const { memory, postgres } = c.sides[definition.name]!;
    const dual = createDualWriteStore<object>({
      name: definition.name,
      description: definition.methods,
      memory,
      postgres,
      ...common,
    });
    stores[definition.name] = Object.freeze({ definition, dual, memory, postgres });
  }
  return Object.freeze(stores);
}

/** One store of the runtime, typed by its definition; a TypeError when the runtime was opened without it. */
function storeOf<Store, Records extends object>(
  stores: Readonly<Record<string, RuntimeStore>>,
  definition: StoreDefinition<Store, Records>,
): RuntimeStore<Store, Records> {
  const found = stores[definition.name];
  if (!found || found.definition !== definition)
    throw new TypeError(
      `this runtime has no store ${definition.name} of that definition (stores: ${Object.keys(stores).join(', ')})`,
    );
  return found as unknown as RuntimeStore<Store, Records>;
}

/**
 * Adds the built-in stores' entries to `target`: an absent store is a getter that throws
 * (and is left out of enumeration), so a runtime opened without the GraphStore says so
 * instead of handing out undefined.
 */
function builtIn(target: object, entries: { readonly graph: unknown; readonly tasks: unknown }, path: string): object {
  for (const [name, value] of Object.entries(entries)) {
    Object.defineProperty(
      target,
      name,
      value !== undefined
        ? { value, enumerable: true }
        : {
            enumerable: false,
            get() {
              throw new TypeError(
                `${path}.${name}: this runtime was opened without the built-in ${name} store (see runtime.stores)`,
              );
            },
          },
    );
  }
  return target;
}
