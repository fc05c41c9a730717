import { randomBytes } from 'node:crypto';
import { appendFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { FlagState } from '../../flags/flag-state.js';
import { ManualFlagSource } from '../../flags/manual-flags.js';
import { FileOutbox } from '../../src/dualwrite/file-outbox.js';
import { DualWriteMetrics, METRIC } from '../../src/dualwrite/metrics.js';
import { Mirror } from '../../src/dualwrite/mirror.js';
import type { MirrorOp, Outbox, OutboxEntry } from '../../src/dualwrite/outbox.js';
import { RedisOutbox } from '../../src/dualwrite/redis-outbox.js';
import { OutboxReplayer, type ReplayerOptions } from '../../src/dualwrite/replayer.js';
import { openDualWrite } from '../../src/runtime/open-dual-write.js';
import { MemoryAgentTaskStore } from '../../src/stores/agent-task/memory-agent-task-store.js';
import { MemoryGraphStore } from '../../src/stores/graph/memory-graph-store.js';
import { loadMigrations, migrate } from '../../src/postgres/migrations.js';
import { PgPoolExecutor } from '../../src/postgres/pg-pool-executor.js';
import { poolOptionsFromEnv } from '../../src/runtime/config.js';
import { availableBackends, openPostgresSchema } from '../support/backends.js';
import { eventually } from '../support/eventually.js';
import { startTcpProxy } from '../support/tcp-proxy.js';
import { canRun, unsetVariable } from '../support/service-available.js';

/**
 * The outbox contract, written once and run against the file journal and the Redis
 * stream, then each implementation's own guarantees, then the replayer on top.
 */

const T0 = '2025-06-01T00:00:00.000Z';
const at = (minute: number) => `2025-06-01T00:${String(minute).padStart(2, '0')}:00.000Z`;
const uuid = (prefix: string, n: number) => `${prefix}0000000-0000-4000-8000-${n.toString(16).padStart(12, '0')}`;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Ops as the DualWriteStore journals them: copies of the records a write left, an ordering key. */
const contributorRecord = (n: number, name: string) => ({
  id: uuid('1', n),
  name,
  email: null,
  githubUsername: null,
  walletAddress: null,
  metadata: { n },
  createdAt: T0,
  updatedAt: T0,
});
const assetRecord = (n: number, totalCost: string, updatedAt = T0) => ({
  id: uuid('2', n),
  name: `a${n}`,
  description: null,
  assetType: 'code',
  totalCost,
  metadata: {},
  createdAt: T0,
  updatedAt,
});
const ops = {
  contributor: (n: number, name = `c${n}`): MirrorOp => ({
    store: 'graph',
    target: 'memory',
    method: 'createContributor',
    records: [{ entity: 'contributors', key: [uuid('1', n)], record: contributorRecord(n, name) }],
    key: `contributor:${uuid('1', n)}`,
    epoch: 1,
  }),
  asset: (n: number): MirrorOp => ({
    store: 'graph',
    target: 'memory',
    method: 'createAsset',
    records: [{ entity: 'assets', key: [uuid('2', n)], record: assetRecord(n, '0.00') }],
    key: `asset:${uuid('2', n)}`,
    epoch: 1,
  }),
  /** A contribution and its asset as they stand after it, with `total` the asset's new total. */
  contribution: (n: number, contributor: number, asset: number, cost: string, total = cost): MirrorOp => ({
    store: 'graph',
    target: 'memory',
    method: 'createContribution',
    records: [
      { entity: 'assets', key: [uuid('2', asset)], record: assetRecord(asset, total, at(n)) },
      {
        entity: 'contributions',
        key: [uuid('3', n)],
        record: {
          id: uuid('3', n),
          contributorId: uuid('1', contributor),
          assetId: uuid('2', asset),
          costAmount: cost,
          coherenceScore: '0.50',
          metadata: {},
          timestamp: at(n),
        },
      },
    ],
    key: `asset:${uuid('2', asset)}`,
    requires: [`contributor:${uuid('1', contributor)}`],
    epoch: 1,
  }),
  project: (version: number): MirrorOp => ({
    store: 'graph',
    target: 'memory',
    method: 'upsertProject',
    records: [
      {
        entity: 'projects',
        key: ['npm', 'k'],
        record: {
          ecosystem: 'npm',
          name: 'k',
          description: `v${version}`,
          homepageUrl: null,
          repositoryUrl: null,
          dependencyCount: 0,
          createdAt: at(1),
          updatedAt: at(version),
        },
      },
    ],
    key: 'project:npm/k',
    epoch: 1,
  }),
};

const REDIS = canRun('the RedisOutbox tests', unsetVariable('REDIS_URL'));

/** Cleanups registered during a test, run after it in reverse order. */
function useCleanups(): (cleanup: () => Promise<unknown>) => void {
  const cleanups: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });
  return (cleanup) => void cleanups.push(cleanup);
}

// ---------------------------------------------------------------------------------------
// The contract every Outbox keeps.

interface OpenedOutbox {
  readonly outbox: Outbox;
  /** Another handle on the same journal, as after a restart (the first is closed first where it must be). */
  reopen(): Promise<Outbox>;
  /** The dead letters, oldest first. */
  deadLetters(): Promise<Record<string, unknown>[]>;
}

interface OutboxImplementation {
  readonly name: string;
  readonly available: boolean;
  open(defer: (cleanup: () => Promise<unknown>) => void): Promise<OpenedOutbox>;
}

const IMPLEMENTATIONS: OutboxImplementation[] = [
  {
    name: 'FileOutbox',
    available: true,
    async open(defer) {
      const dir = await mkdtemp(join(tmpdir(), 'dw-outbox-'));
      defer(() => rm(dir, { recursive: true, force: true }));
      const path = join(dir, 'outbox.jsonl');
      let current = await FileOutbox.open({ path });
      defer(() => current.close());
      return {
        outbox: current,
        async reopen() {
          await current.close();
          current = await FileOutbox.open({ path });
          return current;
        },
        async deadLetters() {
          const text = await readFile(join(dir, 'outbox.dead.jsonl'), 'utf8').catch(() => '');
          return text
            .split('\n')
            .filter((line) => line !== '')
            .map((line) => JSON.parse(line) as Record<string, unknown>);
        },
      };
    },
  },
  {
    name: 'RedisOutbox',
    available: REDIS,
    async open(defer) {
      const stream = `dw-test:${randomBytes(6).toString('hex')}`;
      const connect = () => {
        const redis = new Redis(process.env.REDIS_URL!, { maxRetriesPerRequest: 2 });
        defer(() => redis.quit());
        return redis;
      };
      const redis = connect();
      defer(() => redis.del(stream, `${stream}:dead`, `${stream}:lease`, `${stream}:errors`));
      return {
        outbox: new RedisOutbox(redis, { stream }),
        async reopen() {
          const outbox = new RedisOutbox(connect(), { stream });
          await outbox.refresh();
          return outbox;
        },
        async deadLetters() {
          const rows = await redis.xrange(`${stream}:dead`, '-', '+');
          return rows.map(([, fields]) => JSON.parse(fields[1]!) as Record<string, unknown>);
        },
      };
    },
  },
];

for (const implementation of IMPLEMENTATIONS.filter((candidate) => candidate.available)) {
  describe(`Outbox contract: ${implementation.name}`, () => {
    const defer = useCleanups();
    const open = () => implementation.open(defer);

    it('is empty at first', async () => {
      const { outbox } = await open();
      expect(await outbox.peek(10)).toEqual([]);
      expect(outbox.stats()).toEqual({ depth: 0, oldestAgeSeconds: 0 });
    });

    it('returns appended entries in journal order with the op, reason, id and journal time', async () => {
      const { outbox } = await open();
      const appended = [
        await outbox.append(ops.contributor(1), 'first failed'),
        await outbox.append(ops.asset(1), 'second failed'),
        await outbox.append(ops.contribution(1, 1, 1, '2.50'), 'third failed'),
      ];
      expect(appended[0]).toMatchObject({ ...ops.contributor(1), reason: 'first failed' });
      for (const entry of appended) expect(Date.parse(entry.journaledAt)).not.toBeNaN();
      expect(new Set(appended.map((entry) => entry.id)).size).toBe(3);

      expect(await outbox.peek(10)).toEqual(appended);
      expect(await outbox.peek(2)).toEqual(appended.slice(0, 2));
      expect(outbox.stats().depth).toBe(3);
    });

    it('removes acknowledged entries and keeps the order of the rest', async () => {
      const { outbox } = await open();
      const [first, second, third] = [
        await outbox.append(ops.project(1), 'r'),
        await outbox.append(ops.project(2), 'r'),
        await outbox.append(ops.project(3), 'r'),
      ];
      await outbox.ack([second!.id]);
      expect(await outbox.peek(10)).toEqual([first, third]);
      await outbox.ack([]);
      expect(await outbox.peek(10)).toEqual([first, third]);
      await outbox.ack([first!.id, third!.id]);
      expect(await outbox.peek(10)).toEqual([]);
      expect(outbox.stats()).toEqual({ depth: 0, oldestAgeSeconds: 0 });
    });

    it('keeps pending entries for the next handle on the same journal', async () => {
      const opened = await open();
      const kept = await opened.outbox.append(ops.contributor(1), 'r');
      const acked = await opened.outbox.append(ops.contributor(2), 'r');
      const later = await opened.outbox.append(ops.contributor(3), 'r');
      await opened.outbox.ack([acked.id]);

      const again = await opened.reopen();
      expect(await again.peek(10)).toEqual([kept, later]);
      const next = await again.append(ops.contributor(4), 'r');
      expect(await again.peek(10)).toEqual([kept, later, next]);
    });

    it('reports the age of the oldest entry', async () => {
      const { outbox } = await open();
      await outbox.append(ops.contributor(1), 'r');
      // Time passing is the point: the oldest entry is 60 ms older than the newest.
      await sleep(60);
      await outbox.append(ops.contributor(2), 'r');
      await outbox.peek(1);
      const stats = outbox.stats();
      expect(stats.depth).toBe(2);
      expect(stats.oldestAgeSeconds).toBeGreaterThanOrEqual(0.05);
      expect(stats.oldestAgeSeconds).toBeLessThan(60);
    });

    it('moves a dead-lettered entry aside with its reason', async () => {
      const opened = await open();
      const dead = await opened.outbox.append(ops.contribution(1, 1, 1, '1.00'), 'NotFoundError');
      const alive = await opened.outbox.append(ops.contributor(2), 'r');
      await opened.outbox.deadLetter(dead, 'rejected 5 times');

      expect(await opened.outbox.peek(10)).toEqual([alive]);
      const letters = await opened.deadLetters();
      expect(letters).toHaveLength(1);
      expect(letters[0]).toMatchObject({ ...dead, deadReason: 'rejected 5 times' });
      expect(Date.parse(letters[0]!.deadLetteredAt as string)).not.toBeNaN();
    });

    it('keeps the error an entry was refused with, in its place and across a reopen, until it is acknowledged', async () => {
      const opened = await open();
      const fk = {
        message: 'insert or update on table "orders" violates foreign key constraint "orders_user_fk"',
        code: '23503',
        constraint: 'orders_user_fk',
      };
      const refused = await opened.outbox.append(ops.contribution(1, 1, 1, '1.00'), 'refused', fk);
      const later = await opened.outbox.append(ops.contributor(2), 'r');
      expect(refused.lastError).toEqual(fk);
      expect(later.lastError).toBeUndefined();

      // Refused again on replay, for another reason: the entry says so, where it was.
      const check = { message: 'new row violates check constraint "positive"', code: '23514', constraint: 'positive' };
      await opened.outbox.noteError!(refused.id, check);
      expect(await opened.outbox.peek(10)).toEqual([{ ...refused, lastError: check }, later]);
      const again = await opened.reopen();
      expect(await again.peek(10)).toEqual([{ ...refused, lastError: check }, later]);

      await again.ack([refused.id]);
      expect(await again.peek(10)).toEqual([later]);
      expect(await (await opened.reopen()).peek(10)).toEqual([later]);
    });

    it('grants the replay lease to one holder at a time', async () => {
      const { outbox } = await open();
      const first = await outbox.replayLease(60_000);
      expect(first).not.toBeNull();
      expect(await outbox.replayLease(60_000)).toBeNull();
      await first!.release();
      const second = await outbox.replayLease(60_000);
      expect(second).not.toBeNull();
      await second!.release();
    });
  });
}

// ---------------------------------------------------------------------------------------

describe('FileOutbox journal', () => {
  const defer = useCleanups();
  async function journal(options: { compactAfterLines?: number } = {}) {
    const dir = await mkdtemp(join(tmpdir(), 'dw-journal-'));
    defer(() => rm(dir, { recursive: true, force: true }));
    const path = join(dir, 'outbox.jsonl');
    const opened: FileOutbox[] = [];
    defer(async () => {
      for (const outbox of opened) await outbox.close().catch(() => {});
    });
    const open = async () => {
      const outbox = await FileOutbox.open({ path, ...options });
      opened.push(outbox);
      return outbox;
    };
    const lines = async () => (await readFile(path, 'utf8')).split('\n').filter((line) => line !== '');
    return { dir, path, open, lines };
  }

  it('rebuilds pending entries on reopen and numbers new entries after them', async () => {
    const { open } = await journal();
    const first = await open();
    const entries = [
      await first.append(ops.project(1), 'r'),
      await first.append(ops.project(2), 'r'),
      await first.append(ops.project(3), 'r'),
    ];
    await first.ack([entries[0]!.id]);
    await first.close();

    const second = await open();
    expect(await second.peek(10)).toEqual(entries.slice(1));
    const next = await second.append(ops.project(4), 'r');
    expect(next.id > entries[2]!.id).toBe(true);
    expect((await second.peek(10)).map((entry) => entry.id)).toEqual([entries[1]!.id, entries[2]!.id, next.id]);
  });

  it('ignores a torn last line', async () => {
    const { open, path } = await journal();
    const first = await open();
    const entries = [await first.append(ops.project(1), 'r'), await first.append(ops.project(2), 'r')];
    await first.close();
    await appendFile(path, '{"append":{"store":"graph","tar');

    const second = await open();
    expect(await second.peek(10)).toEqual(entries);
  });

  it('keeps an entry appended after recovering from a torn last line', async () => {
    const { open, path } = await journal();
    const first = await open();
    const before = await first.append(ops.project(1), 'r');
    await first.close();
    await appendFile(path, '{"append":{"store":"graph","tar');

    const second = await open();
    const after = await second.append(ops.project(2), 'r');
    await second.close();

    const third = await open();
    expect(await third.peek(10)).toEqual([before, after]);
  });

  it('refuses a journal with a corrupt line before the last, naming the line', async () => {
    const { open, path } = await journal();
    const first = await open();
    await first.append(ops.project(1), 'r');
    await first.close();
    const text = await readFile(path, 'utf8');
    await writeFile(path, `${text}{not json\n${text}`);

    await expect(open()).rejects.toThrow(/line 2\b/);
  });

  it('compacts the journal to the pending entries once enough lines are dead', async () => {
    const { open, lines } = await journal({ compactAfterLines: 3 });
    const outbox = await open();
    const entries: OutboxEntry[] = [];
    for (let version = 1; version <= 5; version++) entries.push(await outbox.append(ops.project(version), 'r'));
    expect(await lines()).toHaveLength(5);

    await outbox.ack([entries[0]!.id, entries[1]!.id]);
    const compacted = await lines();
    expect(compacted.map((line) => JSON.parse(line) as unknown)).toEqual(
      entries.slice(2).map((entry) => ({ append: entry })),
    );
    expect(await outbox.peek(10)).toEqual(entries.slice(2));

    // Appends after compaction go to the rewritten file.
    const sixth = await outbox.append(ops.project(6), 'r');
    await outbox.close();
    const reopened = await open();
    expect(await reopened.peek(10)).toEqual([...entries.slice(2), sixth]);

    await reopened.ack((await reopened.peek(10)).map((entry) => entry.id));
    expect(await lines()).toEqual([]);
  });

  it('writes dead letters to the .dead file beside the journal', async () => {
    const { open, dir } = await journal();
    const outbox = await open();
    const entry = await outbox.append(ops.contributor(1), 'r');
    await outbox.deadLetter(entry, 'gave up');
    const dead = (await readFile(join(dir, 'outbox.dead.jsonl'), 'utf8')).trim().split('\n');
    expect(dead).toHaveLength(1);
    expect(JSON.parse(dead[0]!)).toMatchObject({ id: entry.id, deadReason: 'gave up' });
    expect(await outbox.peek(10)).toEqual([]);
  });
});

if (REDIS) {
  describe('RedisOutbox shared by replicas', () => {
    const defer = useCleanups();
    function replicas(count: number): RedisOutbox[] {
      const stream = `dw-test:${randomBytes(6).toString('hex')}`;
      const admin = new Redis(process.env.REDIS_URL!);
      defer(() => admin.quit());
      defer(() => admin.del(stream, `${stream}:dead`, `${stream}:lease`));
      return Array.from({ length: count }, () => {
        const redis = new Redis(process.env.REDIS_URL!, { maxRetriesPerRequest: 2 });
        defer(() => redis.quit());
        return new RedisOutbox(redis, { stream });
      });
    }

    it('grants the replay lease to one replica at a time', async () => {
      const [a, b] = replicas(2);
      const lease = await a!.replayLease(60_000);
      expect(lease).not.toBeNull();
      expect(await b!.replayLease(60_000)).toBeNull();
      await lease!.release();
      const taken = await b!.replayLease(60_000);
      expect(taken).not.toBeNull();
      expect(await a!.replayLease(60_000)).toBeNull();
      await taken!.release();
    });

    it('does not release a lease another replica took after its own expired', async () => {
      const [a, b, c] = replicas(3);
      const expired = await a!.replayLease(100);
      const current = await eventually(async () => {
        const taken = await b!.replayLease(60_000);
        expect(taken).not.toBeNull();
        return taken;
      });
      await expired!.release();
      expect(await c!.replayLease(60_000)).toBeNull();
      await current!.release();
    });

    it('reports depth and age of entries another replica appended, once refreshed', async () => {
      const [writer, reader] = replicas(2);
      await writer!.append(ops.contributor(1), 'r');
      await writer!.append(ops.contributor(2), 'r');
      expect(reader!.stats().depth).toBe(0);
      // Time passing is the point: the entries are 60 ms old when the reader refreshes.
      await sleep(60);
      await reader!.refresh();
      expect(reader!.stats().depth).toBe(2);
      expect(reader!.stats().oldestAgeSeconds).toBeGreaterThanOrEqual(0.05);
      expect(reader!.stats().oldestAgeSeconds).toBeLessThan(60);
    });
  });
}

// ---------------------------------------------------------------------------------------

describe('OutboxReplayer', () => {
  const defer = useCleanups();

  /** A replayer over a FileOutbox whose target is a pair of in-memory stores. */
  async function replayer(options: Omit<ReplayerOptions, 'metrics' | 'logger'> = {}) {
    const dir = await mkdtemp(join(tmpdir(), 'dw-replay-'));
    defer(() => rm(dir, { recursive: true, force: true }));
    const outbox = await FileOutbox.open({ path: join(dir, 'outbox.jsonl') });
    defer(() => outbox.close());
    const registry = new Registry();
    const metrics = new DualWriteMetrics(registry);
    const target = { graph: new MemoryGraphStore(), tasks: new MemoryAgentTaskStore() };
    const mirror = new Mirror((store) => target[store as keyof typeof target], {
      outbox,
      metrics,
      breaker: { probeMs: 0 },
    });
    const logs: string[] = [];
    const logger = {
      info: (line: string) => void logs.push(line),
      warn: (line: string) => void logs.push(line),
      error: (line: string) => void logs.push(line),
    };
    const instance = new OutboxReplayer(outbox, mirror, { ...options, metrics, logger });
    defer(() => instance.stop());
    const count = async (name: string, labels: Record<string, string>) => {
      const { values } = await registry.getSingleMetric(name)!.get();
      return values
        .filter((sample) => Object.entries(labels).every(([label, value]) => sample.labels[label] === value))
        .reduce((sum, sample) => sum + sample.value, 0);
    };
    const journal = async (...journaled: MirrorOp[]) => {
      const entries: OutboxEntry[] = [];
      for (const op of journaled) entries.push(await outbox.append(op, 'mirror write failed'));
      await mirror.loadJournaled();
      return entries;
    };
    return { dir, outbox, mirror, target, replayer: instance, logs, count, journal };
  }

  it('replays entries in journal order', async () => {
    const { replayer: r, target, outbox, journal, count } = await replayer();
    await journal(
      ops.contributor(1),
      ops.asset(1),
      ops.contribution(1, 1, 1, '1.25'),
      ops.contribution(2, 1, 1, '2.50', '3.75'),
      ops.project(1),
      ops.project(2),
      ops.project(3),
    );

    expect(await r.replayOnce()).toEqual({ replayed: 7, deadLettered: 0 });
    expect((await target.graph.getAsset(uuid('2', 1)))!.totalCost).toBe('3.75');
    expect(await target.graph.getProject({ ecosystem: 'npm', name: 'k' })).toMatchObject({
      description: 'v3',
      updatedAt: at(3),
      createdAt: at(1),
    });
    expect(await outbox.peek(10)).toEqual([]);
    expect(await count(METRIC.outboxReplayed, { outcome: 'applied' })).toBe(7);
  });

  it('holds an entry the target refuses for its data with its keys, replays the other keys, and the entry once its data is there', async () => {
    const { replayer: r, target, outbox, journal } = await replayer();
    const entries = await journal(ops.contribution(1, 1, 1, '1.00'), ops.contributor(2));

    const round = await r.replayOnce();
    expect(round).toMatchObject({
      replayed: 1,
      deadLettered: 0,
      held: [{ id: entries[0]!.id, refusals: 1, error: { message: expect.stringContaining('NotFoundError') } }],
    });
    expect(round.failure).toBeUndefined();
    // The refused entry stays, with what the target said; the other key went through.
    expect(await outbox.peek(10)).toEqual([
      { ...entries[0], lastError: expect.objectContaining({ message: expect.stringContaining('contributorId') }) },
    ]);
    expect(await target.graph.getContributor(uuid('1', 2))).not.toBeNull();

    // Once what the entry needs exists, it goes through.
    await target.graph.createContributor({ id: uuid('1', 1), name: 'c1', at: T0 });
    expect(await r.replayOnce()).toEqual({ replayed: 1, deadLettered: 0 });
    expect((await target.graph.getAsset(uuid('2', 1)))!.totalCost).toBe('1.00');
  });

  it('never dead-letters an entry that fails with something other than a StoreError', async () => {
    const { replayer: r, outbox, journal, count } = await replayer({ maxRejections: 2 });
    const broken: MirrorOp = { ...ops.contributor(1), store: 'noSuchStore' };
    const entries = await journal(broken);
    for (let round = 0; round < 4; round++) expect((await r.replayOnce()).failure).toContain(entries[0]!.id);
    expect(await outbox.peek(10)).toEqual(entries);
    expect(await count(METRIC.outboxDeadLettered, {})).toBe(0);
  });

  it('replays a copy that was already applied without changing anything (its commit was lost in transit)', async () => {
    const { replayer: r, target, outbox, journal, count } = await replayer();
    const entry = ops.contributor(1, 'copied');
    await new Mirror((store) => target[store as keyof typeof target], { outbox }).apply(entry);
    const before = await target.graph.getContributor(uuid('1', 1));
    await journal(entry);

    expect(await r.replayOnce()).toEqual({ replayed: 1, deadLettered: 0 });
    expect(await outbox.peek(10)).toEqual([]);
    expect(await target.graph.getContributor(uuid('1', 1))).toEqual(before);
    expect(before).toMatchObject({ name: 'copied' });
    expect(await count(METRIC.outboxReplayed, { outcome: 'applied' })).toBe(1);
    expect(await count(METRIC.outboxReplayed, { outcome: 'failed' })).toBe(0);
  });

  it('dead-letters an entry rejected maxRejections times, releases its key and goes on', async () => {
    const { replayer: r, target, outbox, mirror, journal, count, dir, logs } = await replayer({ maxRejections: 3 });
    const [rejected, fine] = await journal(ops.contribution(1, 1, 1, '1.00'), ops.contributor(2));
    expect(mirror.isPending(rejected!.key)).toBe(true);

    // Refused, it holds only its own key: the other entry is replayed at once.
    expect(await r.replayOnce()).toMatchObject({
      replayed: 1,
      deadLettered: 0,
      held: [{ id: rejected!.id, refusals: 1 }],
    });
    expect(await r.replayOnce()).toMatchObject({
      replayed: 0,
      deadLettered: 0,
      held: [{ id: rejected!.id, refusals: 2 }],
    });
    expect((await outbox.peek(10)).map((entry) => entry.id)).toEqual([rejected!.id]);
    expect(mirror.isPending(fine!.key)).toBe(false);
    expect(await r.replayOnce()).toEqual({ replayed: 0, deadLettered: 1 });

    expect(await outbox.peek(10)).toEqual([]);
    expect(mirror.isPending(rejected!.key)).toBe(false);
    expect(mirror.isPending(fine!.key)).toBe(false);
    expect(await target.graph.getContributor(uuid('1', 2))).not.toBeNull();
    const dead = (await readFile(join(dir, 'outbox.dead.jsonl'), 'utf8'))
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(dead).toEqual([
      expect.objectContaining({ id: rejected!.id, deadReason: expect.stringContaining('NotFoundError') }),
    ]);
    expect(await count(METRIC.outboxDeadLettered, { store: 'graph' })).toBe(1);
    expect(await count(METRIC.outboxReplayed, { outcome: 'failed' })).toBe(3);
    expect(await count(METRIC.outboxReplayed, { outcome: 'applied' })).toBe(1);
    expect(logs.filter((line) => line.includes('dead-lettered'))).toHaveLength(1);
  });

  for (const factory of availableBackends(['postgres'])) {
    it(`never applies an older write over a newer one (${factory.name} unreachable, then back)`, async () => {
      const schema = await openPostgresSchema('dw_outbox');
      defer(() => schema.drop());
      const url = new URL(process.env.DATABASE_URL!);
      const proxy = await startTcpProxy({ host: url.hostname, port: Number(url.port || 5432) });
      defer(() => proxy.close());
      url.hostname = '127.0.0.1';
      url.port = String(proxy.port);
      const db = new PgPoolExecutor({
        ...poolOptionsFromEnv({ DATABASE_URL: url.toString() }),
        schema: schema.schema,
        poolSize: 3,
        maxOverflow: 0,
        minSize: 0,
        connectTimeoutMs: 1000,
      });
      defer(() => db.close());
      await migrate(db, await loadMigrations());
      const dir = await mkdtemp(join(tmpdir(), 'dw-order-'));
      defer(() => rm(dir, { recursive: true, force: true }));
      const outbox = await FileOutbox.open({ path: join(dir, 'outbox.jsonl') });
      defer(() => outbox.close());
      const rt = await openDualWrite({
        db,
        env: {},
        flags: new FlagState([new ManualFlagSource({ stage: 'dual-write' })]),
        outbox,
        mirror: { breaker: { probeMs: 0 } },
        logger: { info() {}, warn() {}, error() {} },
      });
      defer(() => rt.close());
      await rt.replayer.stop();
      const K = { ecosystem: 'npm', name: 'k' };

      proxy.cut();
      await rt.graph.upsertProject({ ...K, description: 'older', at: at(1) });
      expect((await rt.outbox.peek(10)).map((entry) => entry.key)).toEqual(['project:npm/k']);

      proxy.restore();
      const newer = await rt.graph.upsertProject({ ...K, description: 'newer', at: at(2) });
      const journaled = await rt.outbox.peek(10);
      expect(journaled.map((entry) => (entry.records![0]!.record as { description: string }).description)).toEqual([
        'older',
        'newer',
      ]);
      expect(journaled[1]!.reason).toMatch(/waiting in the outbox/);
      expect(await rt.postgres.graph.getProject(K)).toBeNull();

      expect(await rt.replayer.replayOnce()).toEqual({ replayed: 2, deadLettered: 0 });
      expect(await rt.postgres.graph.getProject(K)).toEqual(newer);
      expect(await rt.memory.graph.getProject(K)).toEqual(newer);
      expect(rt.mirror.isPending('project:npm/k')).toBe(false);
    });
  }
});
