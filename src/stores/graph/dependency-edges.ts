import type { DependencyEdge } from './graph-model.js';
import type { PostgresEntity } from '../../postgres/entity-sql.js';
import { EDGE_KEY, EDGE_SELECT, edgeKeyValues, edgeRange, toEdge } from './postgres-graph-store.js';
import { columnSql } from '../../postgres/row-hash.js';

/** Edges are keyed by project keys; the rows need project ids, so the batch joins projects twice. */
const BULK_INSERT = `WITH batch AS (
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[])
      AS b(from_ecosystem, from_name, to_ecosystem, to_name, created_at)),
  resolved AS (
    SELECT f.id AS from_id, t.id AS to_id, batch.created_at FROM batch
      JOIN projects f ON f.ecosystem = batch.from_ecosystem COLLATE "C" AND f.name = batch.from_name COLLATE "C"
      JOIN projects t ON t.ecosystem = batch.to_ecosystem COLLATE "C" AND t.name = batch.to_name COLLATE "C"),
  inserted AS (
    INSERT INTO project_dependencies (from_project_id, to_project_id, created_at)
    SELECT from_id, to_id, created_at FROM resolved
    ON CONFLICT (from_project_id, to_project_id) DO NOTHING RETURNING 1)
  SELECT (SELECT count(*) FROM resolved)::int AS resolved, (SELECT count(*) FROM inserted)::int AS n`;

/**
 * Dependency edges in PostgreSQL: rows of project_dependencies hold project ids, records
 * hold project keys, so every statement joins projects. An edge whose projects PostgreSQL
 * lacks is unresolved: never inserted.
 */
export const DEPENDENCY_EDGES: PostgresEntity<DependencyEdge> = {
  table: 'project_dependencies',
  checksum: {
    from: 'project_dependencies d JOIN projects f ON f.id = d.from_project_id JOIN projects t ON t.id = d.to_project_id',
    keyList: EDGE_KEY,
    columns: [
      { sql: 'f.ecosystem::text', kind: 'text', field: (r) => (r.from as { ecosystem: string }).ecosystem },
      { sql: 'f.name::text', kind: 'text', field: (r) => (r.from as { name: string }).name },
      { sql: 't.ecosystem::text', kind: 'text', field: (r) => (r.to as { ecosystem: string }).ecosystem },
      { sql: 't.name::text', kind: 'text', field: (r) => (r.to as { name: string }).name },
      { sql: columnSql('d.created_at', 'timestamptz'), kind: 'timestamp', field: (r) => r.createdAt },
    ],
    range: (after, until, first) => edgeRange(after, until, first),
  },
  async bulkInsertSkippingExisting(tx, edges) {
    if (edges.length === 0) return { inserted: 0, resolved: 0 };
    const [row] = await tx.query<{ n: number; resolved: number }>(BULK_INSERT, [
      edges.map((e) => e.from.ecosystem),
      edges.map((e) => e.from.name),
      edges.map((e) => e.to.ecosystem),
      edges.map((e) => e.to.name),
      edges.map((e) => e.createdAt),
    ]);
    return { inserted: Number(row!.n), resolved: Number(row!.resolved) };
  },
  async lockForUpdate(tx, key) {
    const [row] = await tx.query(
      `${EDGE_SELECT} WHERE (${EDGE_KEY}) = ($1, $2, $3, $4) FOR UPDATE OF d`,
      edgeKeyValues(key),
    );
    return row ? toEdge(row) : null;
  },
  async insertIfAbsent(tx, edge) {
    const rows = await tx.query(
      `INSERT INTO project_dependencies (from_project_id, to_project_id, created_at)
       SELECT f.id, t.id, $5::timestamptz FROM projects f, projects t
       WHERE f.ecosystem = $1 AND f.name = $2 AND t.ecosystem = $3 AND t.name = $4
       ON CONFLICT (from_project_id, to_project_id) DO NOTHING RETURNING 1`,
      [edge.from.ecosystem, edge.from.name, edge.to.ecosystem, edge.to.name, edge.createdAt],
    );
    return rows.length > 0;
  },
};
