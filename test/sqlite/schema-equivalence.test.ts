import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  DISPATCH_ENTITY_NAMES,
  DISPATCH_TABLES,
  type DispatchColumnKind,
} from '../../src/stores/dispatch/dispatch-records.js';
import { loadMigrations, migrate } from '../../src/postgres/migrations.js';
import { openPglite } from '../support/pglite.js';
import type { SqlExecutor } from '../../src/postgres/sql-executor.js';
import { type SqliteDatabase } from '../../src/sqlite/better-sqlite3.js';
import { openDispatchDatabase } from '../../src/stores/dispatch/sqlite-dispatch-database.js';
import { availableBackends, openPostgresSchema } from '../support/backends.js';

/**
 * schema/sqlite/dispatch.sql and schema/007_dispatch.sql hold the same tables, columns and
 * indexes, read from each engine's own catalog: every SQLite column has its PostgreSQL
 * counterpart with the translated type, nullability, default and key, and every index the
 * same columns and predicate. The record catalog (DISPATCH_TABLES) says which TEXT columns
 * are dates and which JSON, and must list exactly these columns.
 */

interface Column {
  readonly type: string;
  readonly notNull: boolean;
  readonly default: string | null;
}
interface Catalog {
  readonly tables: Record<string, { readonly columns: Record<string, Column>; readonly primaryKey: readonly string[] }>;
  /** Index name -> "table(columns) [WHERE predicate]". */
  readonly indexes: Record<string, string>;
}

/** The PostgreSQL type each SQLite column becomes, by what its values are. */
const TRANSLATED: Record<DispatchColumnKind, Record<string, string>> = {
  text: { TEXT: 'text' },
  timestamp: { TEXT: 'timestamp with time zone' },
  json: { TEXT: 'jsonb' },
  integer: { INTEGER: 'integer' },
  serial: { INTEGER: 'integer' },
  bigint: { INTEGER: 'bigint' },
  real: { REAL: 'double precision' },
};

/** Defaults compared by meaning: without casts, SQLite's datetime('now') as now(), a SERIAL's sequence as "serial". */
function defaultOf(value: string | null): string | null {
  if (value === null) return null;
  if (value.startsWith('nextval(')) return 'serial';
  return value
    .replace(/::[a-z ]+$/, '')
    .replace(/^\(?datetime\('now'\)\)?$/, 'now()')
    .toLowerCase();
}

function sqliteCatalog(db: SqliteDatabase): Catalog {
  const tables: Catalog['tables'] = {};
  const indexes: Record<string, string> = {};
  const names = db
    .prepare(`SELECT name, sql FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name`)
    .all() as { name: string; sql: string }[];
  for (const { name, sql } of names) {
    const info = db.pragma(`table_info(${name})`) as {
      name: string;
      type: string;
      notnull: number;
      dflt_value: string | null;
      pk: number;
    }[];
    const autoincrement = /AUTOINCREMENT/i.test(sql);
    tables[name] = {
      columns: Object.fromEntries(
        info.map((c) => [
          c.name,
          {
            type: c.type,
            notNull: c.notnull === 1 || c.pk > 0,
            default: autoincrement && c.pk > 0 ? 'serial' : defaultOf(c.dflt_value),
          },
        ]),
      ),
      primaryKey: info
        .filter((c) => c.pk > 0)
        .sort((a, b) => a.pk - b.pk)
        .map((c) => c.name),
    };
    for (const index of db.pragma(`index_list(${name})`) as { name: string; origin: string; partial: number }[]) {
      if (index.origin !== 'c') continue;
      const columns = (db.pragma(`index_info(${index.name})`) as { seqno: number; name: string }[])
        .sort((a, b) => a.seqno - b.seqno)
        .map((c) => c.name);
      const { sql: indexSql } = db
        .prepare(`SELECT sql FROM sqlite_master WHERE type = 'index' AND name = ?`)
        .get(index.name) as { sql: string };
      const predicate = index.partial ? / WHERE (.+?);?$/is.exec(indexSql)![1]!.trim() : undefined;
      indexes[index.name] = `${name}(${columns.join(', ')})${predicate ? ` WHERE ${predicate}` : ''}`;
    }
  }
  return { tables, indexes };
}

/** PostgreSQL's catalog of `tables` (information_schema, pg_indexes), in the connection's current schema. */
async function postgresCatalog(db: SqlExecutor, tables: readonly string[]): Promise<Catalog> {
  const out: Catalog['tables'] = {};
  const columns = await db.query<{
    table_name: string;
    column_name: string;
    data_type: string;
    is_nullable: string;
    column_default: string | null;
  }>(
    `SELECT table_name, column_name, data_type, is_nullable, column_default FROM information_schema.columns
     WHERE table_schema = current_schema() AND table_name = ANY($1::text[]) ORDER BY table_name, ordinal_position`,
    [tables],
  );
  for (const c of columns) {
    out[c.table_name] ??= { columns: {}, primaryKey: [] };
    (out[c.table_name]!.columns as Record<string, Column>)[c.column_name] = {
      type: c.data_type,
      notNull: c.is_nullable === 'NO',
      default: defaultOf(c.column_default),
    };
  }
  const keys = await db.query<{ table_name: string; column_name: string }>(
    `SELECT k.table_name, k.column_name FROM information_schema.table_constraints t
     JOIN information_schema.key_column_usage k ON k.constraint_name = t.constraint_name AND k.table_schema = t.table_schema AND k.table_name = t.table_name
     WHERE t.constraint_type = 'PRIMARY KEY' AND t.table_schema = current_schema() AND t.table_name = ANY($1::text[]) ORDER BY k.table_name, k.ordinal_position`,
    [tables],
  );
  for (const k of keys) (out[k.table_name]!.primaryKey as string[]).push(k.column_name);
  const indexes: Record<string, string> = {};
  const defs = await db.query<{ indexname: string; tablename: string; indexdef: string }>(
    `SELECT indexname, tablename, indexdef FROM pg_indexes WHERE schemaname = current_schema() AND tablename = ANY($1::text[]) AND indexname NOT LIKE '%_pkey' ORDER BY indexname`,
    [tables],
  );
  for (const { indexname, tablename, indexdef } of defs) {
    const [, columnList, predicate] = /USING btree \((.+?)\)(?: WHERE \((.+)\))?$/.exec(indexdef)!;
    // Quotes PostgreSQL adds around keyword-like names, and the cast it adds to literals, are not differences.
    const unquote = (text: string) => text.replace(/"([a-z_]+)"/g, '$1').replace(/::text/g, '');
    indexes[indexname] = `${tablename}(${unquote(columnList!)})${predicate ? ` WHERE ${unquote(predicate)}` : ''}`;
  }
  return { tables: out, indexes };
}

/** The SQLite catalog as PostgreSQL should hold it, by the translation rules; throws if the record catalog disagrees with SQLite's columns. */
function translate(sqlite: Catalog): Catalog {
  const tables: Catalog['tables'] = {};
  for (const [name, table] of Object.entries(sqlite.tables)) {
    const spec = DISPATCH_TABLES[name as keyof typeof DISPATCH_TABLES];
    expect(spec, `record catalog entry for table ${name}`).toBeDefined();
    expect(
      spec.columns.map((c) => c.column),
      `record catalog columns of ${name}`,
    ).toEqual(Object.keys(table.columns));
    tables[name] = {
      primaryKey: table.primaryKey,
      columns: Object.fromEntries(
        spec.columns.map((c) => {
          const column = table.columns[c.column]!;
          return [
            c.column,
            { ...column, type: TRANSLATED[c.kind][column.type] ?? `no translation of ${column.type} for ${c.kind}` },
          ];
        }),
      ),
    };
  }
  return { tables, indexes: sqlite.indexes };
}

const TABLES = DISPATCH_ENTITY_NAMES.map((entity) => DISPATCH_TABLES[entity].table);

for (const name of availableBackends(['pglite', 'postgres']).map((f) => f.name)) {
  describe(`the dispatch schema on SQLite and on ${name}`, () => {
    let db: SqlExecutor;
    let drop: () => Promise<void>;
    let sqlite: SqliteDatabase;
    beforeEach(async () => {
      if (name === 'pglite') {
        const pglite = await openPglite();
        db = pglite;
        drop = () => pglite.close();
      } else {
        ({ db, drop } = await openPostgresSchema('dw_dispatch_schema'));
      }
      await migrate(db, await loadMigrations());
      sqlite = openDispatchDatabase(':memory:');
    }, 60_000);
    afterEach(async () => {
      sqlite.close();
      await drop();
    });

    it('has every table, column (translated type, nullability, default, key) and index on both sides', async () => {
      const fromSqlite = sqliteCatalog(sqlite);
      expect(Object.keys(fromSqlite.tables).sort()).toEqual([...TABLES].sort());
      expect(Object.keys(fromSqlite.indexes).sort()).toEqual([
        'idx_events_timestamp',
        'idx_tasks_lease',
        'idx_tasks_project',
        'idx_tasks_status',
      ]);
      expect(fromSqlite.indexes.idx_tasks_lease).toBe(`tasks(lease_expires_at) WHERE status = 'claimed'`);
      expect(await postgresCatalog(db, TABLES)).toEqual(translate(fromSqlite));
    });

    it('tells a column or an index missing on either side', async () => {
      await db.execScript('ALTER TABLE nodes DROP COLUMN enabled; DROP INDEX idx_tasks_lease;');
      const postgres = await postgresCatalog(db, TABLES);
      const expected = translate(sqliteCatalog(sqlite));
      expect(postgres).not.toEqual(expected);
      expect(postgres.tables.nodes!.columns.enabled).toBeUndefined();
      expect(postgres.indexes.idx_tasks_lease).toBeUndefined();

      sqlite.exec('ALTER TABLE events DROP COLUMN details; DROP INDEX idx_tasks_project;');
      expect(() => translate(sqliteCatalog(sqlite))).toThrow(/record catalog columns of events/);
      expect(sqliteCatalog(sqlite).indexes.idx_tasks_project).toBeUndefined();
    });
  });
}
