import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { buildApi } from '../../src/api/app.js';
import { MemoryAgentTaskStore } from '../../src/stores/agent-task/memory-agent-task-store.js';
import { MemoryGraphStore } from '../../src/stores/graph/memory-graph-store.js';
import type { GraphStore } from '../../src/stores/graph/graph-store.js';
import type { Stage } from '../../src/ports/stage.js';
import { availableBackends, useBackend } from '../support/backends.js';
import { eventually } from '../support/eventually.js';
import { FaultySql } from '../support/faulty-sql.js';
import { readForEvidence } from '../support/runtimes.js';
import { request, useApiHarness } from './api-harness.js';

/**
 * Probes, metrics, the 503 of an unreachable PostgreSQL, and the admin routes (token,
 * status, stage changes, verification, outbox replay), over real HTTP on embedded PGlite.
 */

const TOKEN = 'admin-token-that-must-never-be-logged-7f3a';
const ADMIN_ROUTES: readonly [string, string][] = [
  ['GET', '/admin/status'],
  ['POST', '/admin/stage'],
  ['POST', '/admin/verify'],
  ['POST', '/admin/repair'],
  ['POST', '/admin/outbox/replay'],
  ['GET', '/admin/differences'],
];

describe('an error the API does not know', () => {
  it('is a 500 that says what failed, without a connection-string password or a token', async () => {
    const failing = {
      countProjects: () => Promise.reject(new Error(`cannot reach postgres://app:s3cret@db:5432/x (token ${TOKEN})`)),
    } as unknown as GraphStore;
    const app = buildApi({ graph: failing, tasks: new MemoryAgentTaskStore(), adminToken: TOKEN });
    const url = await app.listen({ port: 0, host: '127.0.0.1' });
    try {
      const answer = await request(url, 'GET', '/projects/count');
      expect(answer).toMatchObject({
        status: 500,
        body: { error: 'cannot reach postgres://app:***@db:5432/x (token ***)' },
      });
      expect(answer.text).not.toContain('s3cret');
      expect(answer.text).not.toContain(TOKEN);
    } finally {
      await app.close();
    }
  });

  it('serves without a runtime: /healthz and /readyz answer, /metrics and /admin are not there', async () => {
    const app = buildApi({ graph: new MemoryGraphStore(), tasks: new MemoryAgentTaskStore(), adminToken: TOKEN });
    const url = await app.listen({ port: 0, host: '127.0.0.1' });
    try {
      expect((await request(url, 'GET', '/healthz')).status).toBe(200);
      expect((await request(url, 'GET', '/readyz')).body).toEqual({ status: 'ready', failing: [], checks: {} });
      expect((await request(url, 'GET', '/metrics')).status).toBe(404);
      expect((await request(url, 'GET', '/admin/status', { token: TOKEN })).status).toBe(404);
    } finally {
      await app.close();
    }
  });
});

for (const factory of availableBackends(['pglite'])) {
  describe(`probes and admin routes on ${factory.name}`, () => {
    const backend = useBackend(factory);
    const api = useApiHarness(backend);

    /** A runtime whose PostgreSQL can be cut off (`faulty.down`). */
    const openFaulty = async (stage: Stage) => {
      const faulty = new FaultySql(backend.current.db!);
      const h = await api.open({ stage, db: faulty, adminToken: TOKEN });
      return { ...h, faulty };
    };

    /** A temporary folder for a runtime's flags file, removed after the test. */
    const tempDir = async () => {
      const dir = await mkdtemp(join(tmpdir(), 'dw-api-'));
      api.defer(() => rm(dir, { recursive: true, force: true }));
      return dir;
    };

    it('GET /healthz is 200 while the process runs, even with PostgreSQL down', async () => {
      const h = await openFaulty('postgres-primary');
      h.faulty.down = true;
      expect(await h.call('GET', '/healthz')).toMatchObject({ status: 200, body: { status: 'ok' } });
    });

    it('GET /metrics is the registry in Prometheus text, with dualwrite_operations_total', async () => {
      const h = await api.open();
      await h.call('PUT', '/projects/npm/react', { body: {} });
      const answer = await h.call('GET', '/metrics');
      expect(answer.status).toBe(200);
      expect(answer.headers.get('content-type')).toBe(h.rt.metrics.registry.contentType);
      expect(answer.text).toMatch(/^dualwrite_operations_total\{.*operation="upsertProject".*\} 1$/m);
    });

    it('GET /readyz is 200 in postgres-primary while PostgreSQL answers', async () => {
      const h = await openFaulty('postgres-primary');
      expect(await h.call('GET', '/readyz')).toMatchObject({
        status: 200,
        body: { status: 'ready', stage: 'postgres-primary', failing: [], checks: { postgres: 'ok', outbox: 'ok' } },
      });
    });

    it('GET /readyz is 503 naming postgres when PostgreSQL is down in postgres-primary', async () => {
      const h = await openFaulty('postgres-primary');
      h.faulty.down = true;
      const answer = await h.call('GET', '/readyz');
      expect(answer).toMatchObject({
        status: 503,
        body: {
          status: 'not ready',
          stage: 'postgres-primary',
          failing: ['postgres'],
          checks: { postgres: 'unreachable', outbox: 'ok' },
        },
      });
      expect(answer.text).not.toContain('ECONNREFUSED');
    });

    for (const stage of ['memory-only', 'dual-write', 'read-shift'] as const) {
      it(`GET /readyz is 200 in ${stage} with PostgreSQL down: memory serves, the mirror journals`, async () => {
        const h = await openFaulty(stage);
        h.faulty.down = true;
        expect(await h.call('GET', '/readyz')).toMatchObject({
          status: 200,
          body: { failing: [], checks: { postgres: `not needed in ${stage}`, outbox: 'ok' } },
        });
      });
    }

    it('answers 503 with Retry-After when PostgreSQL is down in postgres-primary, writing nothing', async () => {
      const h = await openFaulty('postgres-primary');
      expect((await h.call('PUT', '/projects/npm/react', { body: {} })).status).toBe(200);
      const before = await h.sides();
      h.faulty.down = true;
      for (const [method, path, body] of [
        ['GET', '/projects/npm/react', undefined],
        ['PUT', '/projects/npm/react', { description: 'new' }],
        ['POST', '/contributors', { name: 'Ada' }],
        ['POST', '/tasks', { direction: 'd', taskType: 'impl', model: 'm', command: 'c' }],
      ] as const) {
        const answer = await h.call(method, path, { body });
        expect(
          { status: answer.status, retryAfter: answer.headers.get('retry-after'), body: answer.body },
          `${method} ${path}`,
        ).toEqual({
          status: 503,
          retryAfter: '1',
          body: { error: 'postgres is unavailable; retry later' },
        });
      }
      h.faulty.down = false;
      expect(await h.sides()).toEqual(before);
    });

    it('refuses every admin route with 401 when no admin token is configured', async () => {
      const h = await api.open();
      const before = await h.sides();
      for (const [method, path] of ADMIN_ROUTES) {
        const answer = await h.call(method, path, { token: TOKEN });
        expect({ status: answer.status, error: answer.body.error }, `${method} ${path}`).toEqual({
          status: 401,
          error: 'admin routes are disabled: no admin token is configured',
        });
      }
      expect(await h.sides()).toEqual(before);
    });

    it('refuses admin routes with 401 without the right bearer token, before looking at the body', async () => {
      const h = await api.open({ adminToken: TOKEN });
      const before = await h.sides();
      const wrongHeaders: Record<string, string>[] = [
        {},
        { authorization: `Bearer ${TOKEN}x` },
        { authorization: `Bearer ${TOKEN.slice(0, -1)}` },
        { authorization: `Basic ${TOKEN}` },
        { authorization: TOKEN },
      ];
      for (const [method, path] of ADMIN_ROUTES) {
        for (const headers of wrongHeaders) {
          const answer = await h.call(method, path, { headers, body: method === 'POST' ? { bogus: true } : undefined });
          expect(answer.status, `${method} ${path} ${JSON.stringify(headers)}`).toBe(401);
          expect(answer.headers.get('www-authenticate')).toBe('Bearer realm="dualwrite-admin"');
        }
      }
      expect(await h.sides()).toEqual(before);
      expect(h.rt.stage.current.stage).toBe('dual-write');
    });

    it('GET /admin/status with the token: stage, flags, mirror, outbox, last verification, pool', async () => {
      const h = await api.open({ adminToken: TOKEN });
      const answer = await h.call('GET', '/admin/status', { token: TOKEN });
      expect(answer.status).toBe(200);
      expect(answer.body).toEqual({
        stage: {
          inForce: 'dual-write',
          readPercent: 0,
          epoch: expect.any(Number),
          refused: null,
          lastPauseMs: expect.anything(),
        },
        flags: { stage: 'dual-write', readPercent: 0, source: 'manual', refused: null },
        mirror: { mode: 'sync', queueDepth: 0 },
        outbox: { depth: 0, oldestAgeSeconds: 0 },
        lastVerification: null,
        rollback: { safe: true, detail: 'memory is authoritative in dual-write: a rollback loses nothing' },
        convergence: {
          converged: false,
          detail: 'the outbox is empty, but no verification has compared the sides yet',
        },
        pool: h.rt.db.poolStats(),
      });
    });

    it('POST /admin/verify runs the verifier on the live process: consistent after writes, then GET /admin/differences', async () => {
      const h = await api.open({ adminToken: TOKEN });
      expect(await h.call('GET', '/admin/differences', { token: TOKEN })).toMatchObject({ status: 404 });
      await h.call('PUT', '/projects/npm/react', { body: { description: 'UI' } });
      const ada = await h.call('POST', '/contributors', { body: { name: 'Ada' } });
      await h.call('POST', '/tasks', { body: { direction: 'd', taskType: 'impl', model: 'm', command: 'c' } });

      const verified = await h.call('POST', '/admin/verify', { token: TOKEN });
      expect(verified).toMatchObject({ status: 200, body: { consistent: true, differences: [] } });
      expect(
        verified.body.entities.find((entity: { entity: string }) => entity.entity === 'contributors'),
      ).toMatchObject({ rowsMemory: 1, rowsPostgres: 1 });
      expect((await h.call('GET', '/admin/differences', { token: TOKEN })).body).toMatchObject({
        consistent: true,
        persistentDifferences: 0,
        differences: [],
      });

      // A row changed behind the mirror's back is a persistent difference.
      await h.rt.postgres.graph.putRecord('contributors', { ...ada.body, name: 'Not Ada' });
      expect((await h.call('POST', '/admin/verify', { token: TOKEN })).body).toMatchObject({ consistent: false });
      const differences = await h.call('GET', '/admin/differences', { token: TOKEN });
      expect(differences.body).toMatchObject({
        consistent: false,
        persistentDifferences: 1,
        differences: [{ entity: 'contributors', kind: 'fields_differ', fields: ['name'] }],
      });
      expect((await h.call('GET', '/admin/status', { token: TOKEN })).body.lastVerification).toMatchObject({
        consistent: false,
        persistentDifferences: 1,
      });
    });

    it('POST /admin/verify says why it was skipped in a stage that writes one side', async () => {
      const h = await api.open({ stage: 'memory-only', adminToken: TOKEN });
      expect(await h.call('POST', '/admin/verify', { token: TOKEN })).toMatchObject({
        status: 409,
        body: {
          error: 'verification skipped: only one side is written in memory-only, so there is nothing to compare',
        },
      });
    });

    it('POST /admin/repair verifies the live process and repairs what differs, from the authoritative side', async () => {
      const h = await api.open({ adminToken: TOKEN });
      const ada = await h.call('POST', '/contributors', { body: { name: 'Ada' } });
      await h.call('PUT', '/projects/npm/react', { body: { description: 'UI' } });
      await h.rt.postgres.graph.putRecord('contributors', { ...ada.body, name: 'Not Ada' });
      await h.rt.postgres.graph.deleteRecord('projects', ['npm', 'react']);

      const repaired = await h.call('POST', '/admin/repair', { token: TOKEN, body: { reason: 'drift found' } });
      // The report is what the run found; the repairs say what it did about it.
      expect(repaired).toMatchObject({
        status: 200,
        body: {
          consistent: false,
          repairs: { repaired: 2, skipped_newer: 0, already_equal: 0, withheld_delete: 0 },
          runId: expect.any(String),
        },
      });
      expect(
        repaired.body.differences.map((d: { entity: string; kind: string }) => `${d.entity} ${d.kind}`).sort(),
      ).toEqual(['contributors fields_differ', 'projects missing_in_postgres']);
      const { memory, postgres } = await h.sides();
      expect(postgres).toEqual(memory);
      expect(
        (await h.call('POST', '/admin/repair', { token: TOKEN, body: { reason: 'drift found' } })).body,
      ).toMatchObject({
        consistent: true,
        repairs: { repaired: 0, skipped_newer: 0, already_equal: 0, withheld_delete: 0 },
        runId: null,
      });
    });

    it('POST /admin/repair needs a reason, naming the field, and changes nothing without one', async () => {
      const h = await api.open({ adminToken: TOKEN });
      await h.call('PUT', '/projects/npm/react', { body: { description: 'UI' } });
      await h.rt.postgres.graph.deleteRecord('projects', ['npm', 'react']);
      expect(await h.call('POST', '/admin/repair', { token: TOKEN })).toMatchObject({
        status: 400,
        body: { field: 'body' },
      });
      expect(await h.call('POST', '/admin/repair', { token: TOKEN, body: {} })).toMatchObject({
        status: 400,
        body: { field: 'reason' },
      });
      expect(await h.rt.postgres.graph.getProject({ ecosystem: 'npm', name: 'react' })).toBeNull();
    });

    it('POST /admin/repair deletes only the confirmed number of records, and /admin/repair/undo puts them back', async () => {
      const h = await api.open({ adminToken: TOKEN });
      for (const name of ['a', 'b', 'c']) await h.call('PUT', `/projects/npm/${name}`, { body: { description: name } });
      // Three records only PostgreSQL holds (memory, the authoritative side, deleted them without the mirror knowing).
      for (const name of ['a', 'b', 'c']) await h.rt.memory.graph.deleteRecord('projects', ['npm', name]);

      const withheld = await h.call('POST', '/admin/repair', { token: TOKEN, body: { reason: 'drift' } });
      expect(withheld.body.repairs).toMatchObject({ repaired: 0, withheld_delete: 3 });
      expect(await h.rt.postgres.graph.countProjects()).toBe(3);
      const confirmed = await h.call('POST', '/admin/repair', {
        token: TOKEN,
        body: { reason: 'memory is right', allowDeletes: 3 },
      });
      expect(confirmed.body.repairs).toMatchObject({ repaired: 3, withheld_delete: 0 });
      expect(await h.rt.postgres.graph.countProjects()).toBe(0);

      const undone = await h.call('POST', '/admin/repair/undo', {
        token: TOKEN,
        body: { runId: confirmed.body.runId, reason: 'memory was wrong after all' },
      });
      expect(undone).toMatchObject({ status: 200, body: { undone: 3, skippedNewer: 0 } });
      expect((await h.rt.postgres.graph.getProject({ ecosystem: 'npm', name: 'b' }))?.description).toBe('b');
      const actions = (await h.rt.audit.list({ limit: 10 })).map((event) => [event.action, event.reason]);
      expect(actions).toContainEqual(['repair.undo', 'memory was wrong after all']);
      expect(actions).toContainEqual(['repair', 'memory is right']);
      expect(
        await h.call('POST', '/admin/repair/undo', {
          token: TOKEN,
          body: { runId: '00000000-0000-4000-8000-000000000000', reason: 'x' },
        }),
      ).toMatchObject({ status: 404 });
    });

    it('POST /admin/resync {to: memory} rebuilds memory in postgres-primary after postgres-only ran, and rolling back is allowed again', async () => {
      const dir = await tempDir();
      const h = await api.open({
        adminToken: TOKEN,
        env: {
          DUAL_WRITE_MODE: 'postgres-only',
          DUALWRITE_FLAGS_FILE: join(dir, 'flags.json'),
          DUALWRITE_LAST_FLAGS_PATH: join(dir, 'last.json'),
        },
      });
      await h.call('PUT', '/projects/npm/react', { body: { description: 'written in postgres-only' } });
      const stage = (body: object) => h.call('POST', '/admin/stage', { token: TOKEN, body });
      expect((await stage({ stage: 'postgres-primary', reason: 'on the way back' })).status).toBe(200);
      expect((await h.call('GET', '/admin/status', { token: TOKEN })).body.rollback).toMatchObject({
        safe: false,
        detail: expect.stringContaining('dualwrite resync --to memory'),
      });
      expect(await stage({ stage: 'dual-write', reason: 'too early' })).toMatchObject({
        status: 409,
        body: { error: expect.stringMatching(/^REFUSED: .*resync memory first/) },
      });
      expect(
        await h.call('POST', '/admin/resync', {
          token: TOKEN,
          body: { reason: 'before the rollback', to: 'postgres' },
        }),
      ).toMatchObject({ status: 409 });

      const resynced = await h.call('POST', '/admin/resync', {
        token: TOKEN,
        body: { reason: 'before the rollback', to: 'memory' },
      });
      expect(resynced).toMatchObject({ status: 200, body: { to: 'memory', verify: { consistent: true } } });
      expect((await h.rt.memory.graph.getProject({ ecosystem: 'npm', name: 'react' }))?.description).toBe(
        'written in postgres-only',
      );
      expect((await stage({ stage: 'dual-write', reason: 'roll back' })).status).toBe(200);
      expect(h.rt.stage.current.stage).toBe('dual-write');
    });

    it('POST /admin/stage with allowUnavailable goes back to memory through an outage; toward PostgreSQL it is 400 naming the field', async () => {
      const dir = await tempDir();
      const faulty = new FaultySql(backend.current.db!);
      const h = await api.open({
        db: faulty,
        adminToken: TOKEN,
        env: { DUALWRITE_FLAGS_FILE: join(dir, 'flags.json'), DUAL_WRITE_MODE: 'dual-write' },
      });
      expect(
        await h.call('POST', '/admin/stage', {
          token: TOKEN,
          body: { stage: 'postgres-primary', reason: 'x', force: true, allowUnavailable: true },
        }),
      ).toMatchObject({
        status: 400,
        body: { field: 'allowUnavailable' },
      });
      expect(h.rt.stage.current.stage).toBe('dual-write');
      expect(
        (
          await h.call('POST', '/admin/stage', {
            token: TOKEN,
            body: { stage: 'postgres-primary', reason: 'cutover', force: true },
          })
        ).status,
      ).toBe(200);
      await h.call('PUT', '/projects/npm/react', { body: { description: 'acknowledged by PostgreSQL' } });
      // Its copy toward memory is left in the outbox, and PostgreSQL, which it is read from, goes away.
      h.rt.mirror.breakerFor('memory').failed();
      await h.rt.outbox.append(
        {
          store: 'graph',
          target: 'memory',
          method: 'upsertProject',
          key: 'project:npm/react',
          records: [{ entity: 'projects', key: ['npm', 'react'] }],
          epoch: h.rt.stage.state.epoch,
        },
        'memory circuit open',
      );
      await h.rt.mirror.loadJournaled();
      faulty.down = true;
      await h.rt.replayer.stop();

      expect(
        (
          await h.call('POST', '/admin/stage', {
            token: TOKEN,
            body: { stage: 'dual-write', reason: 'restore writes' },
          })
        ).status,
      ).toBe(409);
      expect(
        (
          await h.call('POST', '/admin/stage', {
            token: TOKEN,
            body: { stage: 'dual-write', reason: 'restore writes', allowUnavailable: true },
          })
        ).status,
      ).toBe(200);
      expect(await h.call('PUT', '/projects/npm/vue', { body: { description: 'served from memory' } })).toMatchObject({
        status: 200,
      });
      const behind = await h.call('GET', '/projects/npm/react');
      expect(behind).toMatchObject({ status: 503, body: { error: 'postgres is unavailable; retry later' } });
      expect(behind.headers.get('retry-after')).toBe('1');
    });

    it('POST /admin/repair says why it was skipped in a stage that writes one side', async () => {
      const h = await api.open({ stage: 'postgres-only', adminToken: TOKEN });
      expect(await h.call('POST', '/admin/repair', { token: TOKEN, body: { reason: 'drift found' } })).toMatchObject({
        status: 409,
        body: { error: 'repair skipped: only one side is written in postgres-only, so there is nothing to compare' },
      });
    });

    it('POST /admin/outbox/replay replays what PostgreSQL missed while it was down', async () => {
      const h = await openFaulty('dual-write');
      await h.rt.replayer.stop();
      h.faulty.down = true;
      expect((await h.call('PUT', '/projects/npm/react', { body: {} })).status).toBe(200);
      expect(h.rt.outbox.stats().depth).toBe(1);
      expect((await h.call('POST', '/admin/outbox/replay', { token: TOKEN })).body).toMatchObject({
        replayed: 0,
        failure: expect.any(String),
      });
      h.faulty.down = false;
      const replayed = await h.call('POST', '/admin/outbox/replay', { token: TOKEN });
      expect(replayed).toMatchObject({ status: 200, body: { replayed: 1, deadLettered: 0, outbox: { depth: 0 } } });
      const { memory, postgres } = await h.sides();
      expect(postgres).toEqual(memory);
    });

    it('POST /admin/stage moves the stage through runtime.setFlags, records who and why, and rolls back', async () => {
      const dir = await tempDir();
      const flagsFile = join(dir, 'flags.json');
      const h = await api.open({
        adminToken: TOKEN,
        env: { DUALWRITE_FLAGS_FILE: flagsFile, DUAL_WRITE_MODE: 'dual-write' },
        shadow: { sampleRate: 1 },
      });
      // The evidence gate wants PostgreSQL calls, shadow comparisons and a recent clean verification before PostgreSQL becomes authoritative.
      await readForEvidence(h.rt);
      expect(
        (await h.call('POST', '/admin/verify', { token: TOKEN, body: { reason: 'before the cutover' } })).body,
      ).toMatchObject({ consistent: true });

      const cutover = await h.call('POST', '/admin/stage', {
        token: TOKEN,
        body: { stage: 'postgres-primary', reason: 'cutover ticket 42' },
      });
      expect(cutover).toMatchObject({
        status: 200,
        body: { requested: { stage: 'postgres-primary', source: 'file' }, inForce: { stage: 'postgres-primary' } },
      });
      expect(h.rt.stage.current.stage).toBe('postgres-primary');
      expect(JSON.parse(await readFile(flagsFile, 'utf8'))).toMatchObject({
        stage: 'postgres-primary',
        reason: 'cutover ticket 42',
        principal: 'admin-token',
      });
      const react = await h.call('PUT', '/projects/npm/react', { body: {} });
      expect(await h.rt.postgres.graph.getProject({ ecosystem: 'npm', name: 'react' })).toEqual(react.body);

      const shifted = await h.call('POST', '/admin/stage', {
        token: TOKEN,
        body: { stage: 'read-shift', percent: 25, reason: 'rollback to read-shift' },
      });
      expect(shifted).toMatchObject({ status: 200, body: { inForce: { stage: 'read-shift', readPercent: 25 } } });
      expect((await h.call('GET', '/admin/status', { token: TOKEN })).body).toMatchObject({
        stage: { inForce: 'read-shift', readPercent: 25 },
        flags: { source: 'file' },
      });
    });

    it('POST /admin/stage is 409 naming the failed checks when the evidence does not support an advance; force overrides; GET /admin/gate and /admin/audit show both', async () => {
      const dir = await tempDir();
      const h = await api.open({
        adminToken: TOKEN,
        env: { DUALWRITE_FLAGS_FILE: join(dir, 'flags.json'), DUAL_WRITE_MODE: 'dual-write' },
      });
      const gate = await h.call('GET', '/admin/gate?stage=read-shift&percent=10', { token: TOKEN });
      expect(gate).toMatchObject({ status: 200, body: { advance: true, allowed: false } });
      expect(gate.body.checks.find((check: { name: string }) => check.name === 'verification')).toMatchObject({
        ok: false,
      });

      const refused = await h.refused(
        'POST',
        '/admin/stage',
        { token: TOKEN, body: { stage: 'read-shift', percent: 10, reason: 'canary' } },
        { status: 409 },
      );
      expect(refused.body.error).toMatch(
        /^refusing to advance from dual-write to read-shift 10%: verification: no verification has completed/,
      );
      expect(refused.body.checks.map((check: { name: string }) => check.name)).toEqual([
        'verification',
        'outbox',
        'shadow-mismatches',
        'postgres-errors',
        'postgres-latency',
      ]);
      expect(h.rt.stage.current.stage).toBe('dual-write');

      expect(
        await h.call('POST', '/admin/stage', {
          token: TOKEN,
          body: { stage: 'read-shift', percent: 10, reason: 'drill', force: true },
        }),
      ).toMatchObject({ status: 200, body: { inForce: { stage: 'read-shift', readPercent: 10 } } });
      const audit = await eventually(async () => {
        // Other tests of this file wrote to the same (append-only) trail: the drill's events are this test's.
        const drill: { action: string; reason: string; principal: { username: string }; requestId?: string }[] = (
          await h.call('GET', '/admin/audit?resourceType=stage', { token: TOKEN })
        ).body.events.filter((event: { reason: string }) => event.reason === 'drill');
        expect(drill.map((event) => [event.action, event.reason, event.principal.username])).toEqual([
          ['stage.change', 'drill', 'admin-token'],
          ['stage.forced', 'drill', 'admin-token'],
        ]);
        return drill;
      });
      expect(audit[1]!.requestId).toEqual(expect.any(String));
    });

    it('POST /admin/stage refuses a bad body with 400 naming the field, changing nothing', async () => {
      const dir = await tempDir();
      const flagsFile = join(dir, 'flags.json');
      const h = await api.open({
        adminToken: TOKEN,
        env: { DUALWRITE_FLAGS_FILE: flagsFile, DUAL_WRITE_MODE: 'dual-write' },
      });
      const refusals: [unknown, string][] = [
        [{ stage: 'postgres-primary' }, 'reason'],
        [{ stage: 'postgres-primary', reason: '   ' }, 'reason'],
        [{ stage: 'postgres-primary', reason: 'r', percent: 101 }, 'percent'],
        [{ stage: 'sideways', reason: 'r' }, 'stage'],
        [{ reason: 'r' }, 'stage'],
        [{ stage: 'postgres-primary', reason: 'r', by: 'me' }, 'by'],
      ];
      for (const [body, field] of refusals) {
        await h.refused('POST', '/admin/stage', { token: TOKEN, body }, { status: 400, field });
        expect(h.rt.stage.current.stage).toBe('dual-write');
        await expect(readFile(flagsFile)).rejects.toThrow(/ENOENT/);
      }
    });

    it('POST /admin/stage is 409 when the flags are not the runtime’s to set (the application passed its own)', async () => {
      const h = await api.open({ adminToken: TOKEN });
      const answer = await h.refused(
        'POST',
        '/admin/stage',
        { token: TOKEN, body: { stage: 'postgres-primary', reason: 'cutover' } },
        { status: 409 },
      );
      expect(answer.body.error).toMatch(/openDualWrite/);
      expect(h.rt.stage.current.stage).toBe('dual-write');
    });

    it('POST /admin/stage is 409 with the reason when the transition is refused (PostgreSQL down, writes journaled), and the refusal is final', async () => {
      const dir = await tempDir();
      const faulty = new FaultySql(backend.current.db!);
      const flagsFile = join(dir, 'flags.json');
      const h = await api.open({
        db: faulty,
        adminToken: TOKEN,
        env: { DUALWRITE_FLAGS_FILE: flagsFile, DUAL_WRITE_MODE: 'dual-write' },
        transitions: { retryMs: 10 },
      });
      await h.rt.replayer.stop();
      faulty.down = true;
      await h.call('PUT', '/projects/npm/react', { body: {} });
      // Forced past the evidence gate (PostgreSQL is failing): the barrier still refuses.
      const answer = await h.call('POST', '/admin/stage', {
        token: TOKEN,
        body: { stage: 'postgres-primary', reason: 'cutover', force: true },
      });
      expect(answer).toMatchObject({
        status: 409,
        body: {
          error: expect.stringMatching(
            /^REFUSED: staying in dual-write, not moving to postgres-primary: 1 journaled writes for postgres cannot be replayed yet/,
          ),
        },
      });
      // PostgreSQL answers again: the refused change does not take effect by itself.
      faulty.down = false;
      await h.rt.replayer.replayOnce();
      expect(h.rt.outbox.stats().depth).toBe(0);
      // Time passing is the point: five of the gate's 10 ms retries go by without taking it up.
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect((await h.call('GET', '/admin/status', { token: TOKEN })).body.stage).toMatchObject({
        inForce: 'dual-write',
        refused: null,
      });
      expect(JSON.parse(await readFile(flagsFile, 'utf8'))).toMatchObject({ stage: 'dual-write' });
    });

    it('never logs the admin token, and redacts an authorization header wherever it is logged', async () => {
      const lines: string[] = [];
      const logger = pino({ level: 'trace' }, { write: (line: string) => void lines.push(line) });
      const dir = await tempDir();
      const h = await api.open({
        adminToken: TOKEN,
        logger,
        env: { DUALWRITE_FLAGS_FILE: join(dir, 'flags.json'), DUAL_WRITE_MODE: 'dual-write' },
      });
      await h.call('GET', '/admin/status', { token: TOKEN });
      await h.call('GET', '/admin/status', { token: `${TOKEN}-wrong` });
      await h.call('POST', '/admin/stage', { token: TOKEN, body: { stage: 'postgres-primary', reason: 'cutover' } });
      await h.call('POST', '/admin/stage', { token: TOKEN, body: { stage: 'nowhere' } });
      await h.call('POST', '/admin/verify', { token: TOKEN });
      h.app.log.info(
        { request: { headers: { authorization: `Bearer ${TOKEN}` } }, headers: { authorization: `Bearer ${TOKEN}` } },
        'headers logged by a careless handler',
      );

      expect(lines.length).toBeGreaterThan(10);
      expect(lines.some((line) => line.includes('admin: stage change requested'))).toBe(true);
      const careless = JSON.parse(lines.find((line) => line.includes('careless'))!);
      expect(careless).toMatchObject({
        request: { headers: { authorization: '[redacted]' } },
        headers: { authorization: '[redacted]' },
      });
      expect(lines.filter((line) => line.includes(TOKEN))).toEqual([]);
    });
  });
}
