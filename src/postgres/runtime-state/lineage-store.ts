import { isStage, type Side, type Stage } from '../../ports/stage.js';
import type { DatabaseErrorFields, SqlQueryable } from '../sql-executor.js';

const UNDEFINED_TABLE = '42P01';

/** Which side holds every acknowledged write, as the deployment's processes recorded it. */
export interface LineageState {
  /** Bumped by every start of a writing process and every change of authority. */
  readonly generation: number;
  /** The stage last in force. */
  readonly stage: Stage;
  /** Since when PostgreSQL has received every acknowledged write; absent while memory-only is in force. */
  readonly postgresCurrentSince?: string;
  /** PostgreSQL also holds every write made before postgresCurrentSince (no memory-only write is missing). */
  readonly postgresComplete: boolean;
  /** Set while a side may miss acknowledged writes the outbox lost, until a verification proves the sides equal. */
  readonly unverified?: Unverified;
  readonly changedAt: string;
  readonly changedBy: string;
}

/** A side that may miss writes the outbox lost: since when, and what was lost. */
export interface Unverified {
  readonly side: Side;
  readonly since: string;
  readonly reason: string;
}

/**
 * What happened since the lineage was last written, coalesced: the stage now in force, how
 * many times the generation moved, and whether PostgreSQL's completeness changed (the last
 * word wins: memory-only in force makes it incomplete, a clean resync complete again).
 */
export interface LineageChange {
  readonly stage: Stage;
  readonly bumps: number;
  /** memory-only came into force at some point of the change (PostgreSQL missed writes then). */
  readonly memoryOnlyRan: boolean;
  /** Set when completeness was decided: false by memory-only, true by a verified resync. */
  readonly postgresComplete?: boolean;
  /** Set when it changed: a side found unverified (the outbox lost writes toward it), or null once proven equal. */
  readonly unverified?: Unverified | null;
  readonly by: string;
}

const COLUMNS = `generation::text AS generation, stage, postgres_current_since::text AS postgres_current_since, postgres_complete,
  unverified_side, unverified_since::text AS unverified_since, unverified_reason, changed_at::text AS changed_at, changed_by`;

interface LineageRow {
  readonly generation: string;
  readonly stage: string;
  readonly postgres_current_since: string | null;
  readonly postgres_complete: boolean;
  readonly unverified_side: Side | null;
  readonly unverified_since: string | null;
  readonly unverified_reason: string | null;
  readonly changed_at: string;
  readonly changed_by: string;
}

/**
 * The lineage row (dualwrite_lineage) in PostgreSQL, shared by every process on the schema.
 * A first write decides PostgreSQL complete unless memory-only is in force, as a process
 * that starts mirroring at once has nothing PostgreSQL missed.
 */
export class LineageStore {
  constructor(private readonly db: SqlQueryable) {}

  async read(): Promise<LineageState | undefined> {
    try {
      const [row] = await this.db.query<LineageRow>(`SELECT ${COLUMNS} FROM dualwrite_lineage WHERE name = 'runtime'`);
      return row && stateOf(row);
    } catch (error) {
      if ((error as DatabaseErrorFields).code === UNDEFINED_TABLE) {
        throw new Error(
          'dualwrite: PostgreSQL has no dualwrite_lineage table on the search_path: apply the migrations first (dualwrite migrate)',
          { cause: error },
        );
      }
      throw error;
    }
  }

  async apply(change: LineageChange): Promise<LineageState> {
    const [row] = await this.db.query<LineageRow>(
      `INSERT INTO dualwrite_lineage AS l (name, generation, stage, postgres_current_since, postgres_complete, unverified_side, unverified_since, unverified_reason, changed_at, changed_by)
       VALUES ('runtime', $2::bigint, $1::text, CASE WHEN $1::text = 'memory-only' THEN NULL ELSE now() END, coalesce($4::boolean, $1::text <> 'memory-only'), $7::text, $8::timestamptz, $9::text, now(), $5::text)
       ON CONFLICT (name) DO UPDATE SET
         generation = l.generation + $2::bigint,
         stage = $1::text,
         postgres_current_since = CASE WHEN $1::text = 'memory-only' THEN NULL WHEN $3::boolean THEN now() ELSE coalesce(l.postgres_current_since, now()) END,
         postgres_complete = coalesce($4::boolean, l.postgres_complete),
         unverified_side = CASE WHEN $6::boolean THEN $7::text ELSE l.unverified_side END,
         unverified_since = CASE WHEN $6::boolean THEN $8::timestamptz ELSE l.unverified_since END,
         unverified_reason = CASE WHEN $6::boolean THEN $9::text ELSE l.unverified_reason END,
         changed_at = now(),
         changed_by = $5::text
       RETURNING ${COLUMNS}`,
      [
        change.stage,
        change.bumps,
        change.memoryOnlyRan,
        change.postgresComplete ?? null,
        change.by,
        change.unverified !== undefined,
        change.unverified?.side ?? null,
        change.unverified?.since ?? null,
        change.unverified?.reason ?? null,
      ],
    );
    return stateOf(row!);
  }
}

function stateOf(row: LineageRow): LineageState {
  if (!isStage(row.stage)) throw new Error(`dualwrite_lineage holds an unknown stage ${JSON.stringify(row.stage)}`);
  return {
    generation: Number(row.generation),
    stage: row.stage,
    ...(row.postgres_current_since ? { postgresCurrentSince: row.postgres_current_since } : {}),
    postgresComplete: row.postgres_complete,
    ...(row.unverified_side
      ? { unverified: { side: row.unverified_side, since: row.unverified_since!, reason: row.unverified_reason ?? '' } }
      : {}),
    changedAt: row.changed_at,
    changedBy: row.changed_by,
  };
}
