import type { WriteContext } from '../domain/graph.js';
import type { RecordKey } from '../ports/record-port.js';

/** How the DualWriteStore treats one method of a store interface. */
export type MethodSpec<Args extends unknown[]> = ReadSpec<Args> | WriteSpec<Args>;

export interface ReadSpec<Args extends unknown[]> {
  readonly kind: 'read';
  /**
   * Routing key of a call: reads with the same key stick to one side. Absent: the read
   * has no key (a list, search or count) and is routed by the key `op:<method>`, so each
   * such operation moves to PostgreSQL as a whole, in a fixed order, as the percentage rises.
   */
  readonly key?: (...args: Args) => string;
}

export interface WriteSpec<Args extends unknown[]> {
  readonly kind: 'write';
  /** Ordering key: mirror writes with the same key are applied in order. */
  readonly key: (...args: Args) => string;
  /**
   * Decides ids, timestamps and defaults, and validates, before either side sees the
   * call, so both sides get identical arguments. Throws on bad input (nothing written).
   */
  readonly decide?: (context: WriteContext, ...args: Args) => Args;
  /**
   * The call to mirror, given the decided arguments and the authoritative side's result;
   * null when there is nothing to mirror. Default: the decided arguments as they are.
   */
  readonly mirrorArgs?: (args: Args, result: unknown) => Args | null;
  /**
   * The records the write changes, in the order to copy them (referenced ones first).
   * When given and memory is authoritative, the mirror copies these records as memory
   * holds them after the write instead of calling the method on PostgreSQL: a copy
   * converges whatever a concurrent backfill already copied, where a re-run operation
   * would count a total or a dependency twice. Both stores must implement RecordPort.
   */
  readonly affects?: (args: Args, result: unknown) => readonly { readonly entity: string; readonly key: RecordKey }[];
}

type AsyncMethodKeys<S> = { [K in keyof S]: S[K] extends (...args: never[]) => Promise<unknown> ? K : never }[keyof S];

/** A spec for every async method of S: what makes any store interface wrappable. */
export type StoreDescription<S> = {
  readonly [K in AsyncMethodKeys<S>]: S[K] extends (...args: infer A) => Promise<unknown> ? MethodSpec<A> : never;
};
