import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { buildApi } from '../../src/api/app.js';
import { AdminClient } from '../../src/cli/admin-client.js';
import { ValidationError } from '../../src/domain/errors.js';
import type { EntityCatalog } from '../../src/domain/records.js';
import { requireText } from '../../src/domain/text.js';
import { FileOutbox } from '../../src/dualwrite/file-outbox.js';
import { METRIC } from '../../src/dualwrite/metrics.js';
import { Mirror } from '../../src/dualwrite/mirror.js';
import type { MirrorOp } from '../../src/dualwrite/outbox.js';
import { MemoryRangeChecksums } from '../../src/memory/memory-range-checksums.js';
import { MemoryTables } from '../../src/memory/memory-tables.js';
import { mappedEntity } from '../../src/postgres/entity-sql.js';
import type { RowHashes } from '../../src/postgres/row-hash.js';
import type { SqlExecutor } from '../../src/postgres/sql-executor.js';
import { TableMapping } from '../../src/postgres/table-mapping.js';
import type { RangeChecksums } from '../../src/ports/range-checksums.js';
import type { RecordKey, RecordPort, ScanOptions } from '../../src/ports/record-port.js';
import type { DualWriteRuntime } from '../../src/runtime/dual-write-runtime.js';
import { BUILT_IN_STORES } from '../../src/stores/built-in-stores.js';
import type { StoreDefinition } from '../../src/stores/store-definition.js';
import { PROGRESS_TABLE } from '../../verifier/backfill.js';
import { request } from '../api/api-harness.js';
import { runCli } from '../cli/cli-harness.js';
import { availableBackends, useBackend } from '../support/backends.js';
import { FaultySql } from '../support/faulty-sql.js';
import { useTestRuntimes, type TestRuntimeOptions } from '../support/runtimes.js';

/**
 * A mirror write PostgreSQL refuses for its data (an order whose user existed in memory
 * before dual-write began, so PostgreSQL does not have it yet) is not an outage: the circuit
 * stays closed, only the keys it concerns wait, the outbox entry keeps what PostgreSQL said,
 * and the CLI and admin API say it and what clears it.
 */

// ---------------------------------------------------------------------------------------
// An application's own store: users, and orders referencing a user by foreign key.

interface User {
  readonly id: string;
  readonly name: string;
}

interface Order {
  readonly id: string;
  readonly userId: string;
  readonly quantity: number;
}

interface ShopStore {
  putUser(user: User): Promise<User>;
  placeOrder(order: Order): Promise<Order>;
  getOrder(id: string): Promise<Order | null>;
}

interface ShopRecords {
  users: User;
  orders: Order;
}

const SHOP_ENTITIES: EntityCatalog<ShopRecords> = {
  users: {
    keyOf: (user) => [user.id],
    normalize: (raw) => {
      const r = raw as unknown as Record<string, unknown>;
      return { id: requireText('id', r.id, { nonBlank: true }), name: requireText('name', r.name) };
    },
  },
  orders: {
    keyOf: (order) => [order.id],
    normalize: (raw) => {
      const r = raw as unknown as Record<string, unknown>;
      if (!Number.isInteger(r.quantity)) throw new ValidationError('quantity', 'must be an integer');
      return {
        id: requireText('id', r.id, { nonBlank: true }),
        userId: requireText('userId', r.userId, { nonBlank: true }),
        quantity: r.quantity as number,
      };
    },
  },
};

/** Memory holds whatever it is given: the users it held before dual-write are what PostgreSQL lacks. */
class MemoryShopStore implements ShopStore, RecordPort<ShopRecords> {
  readonly tables = new MemoryTables(SHOP_ENTITIES);

  clear(): void {
    this.tables.clear();
  }

  async putUser(user: User): Promise<User> {
    await this.putRecord('users', user);
    return user;
  }

  async placeOrder(order: Order): Promise<Order> {
    await this.putRecord('orders', order);
    return order;
  }

  async getOrder(id: string): Promise<Order | null> {
    return this.tables.get('orders', [id]) ?? null;
  }

  keyOf<E extends keyof ShopRecords>(entity: E, record: ShopRecords[E]): RecordKey {
    return SHOP_ENTITIES[entity].keyOf(record);
  }

  async scanRecords<E extends keyof ShopRecords>(entity: E, options: ScanOptions): Promise<ShopRecords[E][]> {
    return this.tables.scan(entity, options);
  }

  async getRecord<E extends keyof ShopRecords>(entity: E, key: RecordKey): Promise<ShopRecords[E] | null> {
    return this.tables.get(entity, key) ?? null;
  }

  recordNow<E extends keyof ShopRecords>(entity: E, key: RecordKey): ShopRecords[E] | null {
    return this.tables.get(entity, key) ?? null;
  }

  rangeChecksums(rowHashes: RowHashes<ShopRecords>): RangeChecksums {
    return new MemoryRangeChecksums(this.tables, rowHashes);
  }

  async putRecord<E extends keyof ShopRecords>(entity: E, record: ShopRecords[E]): Promise<void> {
    this.tables.put(entity, SHOP_ENTITIES[entity].normalize(record));
  }

  async putRecords<E extends keyof ShopRecords>(entity: E, records: readonly ShopRecords[E][]): Promise<void> {
    for (const record of records) await this.putRecord(entity, record);
  }

  async deleteRecord<E extends keyof ShopRecords>(entity: E, key: RecordKey): Promise<boolean> {
    return this.tables.delete(entity, key);
  }
}

const CREATE_SHOP = [
  `CREATE TABLE IF NOT EXISTS shop_users (id TEXT COLLATE "C" PRIMARY KEY, name TEXT NOT NULL)`,
  `CREATE TABLE IF NOT EXISTS shop_orders (
     id TEXT COLLATE "C" PRIMARY KEY,
     user_id TEXT COLLATE "C" NOT NULL CONSTRAINT shop_orders_user_fk REFERENCES shop_users (id),
     quantity INTEGER NOT NULL)`,
];

const USERS = new TableMapping<User>(
  'shop_users',
  [
    { column: 'id', field: 'id', type: 'text' },
    { column: 'name', field: 'name', type: 'text' },
  ],
  ['id'],
);

const ORDERS = new TableMapping<Order>(
  'shop_orders',
  [
    { column: 'id', field: 'id', type: 'text' },
    { column: 'user_id', field: 'userId', type: 'text' },
    { column: 'quantity', field: 'quantity', type: 'integer' },
  ],
  ['id'],
);

const MAPPINGS = { users: USERS, orders: ORDERS } as unknown as {
  [E in keyof ShopRecords]: TableMapping<ShopRecords[E]>;
};

/** PostgreSQL's errors pass through untranslated, as an application's own store's would. */
class PostgresShopStore implements ShopStore, RecordPort<ShopRecords> {
  constructor(private readonly db: SqlExecutor) {}

  async putUser(user: User): Promise<User> {
    await this.putRecord('users', user);
    return user;
  }

  async placeOrder(order: Order): Promise<Order> {
    await this.putRecord('orders', order);
    return order;
  }

  async getOrder(id: string): Promise<Order | null> {
    return this.getRecord('orders', [id]);
  }

  keyOf<E extends keyof ShopRecords>(entity: E, record: ShopRecords[E]): RecordKey {
    return SHOP_ENTITIES[entity].keyOf(record);
  }

  async scanRecords<E extends keyof ShopRecords>(entity: E, options: ScanOptions): Promise<ShopRecords[E][]> {
    const mapping = MAPPINGS[entity];
    const { after, until } = options;
    const rows = await this.db.query(mapping.scanSql(after !== undefined, until !== undefined), [
      ...(after ? mapping.keyValues(after) : []),
      ...(until ? mapping.keyValues(until) : []),
      options.limit,
    ]);
    return rows.map((row) => mapping.toRecord(row));
  }

  async getRecord<E extends keyof ShopRecords>(entity: E, key: RecordKey): Promise<ShopRecords[E] | null> {
    const mapping = MAPPINGS[entity];
    const [row] = await this.db.query(mapping.getSql(), mapping.keyValues(key));
    return row ? mapping.toRecord(row) : null;
  }

  async putRecord<E extends keyof ShopRecords>(entity: E, record: ShopRecords[E]): Promise<void> {
    const mapping = MAPPINGS[entity];
    await this.db.query(mapping.insertSql('overwrite'), mapping.insertParams(SHOP_ENTITIES[entity].normalize(record)));
  }

  async putRecords<E extends keyof ShopRecords>(entity: E, records: readonly ShopRecords[E][]): Promise<void> {
    const mapping = MAPPINGS[entity];
    if (records.length > 0)
      await this.db.query(
        mapping.bulkInsertSql('overwrite'),
        mapping.bulkInsertParams(records.map((record) => SHOP_ENTITIES[entity].normalize(record))),
      );
  }

  async deleteRecord<E extends keyof ShopRecords>(entity: E, key: RecordKey): Promise<boolean> {
    const mapping = MAPPINGS[entity];
    return (await this.db.query(mapping.deleteSql(), mapping.keyValues(key))).length > 0;
  }
}

const SHOP_STORE: StoreDefinition<ShopStore, ShopRecords> = {
  name: 'shop',
  methods: {
    putUser: {
      kind: 'write',
      key: (user) => `user:${user.id}`,
      affects: ([user]) => [{ entity: 'users', key: [user.id] }],
    },
    placeOrder: {
      kind: 'write',
      key: (order) => `order:${order.id}`,
      requires: (order) => [`user:${order.userId}`],
      affects: ([order]) => [{ entity: 'orders', key: [order.id] }],
    },
    getOrder: { kind: 'read', key: (id) => `order:${id}` },
  },
  catalog: SHOP_ENTITIES,
  postgres: { users: mappedEntity(USERS), orders: mappedEntity(ORDERS) },
  createMemory: () => new MemoryShopStore(),
  createPostgres: (db) => new PostgresShopStore(db),
};

// ---------------------------------------------------------------------------------------

const TOKEN = 'data-errors-admin-token-3c9d';
const ADA: User = { id: 'u1', name: 'Ada, a customer since before dual-write' };

/** Memory as the application held it before dual-write began: Ada is there, PostgreSQL has never seen her. */
function memoryBeforeDualWrite(): MemoryShopStore {
  const memory = new MemoryShopStore();
  memory.tables.put('users', ADA);
  return memory;
}

/** How many mirror writes of the shop store to PostgreSQL had each outcome. */
async function mirrorOutcomes(rt: DualWriteRuntime): Promise<Record<string, number>> {
  const { values } = await rt.metrics.registry.getSingleMetric(METRIC.mirrorWrites)!.get();
  const shop = values.filter(
    (sample) => sample.labels.store === 'shop' && sample.labels.target === 'postgres' && sample.value > 0,
  );
  return Object.fromEntries(shop.map((sample) => [sample.labels.outcome, sample.value]));
}

for (const factory of availableBackends(['pglite', 'postgres'])) {
  describe(`mirror writes PostgreSQL refuses for their data, on ${factory.name}`, () => {
    const backend = useBackend(factory);
    const runtimes = useTestRuntimes();
    let db: SqlExecutor;
    beforeEach(async () => {
      db = backend.current.db!;
      for (const statement of CREATE_SHOP) await db.query(statement);
      await db.query('TRUNCATE shop_orders, shop_users');
      await db.query(`DELETE FROM ${PROGRESS_TABLE}`);
    });

    const open = async (options: Partial<TestRuntimeOptions> = {}) => {
      const opened = await runtimes.open({
        db,
        stores: [SHOP_STORE],
        memory: { shop: memoryBeforeDualWrite() },
        mirror: { mode: 'sync' },
        ...options,
      });
      return { ...opened, shop: opened.rt.store(SHOP_STORE) };
    };

    /** An API over the runtime (with the built-in stores it serves), listening on 127.0.0.1. */
    const serveApi = async (rt: DualWriteRuntime) => {
      const app = buildApi({ graph: rt.graph, tasks: rt.tasks, runtime: rt, adminToken: TOKEN });
      const url = await app.listen({ port: 0, host: '127.0.0.1' });
      runtimes.defer(() => app.close());
      return url;
    };

    it("a restart in dual-write brings an application's own store back from PostgreSQL, orders after the users they reference, and a repair then deletes nothing", async () => {
      const first = await open();
      await first.rt.resyncPostgres();
      await first.shop.dual.putUser({ id: 'u2', name: 'Grace' });
      for (let n = 1; n <= 5; n++)
        await first.shop.dual.placeOrder({ id: `o${n}`, userId: n % 2 ? ADA.id : 'u2', quantity: n });
      await first.rt.close();

      // The process comes back with an empty store, as a deploy leaves it.
      const second = await open({ memory: { shop: new MemoryShopStore() } });
      expect(second.rt.lineage.atStart.rebuilt?.entities).toEqual({ 'shop.users': 2, 'shop.orders': 5 });
      expect(await second.shop.dual.getOrder('o4')).toEqual({ id: 'o4', userId: 'u2', quantity: 4 });
      const report = await second.rt.verifyNow({ repair: true, reason: 'after the deploy', principal: 'test' });
      expect(report?.consistent).toBe(true);
      const [counts] = await db.query<{ users: number; orders: number }>(
        'SELECT (SELECT count(*)::int FROM shop_users) AS users, (SELECT count(*)::int FROM shop_orders) AS orders',
      );
      expect(counts).toEqual({ users: 2, orders: 5 });
    });

    it('a foreign-key failure does not open the circuit and holds only its keys', async () => {
      const faulty = new FaultySql(db);
      const { rt, shop, logs } = await open({ db: faulty });
      await rt.replayer.stop();

      // Ada's order: PostgreSQL refuses it (she is not there yet), memory took it.
      const first = await shop.dual.placeOrder({ id: 'o1', userId: ADA.id, quantity: 1 });
      expect(await shop.memory.getOrder('o1')).toEqual(first);
      expect(rt.mirror.breakerFor('postgres').state).toBe('closed');
      expect(logs.filter((line) => line.includes('stopped answering'))).toEqual([]);
      const refusal = logs.find((line) => line.includes('rejected mirror write shop.placeOrder key order:o1'));
      expect(refusal).toBeDefined();
      expect(refusal).toContain('orders ["o1"]');
      expect(refusal).toContain('SQLSTATE 23503');
      expect(refusal).toContain('constraint shop_orders_user_fk');

      // Other keys keep being mirrored at once, orders of other users included.
      const grace = await shop.dual.putUser({ id: 'u2', name: 'Grace' });
      const graces = await shop.dual.placeOrder({ id: 'o2', userId: 'u2', quantity: 5 });
      expect(await shop.postgres.getOrder('o2')).toEqual(graces);
      expect(await shop.postgres.getRecord('users', ['u2'])).toEqual(grace);
      expect(rt.mirror.isPending('order:o2')).toBe(false);

      // A later write of the held key waits behind it, in order.
      const second = await shop.dual.placeOrder({ id: 'o1', userId: ADA.id, quantity: 2 });
      const journaled = await rt.outbox.peek(10);
      expect(journaled.map((entry) => entry.key)).toEqual(['order:o1', 'order:o1']);
      expect(journaled[0]!.lastError).toMatchObject({
        code: '23503',
        constraint: 'shop_orders_user_fk',
        message: expect.stringContaining('violates foreign key constraint'),
      });
      expect(journaled[1]!.reason).toMatch(/waiting in the outbox/);
      expect(await mirrorOutcomes(rt)).toEqual({ applied: 2, rejected: 1, behind_journal: 1 });

      // An outage is still an outage: it opens the circuit and journals the write.
      faulty.down = true;
      await shop.dual.putUser({ id: 'u3', name: 'Edsger' });
      faulty.down = false;
      expect(rt.mirror.breakerFor('postgres').state).toBe('open');

      // Replay goes on past the held entry: the other key is replayed, Ada's order waits with its follower.
      const round = await rt.replayer.replayOnce();
      expect(round).toMatchObject({
        replayed: 1,
        deadLettered: 0,
        held: [
          {
            id: journaled[0]!.id,
            key: 'order:o1',
            refusals: 2,
            error: { code: '23503' },
            fix: expect.stringContaining('dualwrite resync'),
          },
        ],
      });
      expect(round.failure).toBeUndefined();
      expect(rt.mirror.breakerFor('postgres').state).toBe('closed');
      expect(await shop.postgres.getRecord('users', ['u3'])).not.toBeNull();
      expect((await rt.outbox.peek(10)).map((entry) => entry.id)).toEqual(journaled.map((entry) => entry.id));
      expect(await shop.postgres.getOrder('o1')).toBeNull();

      // Once Ada is in PostgreSQL, both of her order's writes land, in order.
      await shop.postgres.putUser(ADA);
      expect(await rt.replayer.replayOnce()).toEqual({ replayed: 2, deadLettered: 0 });
      expect(await shop.postgres.getOrder('o1')).toEqual(second);
      expect(rt.outbox.stats().depth).toBe(0);
    });

    it('the outbox entry keeps the SQL error and outbox replay prints it', async () => {
      const dir = await mkdtemp(join(tmpdir(), 'dw-data-errors-'));
      runtimes.defer(() => rm(dir, { recursive: true, force: true }));
      const path = join(dir, 'outbox.jsonl');
      const outbox = await FileOutbox.open({ path });
      runtimes.defer(() => outbox.close());
      const { rt, shop } = await open({ stores: [...BUILT_IN_STORES, SHOP_STORE], outbox });
      await rt.replayer.stop();

      await shop.dual.placeOrder({ id: 'o1', userId: ADA.id, quantity: 1 });

      // The journal itself carries the reason, text and SQLSTATE, for whoever reads it after a restart.
      const lines = (await readFile(path, 'utf8'))
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line) as { append?: { key: string; lastError?: unknown } });
      expect(lines).toEqual([
        {
          append: expect.objectContaining({
            key: 'order:o1',
            lastError: {
              message: expect.stringContaining('violates foreign key constraint'),
              code: '23503',
              constraint: 'shop_orders_user_fk',
              detail: expect.stringContaining('(u1)'),
            },
          }),
        },
      ]);
      const reopened = await FileOutbox.open({ path: join(dir, 'outbox.jsonl') });
      runtimes.defer(() => reopened.close());
      expect((await reopened.list())[0]!.lastError).toMatchObject({ code: '23503' });

      const url = await serveApi(rt);
      const status = await request(url, 'GET', '/admin/status', { token: TOKEN });
      expect(status.body.outbox).toMatchObject({
        depth: 1,
        heldCount: 1,
        held: [
          {
            key: 'order:o1',
            error: { code: '23503', constraint: 'shop_orders_user_fk' },
            fix: expect.stringContaining('dualwrite outbox replay'),
          },
        ],
      });

      const env = { DUALWRITE_URL: url, DUALWRITE_ADMIN_TOKEN: TOKEN };
      const [id] = (await rt.outbox.peek(1)).map((entry) => entry.id);
      const stopped = `STOPPED: entry ${id} (shop.placeOrder order:o1): `;
      const fix =
        'fix the data (e.g. run `dualwrite resync --reason ...` so the referenced rows are copied) and run `dualwrite outbox replay`';
      const replayed = await runCli(['outbox', 'replay'], env);
      expect(replayed.code, replayed.stderr).toBe(1);
      const line = replayed.stdout.split('\n').find((candidate) => candidate.startsWith(stopped));
      expect(line, replayed.stdout).toBeDefined();
      expect(line).toContain('violates foreign key constraint "shop_orders_user_fk"');
      expect(line).toContain('SQLSTATE 23503');
      expect(line).toContain(fix);

      const shown = await runCli(['outbox', 'show'], env);
      expect(shown.code, shown.stderr).toBe(0);
      expect(shown.stdout).toContain(stopped);
      expect(shown.stdout).toContain(fix);
      expect(`${replayed.stdout}${replayed.stderr}${shown.stdout}${shown.stderr}`).not.toContain(TOKEN);
    });

    it('the evidence gate counts a refused write as rejected data, not as an error of PostgreSQL', async () => {
      const { rt, shop } = await open();
      await shop.dual.placeOrder({ id: 'o1', userId: ADA.id, quantity: 1 });
      expect(await mirrorOutcomes(rt)).toEqual({ rejected: 1 });

      const verdict = await rt.judge({ stage: 'read-shift', readPercent: 10 });
      const errors = verdict.checks.find((check) => check.name === 'postgres-errors')!;
      expect(errors.detail).toContain(
        '1 mirror writes rejected by PostgreSQL (data) and 0 failed, of 1 PostgreSQL calls',
      );
      expect(errors.detail).toContain('`dualwrite outbox show` says what PostgreSQL refused');
      expect(errors.detail).not.toContain('1 of 1 PostgreSQL calls failed');
      expect(verdict.refusal).toContain('mirror writes rejected by PostgreSQL (data)');
    });

    it("the admin API's 500 names the cause", async () => {
      // Memory took an order of a user it never had: nothing can copy that user into PostgreSQL.
      const memory = memoryBeforeDualWrite();
      const { rt, shop } = await open({ stores: [...BUILT_IN_STORES, SHOP_STORE], memory: { shop: memory } });
      await rt.replayer.stop();
      await shop.dual.placeOrder({ id: 'o9', userId: 'nobody', quantity: 1 });
      const url = await serveApi(rt);

      const answer = await request(url, 'POST', '/admin/resync', {
        token: TOKEN,
        body: { reason: 'copy what memory held before' },
      });
      expect(answer.status, answer.text).toBe(500);
      expect(answer.body.error).not.toBe('internal error');
      expect(answer.body.error).toContain('violates foreign key constraint "shop_orders_user_fk"');
      expect(answer.text).toContain('23503');
      expect(answer.text).not.toContain(TOKEN);

      // The CLI's client says which call failed on which process, and the cause.
      const cli = new AdminClient(url, TOKEN).post('/admin/resync', { reason: 'again' });
      await expect(cli).rejects.toThrow(`POST /admin/resync failed on the process at ${url} (500): `);
      await expect(new AdminClient(url, TOKEN).post('/admin/resync', { reason: 'again' })).rejects.toThrow(
        /violates foreign key constraint "shop_orders_user_fk"/,
      );
    });
  });
}

describe('a failure reading the record to copy', () => {
  it('names the side that stopped answering, not the target of the copy', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'dw-source-'));
    const outbox = await FileOutbox.open({ path: join(dir, 'outbox.jsonl') });
    const logs: string[] = [];
    const logger = { warn: (line: string) => void logs.push(line), error: (line: string) => void logs.push(line) };
    try {
      // postgres-primary: a mirror write to memory copies the record as PostgreSQL holds it, and PostgreSQL is down.
      const memory = new MemoryShopStore();
      const postgres = {
        getRecord: () =>
          Promise.reject(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' })),
      };
      const mirror = new Mirror((_store, side) => (side === 'memory' ? memory : postgres), {
        outbox,
        logger,
        breaker: { probeMs: 60_000 },
      });
      const write = (id: string): MirrorOp => ({
        store: 'shop',
        target: 'memory',
        method: 'putUser',
        key: `user:${id}`,
        records: [{ entity: 'users', key: [id] }],
        epoch: 1,
      });

      await (
        await mirror.accept(write('u1'))
      ).applied;
      await (
        await mirror.accept(write('u2'))
      ).applied;

      expect(mirror.breakerFor('memory').state).toBe('open');
      expect(logs.filter((line) => line.includes('stopped answering'))).toEqual([
        expect.stringContaining('dualwrite: postgres stopped answering (SourceReadError: '),
      ]);
      expect(logs.join('\n')).not.toContain('memory stopped answering');
      const [failed, untried] = await outbox.list();
      expect(failed!.reason).toContain('ECONNREFUSED');
      expect(untried!.reason).toContain('postgres, which mirror writes to memory read from, is unreachable');
    } finally {
      await outbox.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
