import { beforeEach, describe, expect, it } from 'vitest';
import { ValidationError } from '../../src/domain/errors.js';
import { writeContext, type WriteContext } from '../../src/domain/write-context.js';
import type { EntityCatalog } from '../../src/domain/records.js';
import { compareText, optionalText, requireText } from '../../src/domain/text.js';
import { canonicalTimestamp } from '../../src/domain/time.js';
import { METRIC } from '../../src/dualwrite/metrics.js';
import { MemoryRangeChecksums } from '../../src/memory/memory-range-checksums.js';
import { MemoryTables } from '../../src/memory/memory-tables.js';
import { mappedEntity } from '../../src/postgres/entity-sql.js';
import type { RowHashes } from '../../src/postgres/row-hash.js';
import type { SqlExecutor } from '../../src/postgres/sql-executor.js';
import { TableMapping } from '../../src/postgres/table-mapping.js';
import type { RangeChecksums } from '../../src/ports/range-checksums.js';
import type { RecordKey, RecordPort, ScanOptions } from '../../src/ports/record-port.js';
import { readAll } from '../../src/ports/record-scan.js';
import type { Stage } from '../../src/ports/stage.js';
import type { DualWriteRuntime, RuntimeStore } from '../../src/runtime/dual-write-runtime.js';
import { BUILT_IN_STORES } from '../../src/stores/built-in-stores.js';
import type { StoreDefinition, StoreOptions } from '../../src/stores/store-definition.js';
import { checkpointName, loadCheckpoints, PROGRESS_TABLE } from '../../verifier/backfill.js';
import { availableBackends, useBackend } from '../support/backends.js';
import { dumpSide, useTestRuntimes, type TestRuntime, type TestRuntimeOptions } from '../support/runtimes.js';

/**
 * A store the project knows nothing about, defined only here — its interface, records,
 * in-memory and PostgreSQL implementations, table and definition — runs through the same
 * runtime as the built-in stores: mirrored writes, the outbox, shadow reads, read routing,
 * the verifier and its repair, the backfill and a rollback. Nothing in src/ names it.
 */

// ---------------------------------------------------------------------------------------
// The store

interface Note {
  readonly id: string;
  readonly title: string;
  readonly body: string;
  readonly pinned: boolean;
  readonly updatedAt: string;
}

/** A note to write; what is left out is decided (id, time) or defaulted (body, pinned). */
interface NoteInput {
  readonly id?: string;
  readonly title: string;
  readonly body?: string;
  readonly pinned?: boolean;
  readonly updatedAt?: string;
}

interface NoteStore {
  /** Inserts or replaces a note. */
  putNote(input: NoteInput): Promise<Note>;
  getNote(id: string): Promise<Note | null>;
  /** Pinned notes first, then by id in code point order. */
  listNotes(): Promise<Note[]>;
}

interface NoteRecords {
  notes: Note;
}

const noteId = (id: unknown) => requireText('id', id, { maxLength: 64, nonBlank: true });

const NOTE_ENTITIES: EntityCatalog<NoteRecords> = {
  notes: {
    keyOf: (note) => [note.id],
    normalize: (raw) => {
      if (typeof raw !== 'object' || raw === null) throw new ValidationError('note', 'must be an object');
      const r = raw as Record<string, unknown>;
      if (typeof r.pinned !== 'boolean') throw new ValidationError('pinned', 'must be a boolean');
      return {
        id: noteId(r.id),
        title: requireText('title', r.title, { maxLength: 200 }),
        body: requireText('body', r.body),
        pinned: r.pinned,
        updatedAt: canonicalTimestamp('updatedAt', r.updatedAt),
      };
    },
  },
};

/** Decides the note a write stores, once, so both sides store the same one. */
function decideNote(input: NoteInput, context: WriteContext): Note {
  if (typeof input !== 'object' || input === null) throw new ValidationError('note', 'must be an object');
  if (input.pinned !== undefined && typeof input.pinned !== 'boolean')
    throw new ValidationError('pinned', 'must be a boolean');
  return {
    id: input.id === undefined ? context.ids.uuid() : noteId(input.id),
    title: requireText('title', input.title, { maxLength: 200 }),
    body: optionalText('body', input.body) ?? '',
    pinned: input.pinned ?? false,
    updatedAt: input.updatedAt === undefined ? context.clock.now() : canonicalTimestamp('updatedAt', input.updatedAt),
  };
}

const listOrder = (a: Note, b: Note) => (a.pinned === b.pinned ? compareText(a.id, b.id) : a.pinned ? -1 : 1);

class MemoryNoteStore implements NoteStore, RecordPort<NoteRecords> {
  readonly tables = new MemoryTables(NOTE_ENTITIES);
  private readonly context: WriteContext;

  constructor(options: StoreOptions = {}) {
    this.context = writeContext(options);
  }

  clear(): void {
    this.tables.clear();
  }

  async putNote(input: NoteInput): Promise<Note> {
    const note = decideNote(input, this.context);
    this.tables.put('notes', note);
    return note;
  }

  async getNote(id: string): Promise<Note | null> {
    return this.tables.get('notes', [noteId(id)]) ?? null;
  }

  async listNotes(): Promise<Note[]> {
    return [...this.tables.values('notes')].sort(listOrder);
  }

  keyOf<E extends keyof NoteRecords>(entity: E, record: NoteRecords[E]): RecordKey {
    return NOTE_ENTITIES[entity].keyOf(record);
  }

  async scanRecords<E extends keyof NoteRecords>(entity: E, options: ScanOptions): Promise<NoteRecords[E][]> {
    return this.tables.scan(entity, options);
  }

  async getRecord<E extends keyof NoteRecords>(entity: E, key: RecordKey): Promise<NoteRecords[E] | null> {
    return this.tables.get(entity, key) ?? null;
  }

  recordNow<E extends keyof NoteRecords>(entity: E, key: RecordKey): NoteRecords[E] | null {
    return this.tables.get(entity, key) ?? null;
  }

  rangeChecksums(rowHashes: RowHashes<NoteRecords>): RangeChecksums {
    return new MemoryRangeChecksums(this.tables, rowHashes);
  }

  async putRecord<E extends keyof NoteRecords>(entity: E, record: NoteRecords[E]): Promise<void> {
    this.tables.put(entity, NOTE_ENTITIES[entity].normalize(record));
  }

  async putRecords<E extends keyof NoteRecords>(entity: E, records: readonly NoteRecords[E][]): Promise<void> {
    for (const record of records) await this.putRecord(entity, record);
  }

  async deleteRecord<E extends keyof NoteRecords>(entity: E, key: RecordKey): Promise<boolean> {
    return this.tables.delete(entity, key);
  }
}

/** The test creates the table itself; key order is code point order, as in memory. */
const CREATE_NOTES = `CREATE TABLE IF NOT EXISTS notes (
  id TEXT COLLATE "C" PRIMARY KEY,
  title TEXT NOT NULL,
  body TEXT NOT NULL,
  pinned BOOLEAN NOT NULL,
  updated_at TIMESTAMPTZ NOT NULL)`;

const NOTES = new TableMapping<Note>(
  'notes',
  [
    { column: 'id', field: 'id', type: 'text' },
    { column: 'title', field: 'title', type: 'text' },
    { column: 'body', field: 'body', type: 'text' },
    { column: 'pinned', field: 'pinned', type: 'boolean' },
    { column: 'updated_at', field: 'updatedAt', type: 'timestamptz' },
  ],
  ['id'],
);

class PostgresNoteStore implements NoteStore, RecordPort<NoteRecords> {
  private readonly context: WriteContext;

  constructor(
    private readonly db: SqlExecutor,
    options: StoreOptions = {},
  ) {
    this.context = writeContext(options);
  }

  async putNote(input: NoteInput): Promise<Note> {
    const note = decideNote(input, this.context);
    await this.db.query(NOTES.insertSql('overwrite'), NOTES.insertParams(note));
    return note;
  }

  async getNote(id: string): Promise<Note | null> {
    return this.getRecord('notes', [noteId(id)]);
  }

  async listNotes(): Promise<Note[]> {
    const rows = await this.db.query(`SELECT ${NOTES.selectList} FROM notes ORDER BY pinned DESC, id`);
    return rows.map((row) => NOTES.toRecord(row));
  }

  keyOf<E extends keyof NoteRecords>(entity: E, record: NoteRecords[E]): RecordKey {
    return NOTE_ENTITIES[entity].keyOf(record);
  }

  async scanRecords<E extends keyof NoteRecords>(_entity: E, options: ScanOptions): Promise<NoteRecords[E][]> {
    const { after, until } = options;
    const rows = await this.db.query(NOTES.scanSql(after !== undefined, until !== undefined), [
      ...(after ? NOTES.keyValues(after) : []),
      ...(until ? NOTES.keyValues(until) : []),
      options.limit,
    ]);
    return rows.map((row) => NOTES.toRecord(row));
  }

  async getRecord<E extends keyof NoteRecords>(_entity: E, key: RecordKey): Promise<NoteRecords[E] | null> {
    const [row] = await this.db.query(NOTES.getSql(), NOTES.keyValues(key));
    return row ? NOTES.toRecord(row) : null;
  }

  async putRecord<E extends keyof NoteRecords>(entity: E, record: NoteRecords[E]): Promise<void> {
    await this.db.query(NOTES.insertSql('overwrite'), NOTES.insertParams(NOTE_ENTITIES[entity].normalize(record)));
  }

  async putRecords<E extends keyof NoteRecords>(entity: E, records: readonly NoteRecords[E][]): Promise<void> {
    const byKey = new Map(records.map((record) => [record.id, NOTE_ENTITIES[entity].normalize(record)]));
    if (byKey.size > 0)
      await this.db.query(NOTES.bulkInsertSql('overwrite'), NOTES.bulkInsertParams([...byKey.values()]));
  }

  async deleteRecord<E extends keyof NoteRecords>(_entity: E, key: RecordKey): Promise<boolean> {
    return (await this.db.query(NOTES.deleteSql(), NOTES.keyValues(key))).length > 0;
  }
}

/** The whole integration: one definition. */
const NOTE_STORE: StoreDefinition<NoteStore, NoteRecords> = {
  name: 'notes',
  methods: {
    putNote: {
      kind: 'write',
      key: (input) => `note:${input.id}`,
      decide: (context, input) => [decideNote(input, context)],
      affects: ([input]) => [{ entity: 'notes', key: [input.id!] }],
    },
    getNote: { kind: 'read', key: (id) => `note:${id}` },
    listNotes: { kind: 'read' },
  },
  catalog: NOTE_ENTITIES,
  postgres: { notes: mappedEntity(NOTES) },
  createMemory: (options) => new MemoryNoteStore(options),
  createPostgres: (db, options) => new PostgresNoteStore(db, options),
};

// ---------------------------------------------------------------------------------------

const at = (minute: number) => new Date(Date.UTC(2026, 0, 1, 0, minute)).toISOString();

for (const factory of availableBackends(['pglite', 'postgres'])) {
  describe(`a store defined only in a test, through the runtime on ${factory.name}`, () => {
    const backend = useBackend(factory);
    const runtimes = useTestRuntimes();
    let db: SqlExecutor;
    beforeEach(async () => {
      db = backend.current.db!;
      await db.query(CREATE_NOTES);
      await db.query('TRUNCATE notes');
      await db.query(`DELETE FROM ${PROGRESS_TABLE}`);
      await db.query('TRUNCATE dualwrite_repairs');
    });

    const open = async (
      options: Partial<TestRuntimeOptions> = {},
    ): Promise<TestRuntime & { notes: RuntimeStore<NoteStore, NoteRecords> }> => {
      const { clock, ids } = backend.current;
      const opened = await runtimes.open({
        db,
        context: { clock, ids },
        stores: [NOTE_STORE],
        mirror: { mode: 'sync' },
        ...options,
      });
      return { ...opened, notes: opened.rt.store(NOTE_STORE) };
    };
    const flip = async (rt: DualWriteRuntime, source: TestRuntime['source'], stage: Stage, readPercent = 0) => {
      source.set({ stage, readPercent });
      return rt.stage.settled();
    };
    const both = async (notes: RuntimeStore<NoteStore, NoteRecords>) => ({
      memory: await readAll<NoteRecords, 'notes'>(notes.memory, 'notes'),
      postgres: await readAll<NoteRecords, 'notes'>(notes.postgres, 'notes'),
    });

    it('is the only store of the runtime: the built-in ones are absent and say so', async () => {
      const { rt, notes } = await open();
      expect(Object.keys(rt.stores)).toEqual(['notes']);
      expect(rt.stores.notes!.dual).toBe(notes.dual);
      expect(() => rt.graph).toThrow(/runtime.graph: this runtime was opened without the built-in graph store/);
      expect(() => rt.memory.tasks).toThrow(
        /runtime.memory.tasks: this runtime was opened without the built-in tasks store/,
      );
      expect(() => rt.store({ ...NOTE_STORE })).toThrow(TypeError);
    });

    it('mirrors its writes to PostgreSQL in dual-write, the decided record on both sides', async () => {
      const { notes } = await open();
      const first = await notes.dual.putNote({ title: 'First' });
      const pinned = await notes.dual.putNote({ id: 'b-pinned', title: 'Pinned', body: 'read me', pinned: true });
      const replaced = await notes.dual.putNote({ ...first, title: 'First, edited', updatedAt: at(5) });

      expect(first.id).toMatch(/^[0-9a-f-]{36}$/);
      // Decided once, by the runtime's context (the test's clock), before either side ran.
      expect(first.updatedAt).toBe('2026-01-01T00:00:00.000Z');
      expect(await notes.postgres.getNote(first.id)).toEqual(replaced);
      expect(await notes.memory.getNote(first.id)).toEqual(replaced);
      expect(await notes.postgres.listNotes()).toEqual([pinned, replaced]);
      expect(await notes.dual.listNotes()).toEqual([pinned, replaced]);
      const { memory, postgres } = await both(notes);
      expect(postgres).toEqual(memory);
      // The decided ids come from the test's sequence ("00000000-…"), so they sort first.
      expect(await db.query('SELECT id, pinned FROM notes ORDER BY id')).toEqual([
        { id: first.id, pinned: false },
        { id: 'b-pinned', pinned: true },
      ]);
      // Bad input fails before either side is written.
      await expect(notes.dual.putNote({ title: '', pinned: 'yes' as unknown as boolean })).rejects.toThrow(
        ValidationError,
      );
      expect((await both(notes)).postgres).toHaveLength(2);
    });

    it('journals a mirror write PostgreSQL refuses and replays it once PostgreSQL takes it again', async () => {
      const { rt, notes } = await open();
      await rt.replayer.stop();
      await db.query('ALTER TABLE notes RENAME TO notes_away');
      let note: Note;
      try {
        note = await notes.dual.putNote({ id: 'n1', title: 'Written while PostgreSQL refused' });
        expect(await notes.memory.getNote('n1')).toEqual(note);
        expect(rt.outbox.stats().depth).toBe(1);
        expect(rt.mirror.isPending('note:n1')).toBe(true);
      } finally {
        await db.query('ALTER TABLE notes_away RENAME TO notes');
      }
      expect(await notes.postgres.getNote('n1')).toBeNull();
      expect(await rt.replayer.replayOnce()).toEqual({ replayed: 1, deadLettered: 0 });
      expect(await notes.postgres.getNote('n1')).toEqual(note);
      expect(rt.outbox.stats().depth).toBe(0);
    });

    it('compares sampled reads with the other side (shadow reads) and still answers from memory', async () => {
      const { rt, notes } = await open({ shadow: { sampleRate: 1 } });
      const note = await notes.dual.putNote({ id: 'n1', title: 'Same on both sides' });
      expect(await notes.dual.getNote('n1')).toEqual(note);
      await db.query(`UPDATE notes SET title = 'Only in PostgreSQL' WHERE id = 'n1'`);
      expect(await notes.dual.getNote('n1')).toEqual(note);
      await rt.shadow.settle();
      const { values } = await rt.metrics.registry.getSingleMetric(METRIC.shadowCompares)!.get();
      const counted = Object.fromEntries(
        values
          .filter((v) => v.labels.store === 'notes' && v.value > 0)
          .map((v) => [`${v.labels.operation}:${v.labels.outcome}`, v.value]),
      );
      expect(counted).toEqual({ 'getNote:match': 1, 'getNote:mismatch': 1 });
      expect(rt.shadow.mismatches).toEqual([
        expect.objectContaining({ store: 'notes', operation: 'getNote', key: 'note:n1', served: 'memory' }),
      ]);
    });

    it('routes reads by the stage: read-shift at 100% reads PostgreSQL, dual-write reads memory', async () => {
      const { rt, source, notes } = await open();
      const note = await notes.dual.putNote({ id: 'n1', title: 'In memory' });
      await db.query(`UPDATE notes SET title = 'In PostgreSQL' WHERE id = 'n1'`);

      expect((await flip(rt, source, 'read-shift', 100)).flags).toMatchObject({
        stage: 'read-shift',
        readPercent: 100,
      });
      expect((await notes.dual.getNote('n1'))!.title).toBe('In PostgreSQL');
      expect((await notes.dual.listNotes()).map((n) => n.title)).toEqual(['In PostgreSQL']);

      await flip(rt, source, 'dual-write');
      expect(await notes.dual.getNote('n1')).toEqual(note);
      expect(await notes.dual.listNotes()).toEqual([note]);
    });

    it('finds differences planted in PostgreSQL with the verifier and repairs them, fenced and recorded', async () => {
      const { rt, notes } = await open({ verifier: { repair: true, graceMs: 0 } });
      for (let i = 0; i < 30; i++)
        await notes.dual.putNote({ id: `n${String(i).padStart(2, '0')}`, title: `Note ${i}`, updatedAt: at(i) });
      expect((await rt.verifier.runOnce())!.consistent).toBe(true);

      await db.query(`UPDATE notes SET title = 'drifted' WHERE id = 'n03'`);
      await db.query(`DELETE FROM notes WHERE id = 'n17'`);
      await db.query(
        `INSERT INTO notes (id, title, body, pinned, updated_at) VALUES ('zz-stray', 'only in PostgreSQL', '', true, now())`,
      );

      const found = (await rt.verifier.runOnce())!;
      expect(found.consistent).toBe(false);
      expect(found.entities).toEqual([
        expect.objectContaining({
          store: 'notes',
          entity: 'notes',
          rowsMemory: 30,
          rowsPostgres: 30,
          differences: { missing_in_postgres: 1, missing_in_memory: 1, fields_differ: 1 },
        }),
      ]);
      expect(found.differences.map((d) => [d.store, d.entity, d.key, d.kind])).toEqual([
        ['notes', 'notes', ['n03'], 'fields_differ'],
        ['notes', 'notes', ['n17'], 'missing_in_postgres'],
        ['notes', 'notes', ['zz-stray'], 'missing_in_memory'],
      ]);
      // The loop repaired what it found (memory is authoritative in dual-write), but deletes nothing by itself:
      // the stray row waits for an operator's confirmation.
      const repairs = async () =>
        (
          await db.query<{ difference: string; outcome: string }>(
            `SELECT difference, outcome FROM dualwrite_repairs WHERE store = 'notes' ORDER BY id`,
          )
        ).map((r) => [r.difference, r.outcome]);
      expect(await repairs()).toEqual([
        ['fields_differ', 'repaired'],
        ['missing_in_postgres', 'repaired'],
      ]);
      expect(rt.verifier.lastRepairs.map((r) => r.outcome)).toEqual(['repaired', 'repaired', 'withheld_delete']);
      await rt.verifyNow({ repair: true, allowDeletes: 1, reason: 'the stray row is not ours', principal: 'test' });
      expect((await repairs()).at(-1)).toEqual(['missing_in_memory', 'repaired']);
      const { memory, postgres } = await both(notes);
      expect(postgres).toEqual(memory);
      expect((await rt.verifier.runOnce())!.consistent).toBe(true);
    });

    it('backfills notes memory held before PostgreSQL, leaving the ones already mirrored as they are', async () => {
      const existing = NOTE_STORE.createMemory();
      for (let i = 0; i < 25; i++)
        await existing.putNote({
          id: `n${String(i).padStart(2, '0')}`,
          title: `Before dual-write ${i}`,
          pinned: i % 5 === 0,
          updatedAt: at(i),
        });
      const { rt, notes } = await open({ memory: { notes: existing } });
      expect(notes.memory).toBe(existing);
      const mirrored = await notes.dual.putNote({ id: 'n99', title: 'Written in dual-write', updatedAt: at(99) });
      expect(await notes.postgres.listNotes()).toEqual([mirrored]);

      const { backfill, verify } = await rt.resyncPostgres({ batchSize: 10 });

      expect(backfill.entities).toEqual([
        expect.objectContaining({
          store: 'notes',
          entity: 'notes',
          status: 'completed',
          scanned: 26,
          copied: 25,
          skippedExisting: 1,
          memoryCount: 26,
          postgresCount: 26,
          countsMatch: true,
        }),
      ]);
      expect(verify.consistent).toBe(true);
      expect((await loadCheckpoints(db)).get(checkpointName('notes', 'notes'))).toMatchObject({
        completed: true,
        copied: 25,
      });
      const { memory, postgres } = await both(notes);
      expect(postgres).toEqual(memory);
      expect(await notes.postgres.listNotes()).toEqual(await existing.listNotes());
    });

    it('runs beside the built-in stores in one runtime, their mirror writes batched in shared transactions', async () => {
      const { rt, notes } = await open({ stores: [...BUILT_IN_STORES, NOTE_STORE], mirror: { mode: 'async' } });
      expect(Object.keys(rt.stores)).toEqual(['graph', 'tasks', 'notes']);
      await Promise.all(
        Array.from({ length: 40 }, (_, i) =>
          i % 2 === 0
            ? notes.dual.putNote({ id: `n${String(i).padStart(2, '0')}`, title: `Note ${i}` })
            : rt.graph.createContributor({ name: `Contributor ${i}` }),
        ),
      );
      await rt.mirror.drain();
      expect(await dumpSide(rt, 'postgres')).toEqual(await dumpSide(rt, 'memory'));
      const { memory, postgres } = await both(notes);
      expect(postgres).toHaveLength(20);
      expect(postgres).toEqual(memory);
      const report = (await rt.verifier.runOnce())!;
      expect(report.consistent).toBe(true);
      expect(report.entities.map((e) => `${e.store}.${e.entity}`)).toEqual([
        'graph.projects',
        'graph.dependencies',
        'graph.contributors',
        'graph.assets',
        'graph.contributions',
        'tasks.agent_tasks',
        'notes.notes',
      ]);
    });

    it('rolls back from postgres-only to dual-write after resyncMemory, losing no write', async () => {
      const { rt, source, notes } = await open();
      const before = await notes.dual.putNote({ id: 'n1', title: 'dual-write' });

      expect((await flip(rt, source, 'postgres-primary')).flags.stage).toBe('postgres-primary');
      const primary = await notes.dual.putNote({ id: 'n2', title: 'postgres-primary' });
      expect(await notes.memory.getNote('n2')).toEqual(primary);

      expect((await flip(rt, source, 'postgres-only')).flags.stage).toBe('postgres-only');
      const only = await notes.dual.putNote({ id: 'n3', title: 'postgres-only' });
      expect(await notes.memory.getNote('n3')).toBeNull();
      expect(await notes.dual.getNote('n3')).toEqual(only);

      // Memory missed n3: the rollback runs as postgres-primary until memory is resynced.
      expect((await flip(rt, source, 'dual-write')).flags).toMatchObject({
        stage: 'postgres-primary',
        refused: 'memory-stale-after-postgres-only',
      });
      await rt.resyncMemory();
      expect((await rt.stage.settled()).flags.stage).toBe('dual-write');

      const after = await notes.dual.putNote({ id: 'n4', title: 'after the rollback' });
      const { memory, postgres } = await both(notes);
      expect(memory).toEqual([before, primary, only, after]);
      expect(postgres).toEqual(memory);
    });
  });
}
