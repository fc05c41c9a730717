import type { JsonObject } from './json.js';
import { canonicalTimestamp, canonicalUuid, randomIds, systemClock, type Clock, type IdGenerator } from './time.js';

/** What a store needs to decide ids and times the caller left out. */
export interface WriteContext {
  readonly clock: Clock;
  readonly ids: IdGenerator;
}

/** The write context of a store's options: the system clock and random UUIDs unless given. */
export function writeContext(options: { readonly clock?: Clock; readonly ids?: IdGenerator }): WriteContext {
  return { clock: options.clock ?? systemClock, ids: options.ids ?? randomIds };
}

/**
 * A write input in its fully decided form: every optional field filled in, JSON in
 * canonical form, decimals as canonical strings. Stores apply only decided writes.
 */
export type Decided<T> = {
  readonly [K in keyof T]-?: K extends 'metadata' | 'context'
    ? JsonObject
    : K extends 'costAmount' | 'coherenceScore'
      ? string
      : Exclude<T[K], undefined>;
};

export function decideTime(field: string, value: unknown, context: WriteContext): string {
  return canonicalTimestamp(field, value ?? context.clock.now());
}

export function decideUuid(field: string, value: unknown, context: WriteContext): string {
  return canonicalUuid(field, value ?? context.ids.uuid());
}
