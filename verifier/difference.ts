import { isDeepStrictEqual } from 'node:util';
import { diffString } from 'json-diff';
import type { RecordKey } from '../src/ports/record-port.js';
import type { Side } from '../src/ports/stage.js';
import type { Difference } from './verify-report.js';

/**
 * How the records two sides hold under `key` differ (null where a side holds none), frozen;
 * undefined when they are equal.
 */
export function differenceOf(
  store: string,
  entity: string,
  key: RecordKey,
  records: Readonly<Record<Side, unknown>>,
): Difference | undefined {
  const { memory, postgres } = records;
  if (memory === null && postgres === null) return undefined;
  if (memory === null) return Object.freeze({ store, entity, key, kind: 'missing_in_memory', memory, postgres });
  if (postgres === null) return Object.freeze({ store, entity, key, kind: 'missing_in_postgres', memory, postgres });
  if (isDeepStrictEqual(memory, postgres)) return undefined;
  const left = memory as Record<string, unknown>;
  const right = postgres as Record<string, unknown>;
  const fields = Object.keys(left).filter((field) => !isDeepStrictEqual(left[field], right[field]));
  return Object.freeze({
    store,
    entity,
    key,
    kind: 'fields_differ',
    fields,
    diff: diffString(memory, postgres, { color: false }) ?? '',
    memory,
    postgres,
  });
}
