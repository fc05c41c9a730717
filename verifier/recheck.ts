import type { ComparedSide } from '../src/ports/compared-side.js';
import { otherSide, type Side } from '../src/ports/stage.js';
import { differenceOf } from './difference.js';
import type { VerifyOptions } from './verify-options.js';
import type { Difference } from './verify-report.js';

/**
 * Re-checks each difference up to recheckRounds times. A round reads the authoritative
 * side, waits for writes in flight to settle, reads the mirrored side, then the
 * authoritative side again: the mirrored side then holds at least the first state, so a
 * difference counts only if it matches neither the state before nor the state after.
 * Writes that keep coming to the same key are then never mistaken for drift.
 */
export async function recheck(
  sides: Readonly<Record<Side, ComparedSide>>,
  found: readonly Difference[],
  options: VerifyOptions,
): Promise<readonly Difference[]> {
  let remaining = found;
  for (let round = 0; round < (options.recheckRounds ?? 3) && remaining.length > 0; round++)
    remaining = await recheckRound(sides, remaining, options);
  return remaining;
}

/** The differences still there in one round of re-checks. */
async function recheckRound(
  sides: Readonly<Record<Side, ComparedSide>>,
  differences: readonly Difference[],
  options: VerifyOptions,
): Promise<Difference[]> {
  const authoritative = options.authoritative ?? 'memory';
  const mirrored = otherSide(authoritative);
  const read = (side: Side) =>
    Promise.all(differences.map(({ entity, key }) => sides[side].records.getRecord(entity, key)));
  const before = await read(authoritative);
  await options.settle?.();
  await new Promise((resolve) => setTimeout(resolve, options.graceMs ?? 500));
  const mirroredNow = await read(mirrored);
  const after = await read(authoritative);
  return differences.flatMap((difference, index) => {
    const { store, entity, key } = difference;
    const holding = (authoritativeRecord: unknown) =>
      ({ [authoritative]: authoritativeRecord, [mirrored]: mirroredNow[index] }) as Record<Side, unknown>;
    const still = differenceOf(store, entity, key, holding(after[index]));
    return still && differenceOf(store, entity, key, holding(before[index])) ? [still] : [];
  });
}
