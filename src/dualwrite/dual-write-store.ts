import { performance } from 'node:perf_hooks';
import { StoreError, UnavailableError } from '../domain/errors.js';
import type { WriteContext } from '../domain/write-context.js';
import { randomIds, systemClock } from '../domain/time.js';
import type { RecordPort } from '../ports/record-port.js';
import type { DualWriteMetrics } from './metrics.js';
import type { Mirror } from './mirror.js';
import { routesToPostgres } from './routing.js';
import type { ShadowReads } from './shadow.js';
import type { StageGate, WriteTicket } from './stage-gate.js';
import { STAGE_POLICIES, type Side } from '../ports/stage.js';
import type { ReadSpec, StoreDescription, WriteSpec } from '../ports/store-description.js';

/** Options of createDualWriteStore. */
export interface DualWriteStoreOptions<S> {
  /** Label in metrics and outbox entries, e.g. "graph". Required. */
  readonly name: string;
  /** Which methods read and which write, and their keys. Required. */
  readonly description: StoreDescription<S>;
  readonly memory: S;
  readonly postgres: S;
  /** The stage in force and its transitions; shared by every store of a process. Required. */
  readonly gate: Pick<StageGate, 'current' | 'enter' | 'unavailable'>;
  /** Applies writes to the other side; shared by every store of a process. Required. */
  readonly mirror: Mirror;
  /** Decides ids and times of writes. Default: system clock, random UUIDs. */
  readonly context?: WriteContext;
  readonly metrics?: DualWriteMetrics;
  /** Shadow comparison of sampled reads. Default: none. */
  readonly shadow?: ShadowReads;
}

type AnyMethod = (...args: unknown[]) => Promise<unknown>;

/**
 * Wraps two implementations of a store interface S into one S that follows the stage
 * in force: writes go to the authoritative side first (its result or error is the
 * caller's) and are then mirrored; reads go where the stage and the sticky read
 * percentage send them. A write holds the stage gate from its authoritative write until its
 * mirror write is accepted, so a stage change waits for it. Any interface can be wrapped given its StoreDescription.
 */
export function createDualWriteStore<S extends object>(options: DualWriteStoreOptions<S>): S {
  const { name, gate, mirror, metrics, shadow } = options;
  const context = options.context ?? { clock: systemClock, ids: randomIds };
  const sides: Record<Side, Record<string, AnyMethod>> = {
    memory: options.memory as Record<string, AnyMethod>,
    postgres: options.postgres as Record<string, AnyMethod>,
  };

  // Recorders bound once per method and side: the hot path only does arithmetic.
  const recorders = new Map(
    Object.keys(options.description).map((method) => [
      method,
      metrics && { memory: metrics.call(name, method, 'memory'), postgres: metrics.call(name, method, 'postgres') },
    ]),
  );
  const readCounts = metrics && {
    memory: metrics.readsFrom(name, 'memory'),
    postgres: metrics.readsFrom(name, 'postgres'),
    fallback: metrics.readsFrom(name, 'fallback'),
  };

  // A PostgreSQL failure that is not an answer reaches callers as an UnavailableError.
  const call = async (side: Side, method: string, args: readonly unknown[]): Promise<unknown> => {
    const recorder = recorders.get(method)?.[side];
    const start = recorder ? performance.now() : 0;
    try {
      const result = await sides[side][method]!.apply(sides[side], args as unknown[]);
      recorder?.record((performance.now() - start) / 1000, true);
      return result;
    } catch (error) {
      recorder?.record((performance.now() - start) / 1000, false);
      throw side === 'postgres' && !(error instanceof StoreError) ? new UnavailableError('postgres', error) : error;
    }
  };

  const memoryRecords = options.memory as unknown as RecordPort<Record<string, object>>;

  const write = async (method: string, spec: WriteSpec<unknown[]>, args: unknown[]): Promise<unknown> => {
    const decided = spec.decide ? spec.decide(context, ...args) : args;
    const entered = gate.enter();
    const ticket: WriteTicket = 'then' in entered ? await entered : entered;
    let applied: Promise<void> | undefined;
    let result: unknown;
    try {
      // A key (or one it references) still waiting for a copy left behind by a rollback during an outage.
      const waiting = gate.unavailable([spec.key(...decided), ...(spec.requires?.(...decided) ?? [])]);
      if (waiting) throw new UnavailableError('postgres', waiting);
      const policy = STAGE_POLICIES[ticket.flags.stage];
      result = await call(policy.authoritative, method, decided);
      const affected = policy.mirror ? spec.affects(decided, result) : [];
      if (affected.length > 0) {
        // Memory's state is copied now, in call order (memory is not durable, the outbox
        // must hold it); PostgreSQL's is read when the copy is applied, in per-key order.
        const records =
          policy.mirror === 'postgres'
            ? await Promise.all(
                affected.map(async ({ entity, key }) => ({
                  entity,
                  key,
                  record: await memoryRecords.getRecord(entity, key),
                })),
              )
            : affected;
        ({ applied } = await mirror.accept({
          store: name,
          target: policy.mirror!,
          method,
          records,
          key: spec.key(...decided),
          requires: spec.requires?.(...decided),
          epoch: ticket.epoch,
        }));
      }
    } finally {
      ticket.release();
    }
    // Sync mode answers once the mirror write landed; the gate was released at acceptance,
    // since a transition waits for accepted mirror writes through the mirror itself.
    if (mirror.mode === 'sync') await applied;
    return result;
  };

  const read = async (method: string, spec: ReadSpec<unknown[]>, args: unknown[]): Promise<unknown> => {
    const waiting = gate.unavailable(spec.key ? [spec.key(...args)] : undefined);
    if (waiting) throw new UnavailableError('postgres', waiting);
    const current = gate.current;
    const policy = STAGE_POLICIES[current.stage];
    let key: string | undefined;
    let side: Side;
    if (policy.reads === 'percent') {
      key = spec.key ? spec.key(...args) : `op:${method}`;
      // Read-your-writes: a key whose mirror write has not landed is read where it was written.
      side =
        routesToPostgres(current.rolloutGroup, key, current.readPercent) && !mirror.isPending(key)
          ? 'postgres'
          : 'memory';
    } else {
      side = policy.reads;
    }
    let result: unknown;
    let source: Side | 'fallback' = side;
    try {
      result = await call(side, method, args);
    } catch (error) {
      // While memory is authoritative, PostgreSQL trouble must not reach the caller; a
      // StoreError (bad input, not found) is the answer memory would give too.
      if (side !== 'postgres' || policy.authoritative !== 'memory' || error instanceof StoreError) throw error;
      source = 'fallback';
      side = 'memory';
      result = await call('memory', method, args);
    }
    if (readCounts) readCounts[source].value++;
    if (policy.mirror && shadow?.sampled(current.stage)) {
      const other: Side = side === 'memory' ? 'postgres' : 'memory';
      const shadowKey = key ?? (spec.key ? spec.key(...args) : undefined);
      shadow.schedule(
        name,
        method,
        shadowKey ?? `op:${method}`,
        side,
        result,
        () => call(other, method, args),
        () => mirror.isPending(shadowKey),
      );
    }
    return result;
  };

  const store: Record<string, AnyMethod> = {};
  for (const [method, spec] of Object.entries(options.description) as [
    string,
    ReadSpec<unknown[]> | WriteSpec<unknown[]>,
  ][]) {
    store[method] =
      spec.kind === 'write' ? (...args) => write(method, spec, args) : (...args) => read(method, spec, args);
  }
  return store as S;
}
