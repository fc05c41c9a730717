import type { WriteContext } from '../domain/write-context.js';
import type { RecordKey } from './record-port.js';

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
   * Ordering keys of the writes this one depends on (the rows it references, in other
   * partitions): its mirror write is applied only after theirs. Default: none.
   */
  readonly requires?: (...args: Args) => readonly string[];
  /**
   * Decides ids, timestamps and defaults, and validates, before either side sees the
   * call, so both sides get identical arguments. Throws on bad input (nothing written).
   */
  readonly decide?: (context: WriteContext, ...args: Args) => Args;
  /**
   * The records the write changed, in the order to copy them (referenced ones first);
   * empty when it changed nothing (a compare-and-set that did not match). The mirror
   * copies these records as the authoritative side holds them, so both stores must
   * implement RecordPort.
   */
  readonly affects: (args: Args, result: unknown) => readonly { readonly entity: string; readonly key: RecordKey }[];
}

type AsyncMethodKeys<S> = { [K in keyof S]: S[K] extends (...args: never[]) => Promise<unknown> ? K : never }[keyof S];

/** A spec for every async method of S: what makes any store interface wrappable. */
export type StoreDescription<S> = {
  readonly [K in AsyncMethodKeys<S>]: S[K] extends (...args: infer A) => Promise<unknown> ? MethodSpec<A> : never;
};
