import type { RecordKey } from '../ports/record-port.js';
import type { KeyRange, RangeChecksum, RangeChecksums } from '../ports/range-checksums.js';
import type { EntitySql } from './entity-sql.js';
import { rowHashSql } from './row-hash.js';
import type { SqlQueryable } from './sql-executor.js';

/** Range checksums computed inside PostgreSQL, one statement per call, so no row leaves the server. */
export class PostgresRangeChecksums implements RangeChecksums {
  constructor(
    private readonly db: SqlQueryable,
    private readonly entities: Readonly<Record<string, EntitySql>>,
  ) {}

  async count(entity: string, range: KeyRange): Promise<number> {
    const sql = this.sqlOf(entity);
    const { where, params } = sql.range(range.after, range.until, 1);
    const [row] = await this.db.query<{ n: string | number }>(`SELECT count(*) AS n FROM ${sql.from} ${where}`, params);
    return Number(row!.n);
  }

  async checksum(entity: string, range: KeyRange): Promise<RangeChecksum> {
    const sql = this.sqlOf(entity);
    const { where, params } = sql.range(range.after, range.until, 1);
    const [row] = await this.db.query<{ n: string | number; s: string }>(
      `SELECT count(*) AS n, coalesce(sum(${rowHashSql(sql.columns)}), 0)::text AS s FROM ${sql.from} ${where}`,
      params,
    );
    return { rows: Number(row!.n), sum: BigInt(row!.s) };
  }

  async splitKeys(entity: string, range: KeyRange, every: number, rows: number): Promise<RecordKey[]> {
    const sql = this.sqlOf(entity);
    const { where, params } = sql.range(range.after, range.until, 1);
    const keys = sql.keyList.split(', ');
    const found = await this.db.query<Record<string, string>>(
      `SELECT * FROM (SELECT ${keys.map((k, i) => `${k} AS k${i}`).join(', ')}, row_number() OVER (ORDER BY ${sql.keyList}) AS rn FROM ${sql.from} ${where}) q
       WHERE rn % $${params.length + 1} = 0 AND rn < $${params.length + 2} ORDER BY rn`,
      [...params, every, rows],
    );
    return found.map((row) => keys.map((_, i) => String(row[`k${i}`])));
  }

  private sqlOf(entity: string): EntitySql {
    const sql = this.entities[entity];
    if (!sql) throw new TypeError(`no PostgreSQL SQL for entity ${entity}`);
    return sql;
  }
}
