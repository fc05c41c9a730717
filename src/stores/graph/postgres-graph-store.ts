import { ConflictError, NotFoundError } from '../../domain/errors.js';
import {
  decideAsset,
  decideContribution,
  decideContributor,
  decideDependency,
  decideProject,
  newAsset,
  newContributor,
  projectRef,
  refLabel,
  totalCostOverflow,
  type Asset,
  type AssetInput,
  type Contribution,
  type ContributionInput,
  type Contributor,
  type ContributorInput,
  type DependencyEdge,
  type DependencyOptions,
  type Project,
  type ProjectInput,
  type ProjectRef,
} from './graph-model.js';
import { writeContext, type WriteContext } from '../../domain/write-context.js';
import { pageLimit } from '../../domain/limits.js';
import { lastOfEachKey } from '../../domain/records.js';
import { GRAPH_ENTITIES, type GraphRecords } from './graph-records.js';
import { foldCase, requireText } from '../../domain/text.js';
import { canonicalUuid } from '../../domain/time.js';
import type { PostgresStoreOptions } from '../../postgres/postgres-store-options.js';
import type { GraphStore } from './graph-store.js';
import type { RecordKey, RecordPort, ScanOptions } from '../../ports/record-port.js';
import type { DatabaseErrorFields, SqlExecutor } from '../../postgres/sql-executor.js';
import { fromSql, type TableMapping } from '../../postgres/table-mapping.js';
import { ASSETS, CONTRIBUTIONS, CONTRIBUTORS, PROJECTS } from './graph-table-mappings.js';

/** The mapped tables; dependencies are keyed by project keys and need joins, so they are written by hand below. */
const MAPPED = {
  projects: PROJECTS,
  contributors: CONTRIBUTORS,
  assets: ASSETS,
  contributions: CONTRIBUTIONS,
} as const;

export const EDGE_SELECT = `SELECT f.ecosystem AS from_ecosystem, f.name AS from_name, t.ecosystem AS to_ecosystem, t.name AS to_name, d.created_at
  FROM project_dependencies d JOIN projects f ON f.id = d.from_project_id JOIN projects t ON t.id = d.to_project_id`;
export const EDGE_KEY = 'f.ecosystem, f.name, t.ecosystem, t.name';

/** Makes this transaction's contribution inserts skip the asset-total trigger: copies carry their asset's total already. */
export const RAW_PUT = `SELECT set_config('dualwrite.raw_put', 'on', true)`;

/** GraphStore on PostgreSQL (a pg pool or PGlite), with schema/001_initial_schema.sql applied. */
export class PostgresGraphStore implements GraphStore, RecordPort<GraphRecords> {
  private readonly context: WriteContext;

  constructor(
    readonly db: SqlExecutor,
    options: PostgresStoreOptions = {},
  ) {
    this.context = writeContext(options);
  }

  async getProject(ref: ProjectRef): Promise<Project | null> {
    const key = projectRef('project', ref);
    return this.getRecord('projects', [key.ecosystem, key.name]);
  }

  async upsertProject(input: ProjectInput): Promise<Project> {
    const write = decideProject(input, this.context);
    const [row] = await this.db.query(
      `INSERT INTO projects (ecosystem, name, description, description_folded, homepage_url, repository_url, dependency_count, created_at, updated_at)
       VALUES ($1, $2, $3, $4, $5, $6, 0, $7::timestamptz, $7::timestamptz)
       ON CONFLICT (ecosystem, name) DO UPDATE SET description = EXCLUDED.description, description_folded = EXCLUDED.description_folded,
         homepage_url = EXCLUDED.homepage_url, repository_url = EXCLUDED.repository_url, updated_at = EXCLUDED.updated_at
       RETURNING ${PROJECTS.selectList}`,
      [
        write.ecosystem,
        write.name,
        write.description,
        write.description === null ? null : foldCase(write.description),
        write.homepageUrl,
        write.repositoryUrl,
        write.at,
      ],
    );
    return PROJECTS.toRecord(row!);
  }

  async search(query: string, limit?: number): Promise<Project[]> {
    const pattern = `%${escapeLike(foldCase(requireText('query', query)))}%`;
    const rows = await this.db.query(
      `SELECT ${PROJECTS.selectList}, name LIKE $1 ESCAPE '\\' AS name_match FROM projects
       WHERE name LIKE $1 ESCAPE '\\' OR description_folded LIKE $1 ESCAPE '\\'
       ORDER BY name_match DESC, ecosystem, name LIMIT $2`,
      [pattern, pageLimit('limit', limit, 20)],
    );
    return rows.map((row) => PROJECTS.toRecord(row));
  }

  async countProjects(): Promise<number> {
    return count(await this.db.query('SELECT count(*) AS n FROM projects'));
  }

  async addDependency(from: ProjectRef, to: ProjectRef, options?: DependencyOptions): Promise<DependencyEdge> {
    const write = decideDependency(from, to, options, this.context);
    // One statement: insert the edge if new and, only then, bump the source's count.
    const [row] = await this.db.query<{ source: number | null; target: number | null; created_at: Date | null }>(
      `WITH source AS (SELECT id FROM projects WHERE ecosystem = $1 AND name = $2),
            target AS (SELECT id FROM projects WHERE ecosystem = $3 AND name = $4),
            inserted AS (
              INSERT INTO project_dependencies (from_project_id, to_project_id, created_at)
              SELECT source.id, target.id, $5::timestamptz FROM source, target
              ON CONFLICT (from_project_id, to_project_id) DO NOTHING
              RETURNING from_project_id, created_at),
            bumped AS (
              UPDATE projects SET dependency_count = dependency_count + 1, updated_at = $5::timestamptz
              WHERE id IN (SELECT from_project_id FROM inserted) RETURNING id)
       SELECT (SELECT id FROM source) AS source, (SELECT id FROM target) AS target,
              COALESCE((SELECT created_at FROM inserted),
                       (SELECT d.created_at FROM project_dependencies d, source, target
                        WHERE d.from_project_id = source.id AND d.to_project_id = target.id)) AS created_at`,
      [write.from.ecosystem, write.from.name, write.to.ecosystem, write.to.name, write.at],
    );
    if (row!.source === null) throw new NotFoundError('from', refLabel(write.from));
    if (row!.target === null) throw new NotFoundError('to', refLabel(write.to));
    // created_at is null only when a concurrent transaction inserted the same edge after our snapshot.
    const edge = row!.created_at === null ? await this.getRecord('dependencies', edgeKey(write)) : null;
    return {
      from: write.from,
      to: write.to,
      createdAt: edge ? edge.createdAt : (fromSql('timestamptz', row!.created_at, 'createdAt') as string),
    };
  }

  async countDependents(ref: ProjectRef): Promise<number> {
    const key = projectRef('project', ref);
    return count(
      await this.db.query(
        `SELECT count(*) AS n FROM project_dependencies d JOIN projects p ON p.id = d.to_project_id WHERE p.ecosystem = $1 AND p.name = $2`,
        [key.ecosystem, key.name],
      ),
    );
  }

  async createContributor(input: ContributorInput): Promise<Contributor> {
    const contributor = newContributor(decideContributor(input, this.context));
    await this.insertNew(CONTRIBUTORS, contributor, contributor.id);
    return contributor;
  }

  async getContributor(id: string): Promise<Contributor | null> {
    return this.getRecord('contributors', [canonicalUuid('id', id)]);
  }

  async listContributors(limit?: number): Promise<Contributor[]> {
    return this.newest(CONTRIBUTORS, pageLimit('limit', limit, 100));
  }

  async createAsset(input: AssetInput): Promise<Asset> {
    const asset = newAsset(decideAsset(input, this.context));
    await this.insertNew(ASSETS, asset, asset.id);
    return asset;
  }

  async getAsset(id: string): Promise<Asset | null> {
    return this.getRecord('assets', [canonicalUuid('id', id)]);
  }

  async listAssets(limit?: number): Promise<Asset[]> {
    return this.newest(ASSETS, pageLimit('limit', limit, 100));
  }

  async createContribution(input: ContributionInput): Promise<Contribution> {
    const c = decideContribution(input, this.context);
    try {
      // The schema's trigger adds the cost to the asset in the same statement.
      const rows = await this.db.query(
        `INSERT INTO contributions (id, contributor_id, asset_id, cost_amount, coherence_score, metadata, timestamp)
         SELECT $1::uuid, $2::uuid, $3::uuid, $4::numeric, $5::numeric, $6::jsonb, $7::timestamptz
         WHERE EXISTS (SELECT 1 FROM contributors WHERE id = $2::uuid) AND EXISTS (SELECT 1 FROM assets WHERE id = $3::uuid)
         ON CONFLICT (id) DO NOTHING RETURNING id`,
        [c.id, c.contributorId, c.assetId, c.costAmount, c.coherenceScore, JSON.stringify(c.metadata), c.timestamp],
      );
      if (rows.length === 0) {
        if (!(await this.getContributor(c.contributorId))) throw new NotFoundError('contributorId', c.contributorId);
        if (!(await this.getAsset(c.assetId))) throw new NotFoundError('assetId', c.assetId);
        throw new ConflictError('id', c.id);
      }
    } catch (error) {
      throw mapContributionError(error, c);
    }
    return c;
  }

  async getContribution(id: string): Promise<Contribution | null> {
    return this.getRecord('contributions', [canonicalUuid('id', id)]);
  }

  async listContributionsByAsset(assetId: string): Promise<Contribution[]> {
    return this.contributionsWhere('asset_id', canonicalUuid('assetId', assetId));
  }

  async listContributionsByContributor(contributorId: string): Promise<Contribution[]> {
    return this.contributionsWhere('contributor_id', canonicalUuid('contributorId', contributorId));
  }

  keyOf<E extends keyof GraphRecords>(entity: E, record: GraphRecords[E]): RecordKey {
    return GRAPH_ENTITIES[entity].keyOf(record);
  }

  async scanRecords<E extends keyof GraphRecords>(entity: E, options: ScanOptions): Promise<GraphRecords[E][]> {
    const { after, until } = options;
    if (entity === 'dependencies') {
      const { where, params } = edgeRange(after, until);
      const rows = await this.db.query(`${EDGE_SELECT} ${where} ORDER BY ${EDGE_KEY} LIMIT $${params.length + 1}`, [
        ...params,
        options.limit,
      ]);
      return rows.map(toEdge) as GraphRecords[E][];
    }
    const table = mapped(entity);
    const rows = await this.db.query(table.scanSql(after !== undefined, until !== undefined), [
      ...(after ? table.keyValues(after) : []),
      ...(until ? table.keyValues(until) : []),
      options.limit,
    ]);
    return rows.map((row) => table.toRecord(row)) as GraphRecords[E][];
  }

  async getRecord<E extends keyof GraphRecords>(entity: E, key: RecordKey): Promise<GraphRecords[E] | null> {
    if (entity === 'dependencies') {
      const [row] = await this.db.query(`${EDGE_SELECT} WHERE (${EDGE_KEY}) = ($1, $2, $3, $4)`, edgeKeyValues(key));
      return (row ? toEdge(row) : null) as GraphRecords[E] | null;
    }
    const table = mapped(entity);
    const [row] = await this.db.query(table.getSql(), table.keyValues(key));
    return (row ? table.toRecord(row) : null) as GraphRecords[E] | null;
  }

  async putRecord<E extends keyof GraphRecords>(entity: E, record: GraphRecords[E]): Promise<void> {
    const normalized = GRAPH_ENTITIES[entity].normalize(record);
    if (entity === 'dependencies') return this.putEdge(normalized as DependencyEdge);
    const table = mapped(entity);
    if (entity !== 'contributions') {
      await this.db.query(table.insertSql('overwrite'), table.insertParams(normalized as never));
      return;
    }
    try {
      // A copied contribution must not add to its asset's total a second time.
      await this.db.transaction(async (tx) => {
        await tx.query(RAW_PUT);
        await tx.query(table.insertSql('overwrite'), table.insertParams(normalized as never));
      });
    } catch (error) {
      throw mapContributionError(error, normalized as Contribution);
    }
  }

  async putRecords<E extends keyof GraphRecords>(entity: E, records: readonly GraphRecords[E][]): Promise<void> {
    const definition = GRAPH_ENTITIES[entity];
    const normalized = lastOfEachKey(
      records.map((record) => definition.normalize(record)),
      (record) => definition.keyOf(record),
    );
    if (entity === 'dependencies' || normalized.length < 2) {
      for (const record of normalized) await this.putRecord(entity, record);
      return;
    }
    const table = mapped(entity as Exclude<E, 'dependencies'>);
    if (entity !== 'contributions') {
      await this.db.query(table.bulkInsertSql('overwrite'), table.bulkInsertParams(normalized));
      return;
    }
    try {
      await this.db.transaction(async (tx) => {
        await tx.query(RAW_PUT);
        await tx.query(table.bulkInsertSql('overwrite'), table.bulkInsertParams(normalized));
      });
    } catch (error) {
      // Which contribution of the batch failed is in the error's detail, not known here.
      throw mapContributionError(error, { contributorId: '(one of a batch)', assetId: '(one of a batch)' });
    }
  }

  async deleteRecord<E extends keyof GraphRecords>(entity: E, key: RecordKey): Promise<boolean> {
    if (entity === 'dependencies') {
      const rows = await this.db.query(
        `DELETE FROM project_dependencies d USING projects f, projects t
         WHERE d.from_project_id = f.id AND d.to_project_id = t.id AND (${EDGE_KEY}) = ($1, $2, $3, $4) RETURNING 1`,
        edgeKeyValues(key),
      );
      return rows.length > 0;
    }
    const table = mapped(entity);
    return (await this.db.query(table.deleteSql(), table.keyValues(key))).length > 0;
  }

  private async putEdge(edge: DependencyEdge): Promise<void> {
    const rows = await this.db.query(
      `INSERT INTO project_dependencies (from_project_id, to_project_id, created_at)
       SELECT f.id, t.id, $5::timestamptz FROM projects f, projects t
       WHERE f.ecosystem = $1 AND f.name = $2 AND t.ecosystem = $3 AND t.name = $4
       ON CONFLICT (from_project_id, to_project_id) DO UPDATE SET created_at = EXCLUDED.created_at RETURNING 1`,
      [...edgeKeyValues(GRAPH_ENTITIES.dependencies.keyOf(edge)), edge.createdAt],
    );
    if (rows.length === 0) {
      if (!(await this.getProject(edge.from))) throw new NotFoundError('from', refLabel(edge.from));
      throw new NotFoundError('to', refLabel(edge.to));
    }
  }

  private async insertNew<R>(table: TableMapping<R>, record: R, id: string): Promise<void> {
    const rows = await this.db.query(table.insertSql('skip'), table.insertParams(record));
    if (rows.length === 0) throw new ConflictError('id', id);
  }

  private async newest<R>(table: TableMapping<R>, limit: number): Promise<R[]> {
    const rows = await this.db.query(
      `SELECT ${table.selectList} FROM ${table.table} ORDER BY created_at DESC, id LIMIT $1`,
      [limit],
    );
    return rows.map((row) => table.toRecord(row));
  }

  private async contributionsWhere(column: 'asset_id' | 'contributor_id', id: string): Promise<Contribution[]> {
    const rows = await this.db.query(
      `SELECT ${CONTRIBUTIONS.selectList} FROM contributions WHERE ${column} = $1::uuid ORDER BY timestamp, id`,
      [id],
    );
    return rows.map((row) => CONTRIBUTIONS.toRecord(row));
  }
}

function mapped(entity: Exclude<keyof GraphRecords, 'dependencies'>): TableMapping<unknown> {
  return MAPPED[entity] as TableMapping<unknown>;
}

/** Turns database errors of a contribution write into the errors the in-memory store raises. */
function mapContributionError(error: unknown, c: Pick<Contribution, 'contributorId' | 'assetId'>): unknown {
  const { code, constraint } = error as DatabaseErrorFields;
  if (code === '22003') return totalCostOverflow();
  if (code === '23503' && constraint === 'contributions_contributor_id_fkey')
    return new NotFoundError('contributorId', c.contributorId);
  if (code === '23503' && constraint === 'contributions_asset_id_fkey') return new NotFoundError('assetId', c.assetId);
  return error;
}

export function toEdge(row: Record<string, unknown>): DependencyEdge {
  return {
    from: { ecosystem: row.from_ecosystem as string, name: row.from_name as string },
    to: { ecosystem: row.to_ecosystem as string, name: row.to_name as string },
    createdAt: fromSql('timestamptz', row.created_at, 'createdAt') as string,
  };
}

/**
 * WHERE clause for edge keys in (after, until]. The bounds are also stated on the source
 * project's (ecosystem, name) alone, which the projects index can serve.
 */
export function edgeRange(
  after: RecordKey | undefined,
  until: RecordKey | undefined,
  first = 1,
): { where: string; params: string[] } {
  const conditions: string[] = [];
  const params: string[] = [];
  const bound = (key: RecordKey, prefixOp: string, op: string) => {
    const n = first + params.length;
    params.push(...edgeKeyValues(key));
    conditions.push(
      `(f.ecosystem, f.name) ${prefixOp} ($${n}, $${n + 1})`,
      `(${EDGE_KEY}) ${op} ($${n}, $${n + 1}, $${n + 2}, $${n + 3})`,
    );
  };
  if (after) bound(after, '>=', '>');
  if (until) bound(until, '<=', '<=');
  return { where: conditions.length ? `WHERE ${conditions.join(' AND ')}` : '', params };
}

function edgeKey(edge: { from: ProjectRef; to: ProjectRef }): RecordKey {
  return [edge.from.ecosystem, edge.from.name, edge.to.ecosystem, edge.to.name];
}

export function edgeKeyValues(key: RecordKey): string[] {
  if (key.length !== 4) throw new TypeError(`dependency keys have 4 parts, got ${key.length}`);
  return [...key];
}

/** Escapes LIKE's metacharacters so the query matches literally. */
export function escapeLike(text: string): string {
  return text.replace(/[\\%_]/g, (c) => `\\${c}`);
}

export function count(rows: Record<string, unknown>[]): number {
  // pg returns count(*) (int8) as a string, PGlite as a number.
  return Number(rows[0]!.n);
}
