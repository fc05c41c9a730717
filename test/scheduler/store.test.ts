import fc from 'fast-check';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  lockRequest,
  MAX_RESULT_BYTES,
  newExecution,
  transitionExecution,
  type LockHandle,
  type TaskExecution,
  type TaskLock,
} from '../../src/stores/task-scheduler/task-scheduler-model.js';
import { MemoryTaskSchedulerStore } from '../../src/stores/task-scheduler/memory-task-scheduler-store.js';
import { loadMigrations, migrate } from '../../src/postgres/migrations.js';
import { openPglite } from '../support/pglite.js';
import { PgPoolExecutor } from '../../src/postgres/pg-pool-executor.js';
import { poolOptionsFromEnv } from '../../src/runtime/config.js';
import { PostgresTaskSchedulerStore } from '../../src/stores/task-scheduler/postgres-task-scheduler-store.js';
import type { SqlExecutor } from '../../src/postgres/sql-executor.js';
import type { TaskSchedulerStore } from '../../src/stores/task-scheduler/task-scheduler-store.js';
import { availableBackends, openPostgresSchema, type BackendName } from '../support/backends.js';

/**
 * The TaskSchedulerStore on every backend: one active lock per key, renewal and release by
 * holder and token only, expiry on a clock the test moves, and fencing: a holder whose lock
 * expired and was taken over cannot write its execution's result through its token.
 */

const KEY = 'task:verifier';
const TTL_MS = 1000;
const T0 = Date.parse('2026-01-01T00:00:00.000Z');
const iso = (ms: number) => new Date(ms).toISOString();

interface StoreUnderTest {
  readonly store: TaskSchedulerStore;
  /** A second store on its own connections (PostgreSQL only): real concurrency. */
  readonly other?: TaskSchedulerStore;
  readonly db?: SqlExecutor;
  reset(): Promise<void>;
  close(): Promise<void>;
}

async function sqlStore(
  db: SqlExecutor,
  other: SqlExecutor | undefined,
  close: () => Promise<void>,
): Promise<StoreUnderTest> {
  await migrate(db, await loadMigrations());
  return {
    store: new PostgresTaskSchedulerStore(db),
    other: other && new PostgresTaskSchedulerStore(other),
    db,
    reset: async () => void (await db.query('TRUNCATE task_executions, task_locks RESTART IDENTITY')),
    close,
  };
}

const OPEN: Record<BackendName, () => Promise<StoreUnderTest>> = {
  memory: async () => {
    const under: { store: TaskSchedulerStore } = { store: new MemoryTaskSchedulerStore() };
    return {
      get store() {
        return under.store;
      },
      reset: async () => void (under.store = new MemoryTaskSchedulerStore()),
      close: async () => {},
    };
  },
  pglite: async () => {
    const db = await openPglite();
    return sqlStore(db, undefined, () => db.close());
  },
  postgres: async () => {
    const { db, schema, drop } = await openPostgresSchema('dw_sched');
    // Another pool on the same schema: a second process.
    const other = new PgPoolExecutor({ ...poolOptionsFromEnv(), poolSize: 4, maxOverflow: 0, minSize: 0, schema });
    return sqlStore(db, other, async () => {
      await other.close();
      await drop();
    });
  },
};

const request = (holderId: string, token: string, at: number, ttlMs = TTL_MS): TaskLock =>
  lockRequest({ lockKey: KEY, holderId, token, ttlMs, purpose: 'test' }, iso(at));
const runningUnder = (id: string, lock: LockHandle, at: number): TaskExecution =>
  transitionExecution(
    newExecution({ id, task: { name: 'verifier', type: 'verify' }, runBy: lock.holderId, lock }, iso(at)),
    'running',
    iso(at),
  );

for (const factory of availableBackends()) {
  describe(`TaskSchedulerStore on ${factory.name}`, () => {
    let under: StoreUnderTest;
    beforeAll(async () => {
      under = await OPEN[factory.name]();
    }, 60_000);
    beforeEach(async () => {
      await under.reset();
    });
    afterAll(async () => {
      await under?.close();
    });

    it('acquire fails while an unexpired active lock exists, and succeeds once it expired, which expires the old row', async () => {
      const { store } = under;
      const a = (await store.acquireLock(request('a', 'ta', T0)))!;
      expect(a).toMatchObject({ state: 'active', holderId: 'a', acquiredAt: iso(T0), expiresAt: iso(T0 + TTL_MS) });
      expect(await store.acquireLock(request('b', 'tb', T0 + TTL_MS - 1))).toBeUndefined();
      expect(await store.activeLock(KEY)).toEqual(a);
      const b = await store.acquireLock(request('b', 'tb2', T0 + TTL_MS));
      expect(b).toMatchObject({ holderId: 'b', token: 'tb2' });
      expect(await store.activeLock(KEY)).toEqual(b);
      // The old holder can neither renew nor release what it lost.
      expect(await store.renewLock(a, iso(T0 + 10 * TTL_MS))).toBeUndefined();
      expect(await store.releaseLock(a, iso(T0 + TTL_MS))).toBe(false);
      if (under.db)
        expect(
          (
            await under.db.query<{ holder_id: string; state: string }>(
              'SELECT holder_id, state FROM task_locks ORDER BY id',
            )
          ).map((r) => [r.holder_id, r.state]),
        ).toEqual([
          ['a', 'expired'],
          ['b', 'active'],
        ]);
    });

    it('renews and releases by holder and token only', async () => {
      const { store } = under;
      const a = (await store.acquireLock(request('a', 'ta', T0)))!;
      expect(await store.renewLock({ ...a, token: 'forged' }, iso(T0 + 5000))).toBeUndefined();
      expect(await store.releaseLock({ ...a, holderId: 'b' }, iso(T0))).toBe(false);
      expect(await store.renewLock(a, iso(T0 + 5000))).toMatchObject({ expiresAt: iso(T0 + 5000) });
      // Renewed: still held past the first expiry.
      expect(await store.acquireLock(request('b', 'tb', T0 + 4999))).toBeUndefined();
      expect(await store.releaseLock(a, iso(T0 + 100))).toBe(true);
      expect(await store.releaseLock(a, iso(T0 + 100))).toBe(false);
      expect(await store.activeLock(KEY)).toBeUndefined();
      expect(await store.acquireLock(request('b', 'tb', T0 + 101))).toMatchObject({ holderId: 'b' });
    });

    it('fences a holder whose lock expired and was taken over: its result is refused and its run marked interrupted', async () => {
      const { store } = under;
      const a = (await store.acquireLock(request('a', 'ta', T0)))!;
      const run = runningUnder('run-a', a, T0);
      expect(await store.insertExecution(run, a)).toBe(true);
      // Expired but not taken over: still a's, its progress is written.
      expect(await store.updateExecution({ ...run, progress: 50 }, 'running', a)).toBe(true);
      await store.acquireLock(request('b', 'tb', T0 + 2 * TTL_MS));
      const late = transitionExecution(run, 'success', iso(T0 + 3 * TTL_MS), { result: 'late' });
      expect(await store.updateExecution(late, 'running', a)).toBe(false);
      expect(await store.insertExecution(runningUnder('run-a2', a, T0 + 3 * TTL_MS), a)).toBe(false);
      expect(await store.getExecution('run-a')).toMatchObject({
        state: 'interrupted',
        finishedAt: iso(T0 + 2 * TTL_MS),
        durationMs: 2 * TTL_MS,
        progress: 50,
        errorMessage: expect.stringContaining('took it'),
      });
      expect(await store.getExecution('run-a2')).toBeUndefined();
    });

    it('fast-check: two holders and a manual clock; locks and fenced writes always agree with the model', async () => {
      type Action =
        { kind: 'acquire' | 'renew' | 'release' | 'finish'; holder: 0 | 1 } | { kind: 'advance'; ms: number };
      const holder = fc.constantFrom<0 | 1>(0, 1);
      const action: fc.Arbitrary<Action> = fc.oneof(
        fc.record({ kind: fc.constantFrom('acquire', 'renew', 'release', 'finish' as const), holder }),
        fc.record({ kind: fc.constant('advance' as const), ms: fc.integer({ min: 0, max: 2 * TTL_MS }) }),
      );
      let round = 0;
      await fc.assert(
        fc.asyncProperty(fc.array(action, { minLength: 1, maxLength: 25 }), async (actions) => {
          await under.reset();
          round++;
          const { store } = under;
          let now = T0;
          // The model: the active lock (holder, token, expiry), and each holder's last lock and run.
          let active: { holder: number; token: string; expires: number } | undefined;
          const held: (LockHandle | undefined)[] = [undefined, undefined];
          const runs: ({ id: string; state: string } | undefined)[] = [undefined, undefined];
          let serial = 0;
          for (const step of actions) {
            if (step.kind === 'advance') {
              now += step.ms;
              continue;
            }
            const h = step.holder;
            const name = `h${h}`;
            if (step.kind === 'acquire') {
              const token = `r${round}-t${serial++}`;
              const expected = !active || active.expires <= now;
              const got = await store.acquireLock(request(name, token, now));
              expect(got !== undefined).toBe(expected);
              if (!expected) continue;
              if (active) {
                const loser = runs[active.holder];
                if (loser?.state === 'running') loser.state = 'interrupted';
              }
              active = { holder: h, token, expires: now + TTL_MS };
              held[h] = got;
              const id = `r${round}-e${serial++}`;
              expect(await store.insertExecution(runningUnder(id, got!, now), got)).toBe(true);
              runs[h] = { id, state: 'running' };
            } else if (step.kind === 'renew') {
              const mine = held[h];
              if (!mine) continue;
              const expected = active?.token === mine.token;
              expect((await store.renewLock(mine, iso(now + TTL_MS))) !== undefined).toBe(expected);
              if (expected) active!.expires = now + TTL_MS;
            } else if (step.kind === 'release') {
              const mine = held[h];
              if (!mine) continue;
              const expected = active?.token === mine.token;
              expect(await store.releaseLock(mine, iso(now))).toBe(expected);
              if (expected) active = undefined;
            } else {
              const mine = held[h];
              const run = runs[h];
              if (!mine || !run) continue;
              // A fenced write of the result: accepted only while this holder's lock is the active one and the run still runs.
              const expected = active?.token === mine.token && run.state === 'running';
              const current = (await store.getExecution(run.id))!;
              const ended = transitionExecution(
                runningUnder(run.id, mine, Date.parse(current.startedAt!)),
                'success',
                iso(now),
                { result: { by: name } },
              );
              expect(await store.updateExecution(ended, 'running', mine)).toBe(expected);
              if (expected) run.state = 'success';
            }
            // Invariants after every step: the store's active lock is the model's, and each run's state is the model's.
            const stored = await store.activeLock(KEY);
            expect(stored?.token).toBe(active?.token);
            for (const run of runs) if (run) expect((await store.getExecution(run.id))?.state).toBe(run.state);
          }
        }),
        { numRuns: factory.name === 'memory' ? 300 : 30 },
      );
    }, 120_000);

    it('after a restart: running executions without a live lock become interrupted; with the runtime lease, every other holder is dead', async () => {
      const { store } = under;
      const live = (await store.acquireLock(request('live-elsewhere', 'tl', T0, 60_000)))!;
      await store.insertExecution(runningUnder('live', live, T0), live);
      const deadLock = (await store.acquireLock({ ...request('dead', 'td', T0), lockKey: 'task:outbox.replay' }))!;
      await store.insertExecution(runningUnder('dead', deadLock, T0), deadLock);
      const ended = transitionExecution(runningUnder('ended', live, T0), 'success', iso(T0 + 5));
      await store.insertExecution(ended);

      // Without the lease: only what runs under an expired lock was abandoned.
      const first = await store.interruptAbandoned(iso(T0 + 2 * TTL_MS), { holderId: 'me', everyOtherHolder: false });
      expect(first.map((e) => e.id)).toEqual(['dead']);
      expect(await store.getExecution('dead')).toMatchObject({
        state: 'interrupted',
        finishedAt: iso(T0 + 2 * TTL_MS),
        durationMs: 2 * TTL_MS,
      });
      expect((await store.getExecution('live'))!.state).toBe('running');
      // With it: no other holder is alive.
      expect(
        (await store.interruptAbandoned(iso(T0 + 3 * TTL_MS), { holderId: 'me', everyOtherHolder: true })).map(
          (e) => e.id,
        ),
      ).toEqual(['live']);
      expect((await store.getExecution('ended'))!.state).toBe('success');
      expect(await store.activeLock(KEY)).toBeUndefined();
      expect(await store.renewLock(live, iso(T0 + 4 * TTL_MS))).toBeUndefined();
    });

    it('stores a 64 KB result whole, a longer one cut and flagged; lists newest first, by task, within the limit', async () => {
      const { store } = under;
      const exact = 'é'.repeat(MAX_RESULT_BYTES / 2);
      await store.insertExecution(
        transitionExecution(
          runningUnder('exact', { lockKey: KEY, holderId: 'a', token: 'x' }, T0),
          'success',
          iso(T0 + 1),
          { result: exact },
        ),
      );
      await store.insertExecution(
        transitionExecution(
          runningUnder('over', { lockKey: KEY, holderId: 'a', token: 'x' }, T0 + 10),
          'success',
          iso(T0 + 11),
          { result: `${exact}!` },
        ),
      );
      await store.insertExecution({
        ...runningUnder('other', { lockKey: 'task:other', holderId: 'a', token: 'y' }, T0 + 20),
        taskName: 'other',
      });
      const [other, over, first] = await store.listExecutions();
      expect([other!.id, over!.id, first!.id]).toEqual(['other', 'over', 'exact']);
      expect([first!.result === exact, first!.resultTruncated]).toEqual([true, false]);
      expect([over!.result === exact, over!.resultTruncated]).toEqual([true, true]);
      expect((await store.listExecutions({ taskName: 'verifier', limit: 1 })).map((e) => e.id)).toEqual(['over']);
    });

    it('purges ended executions and released or expired locks past their retention, never what is active or running', async () => {
      const { store } = under;
      const old = (await store.acquireLock(request('a', 'old', T0)))!;
      await store.insertExecution(transitionExecution(runningUnder('old', old, T0), 'success', iso(T0 + 1)));
      await store.insertExecution(runningUnder('running', old, T0));
      await store.releaseLock(old, iso(T0 + 2));
      await store.acquireLock(request('a', 'new', T0 + 100));
      expect(await store.purge({ executionsBefore: iso(T0 + 50), locksBefore: iso(T0 + 50) })).toEqual({
        executions: 1,
        locks: 1,
      });
      expect((await store.listExecutions()).map((e) => e.id)).toEqual(['running']);
      expect((await store.activeLock(KEY))!.token).toBe('new');
    });

    if (factory.name === 'postgres')
      it('two processes racing: one acquire wins; a fenced write racing a takeover is either written or interrupted, never both', async () => {
        const stores = [under.store, under.other!];
        await fc.assert(
          fc.asyncProperty(fc.integer({ min: 0, max: 20 }), fc.boolean(), async (ticks, writerFirst) => {
            await under.reset();
            const won = await Promise.all(
              stores.map((store, n) => store.acquireLock(request(`p${n}`, `race-${n}-${ticks}-${writerFirst}`, T0))),
            );
            expect(won.filter((lock) => lock !== undefined)).toHaveLength(1);
            const winner = won.find((lock) => lock !== undefined)!;
            const run = runningUnder('raced', winner, T0);
            await stores[0]!.insertExecution(run, winner);
            const ended = transitionExecution(run, 'success', iso(T0 + 2 * TTL_MS), { result: 'done' });
            const write = () => stores[0]!.updateExecution(ended, 'running', winner);
            const takeover = () =>
              stores[1]!.acquireLock(request('p9', `takeover-${ticks}-${writerFirst}`, T0 + 2 * TTL_MS));
            // A few turns of the event loop's microtasks: the second statement leaves a little later.
            const pause = async () => {
              for (let n = 0; n < ticks; n++) await Promise.resolve();
            };
            const [written, taken] = writerFirst
              ? await Promise.all([write(), pause().then(takeover)])
              : await Promise.all([pause().then(write), takeover()]);
            expect(taken).toBeDefined();
            expect((await stores[1]!.getExecution('raced'))!.state).toBe(written ? 'success' : 'interrupted');
          }),
          { numRuns: 20 },
        );
      }, 60_000);
  });
}
