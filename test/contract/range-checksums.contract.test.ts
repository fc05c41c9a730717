import { isDeepStrictEqual } from 'node:util';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  DISPATCH_ENTITIES,
  DISPATCH_ENTITY_NAMES,
  DISPATCH_TABLES,
  type DispatchColumn,
  type DispatchEntity,
  type DispatchTable,
} from '../../src/stores/dispatch/dispatch-records.js';
import { MemoryRangeChecksums } from '../../src/memory/memory-range-checksums.js';
import { MemoryTables } from '../../src/memory/memory-tables.js';
import { PostgresDispatchStore } from '../../src/stores/dispatch/postgres-dispatch-store.js';
import type { SqlExecutor } from '../../src/postgres/sql-executor.js';
import type { KeyRange, RangeChecksums } from '../../src/ports/range-checksums.js';
import type { RecordKey } from '../../src/ports/record-port.js';
import { SqliteDispatchStore } from '../../src/stores/dispatch/sqlite-dispatch-store.js';
import { memorySide, postgresSide, rowHashesOf } from '../../src/stores/compared-sides.js';
import { DISPATCH_DEFINITION } from '../../src/stores/dispatch/dispatch-store-definition.js';
import { availableBackends, useBackend } from '../support/backends.js';
import { DISPATCH_TABLE_LIST } from '../support/dispatch-backends.js';

/**
 * The three implementations of the range-checksum port agree: memory (JavaScript over
 * MemoryTables), SQLite (a registered row hash) and PostgreSQL (in SQL) count, checksum and
 * split the same records alike, and a field changed on one side changes that side's
 * checksum alone. Over the dispatch tables, the one store with all three sides; records of
 * every column kind, with keys and values drawn at random.
 */

/** Any value a dispatch column holds, null included where the column allows it. */
function columnValue(column: DispatchColumn): fc.Arbitrary<unknown> {
  const value = nonNullValue(column);
  return column.notNull || column.kind === 'serial' ? value : fc.option(value, { nil: null });
}

const text = fc.string({ unit: 'grapheme', maxLength: 8 }).filter((s) => !s.includes('\u0000'));
const json: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small' },
    fc.constant(null),
    fc.boolean(),
    fc.integer(),
    fc.double({ noNaN: true, noDefaultInfinity: true }),
    text,
    fc.array(tie('value'), { maxLength: 3 }),
    fc.dictionary(text, tie('value'), { maxKeys: 3 }),
  ),
})).value;

function nonNullValue(column: DispatchColumn): fc.Arbitrary<unknown> {
  switch (column.kind) {
    case 'text':
      return column.oneOf ? fc.constantFrom(...column.oneOf) : text;
    case 'integer':
      return fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 });
    case 'serial':
      return fc.integer({ min: 1, max: 2 ** 31 - 1 });
    case 'bigint':
      return fc.maxSafeInteger();
    case 'real':
      return fc.double({ noNaN: true, noDefaultInfinity: true });
    case 'timestamp':
      return fc
        .date({ min: new Date('0001-01-01T00:00:00Z'), max: new Date('9999-12-31T23:59:59Z'), noInvalidDate: true })
        .map((date) => date.toISOString());
    case 'json':
      return json;
  }
}

/** Records of `entity` with distinct keys, canonical as the stores hold them. */
function recordsOf(entity: DispatchEntity): fc.Arbitrary<object[]> {
  const table = DISPATCH_TABLES[entity] as DispatchTable<unknown>;
  const { keyOf, normalize } = DISPATCH_ENTITIES[entity];
  const record = fc.record(Object.fromEntries(table.columns.map((c) => [c.field, columnValue(c)])));
  return fc
    .uniqueArray(record, { minLength: 1, maxLength: 12, selector: (r) => keyOf(normalize(r) as never).join('\u0000') })
    .map((records) => records.map((r) => normalize(r) as object));
}

const SIDES = ['memory', 'sqlite', 'postgres'] as const;
type SideName = (typeof SIDES)[number];
type Sides = Readonly<Record<SideName, RangeChecksums>>;

/** One side holding just `records` of `entity` (PostgreSQL's dispatch tables are emptied first). */
async function sideHolding(
  name: SideName,
  db: SqlExecutor,
  entity: DispatchEntity,
  records: readonly object[],
): Promise<RangeChecksums> {
  switch (name) {
    case 'memory': {
      const tables = new MemoryTables(DISPATCH_ENTITIES);
      for (const record of records) tables.put(entity, record as never);
      return new MemoryRangeChecksums(tables, rowHashesOf(DISPATCH_DEFINITION));
    }
    case 'sqlite': {
      const sqlite = SqliteDispatchStore.createMemory();
      await sqlite.putRecords(entity, records as never);
      return memorySide(DISPATCH_DEFINITION, sqlite).checksums;
    }
    case 'postgres': {
      await db.query(`TRUNCATE ${DISPATCH_TABLE_LIST} RESTART IDENTITY`);
      const postgres = new PostgresDispatchStore(db);
      await postgres.putRecords(entity, records as never);
      return postgresSide(DISPATCH_DEFINITION, postgres, db).checksums;
    }
  }
}

/** The three sides, each holding the records `recordsOn` gives it. */
async function sidesHolding(
  db: SqlExecutor,
  entity: DispatchEntity,
  recordsOn: (name: SideName) => readonly object[],
): Promise<Sides> {
  const sides: Partial<Record<SideName, RangeChecksums>> = {};
  for (const name of SIDES) sides[name] = await sideHolding(name, db, entity, recordsOn(name));
  return sides as Sides;
}

/** What each side says of `range`: its count, checksum and keys splitting it in parts of `every` records. */
async function described(sides: Sides, entity: string, range: KeyRange, every: number) {
  return Object.fromEntries(
    await Promise.all(
      Object.entries(sides).map(async ([name, side]) => {
        const count = await side.count(entity, range);
        const { rows, sum } = await side.checksum(entity, range);
        return [name, { count, rows, sum: String(sum), splitKeys: await side.splitKeys(entity, range, every, count) }];
      }),
    ),
  );
}

for (const factory of availableBackends(['pglite', 'postgres'])) {
  describe(`range checksums of memory, SQLite and ${factory.name}`, () => {
    const backend = useBackend(factory);

    it.each(DISPATCH_ENTITY_NAMES)(
      'agree on equal records of %s, over the whole table and each part of it',
      async (entity) => {
        await fc.assert(
          fc.asyncProperty(recordsOf(entity), fc.integer({ min: 1, max: 4 }), async (records, every) => {
            const sides = await sidesHolding(backend.current.db!, entity, () => records);
            const whole = await described(sides, entity, {}, every);
            expect(whole.memory).toMatchObject({ count: records.length, rows: records.length });
            expect(whole.sqlite).toEqual(whole.memory);
            expect(whole.postgres).toEqual(whole.memory);
            const bounds: (RecordKey | undefined)[] = [undefined, ...whole.memory!.splitKeys, undefined];
            for (let index = 0; index < bounds.length - 1; index++) {
              const part = await described(sides, entity, { after: bounds[index], until: bounds[index + 1] }, 1);
              expect(part.sqlite).toEqual(part.memory);
              expect(part.postgres).toEqual(part.memory);
            }
          }),
          { numRuns: 12 },
        );
      },
    );

    it.each(DISPATCH_ENTITY_NAMES)(
      'tell records of %s apart when one field of one record differs on one side',
      async (entity) => {
        const table = DISPATCH_TABLES[entity] as DispatchTable<unknown>;
        const fields = table.columns.filter((c) => !table.key.includes(c.column));
        await fc.assert(
          fc.asyncProperty(
            recordsOf(entity),
            fc.nat(),
            fc.constantFrom(...fields),
            fc.constantFrom(...SIDES),
            fc.gen(),
            async (records, which, column, changedOn, draw) => {
              const original = records[which % records.length]!;
              const changed = DISPATCH_ENTITIES[entity].normalize({
                ...original,
                [column.field]: draw(() => columnValue(column)),
              } as never) as object;
              fc.pre(!isDeepStrictEqual(changed, original));
              const changedRecords = records.map((record) => (record === original ? changed : record));
              const sides = await sidesHolding(backend.current.db!, entity, (name) =>
                name === changedOn ? changedRecords : records,
              );
              const whole = await described(sides, entity, {}, records.length);
              const [same, alsoSame] = SIDES.filter((name) => name !== changedOn);
              expect(whole[same!]!.sum).toBe(whole[alsoSame!]!.sum);
              expect(whole[changedOn]!.sum).not.toBe(whole[same!]!.sum);
              expect(whole[changedOn]!.rows).toBe(records.length);
            },
          ),
          { numRuns: 12 },
        );
      },
    );
  });
}
