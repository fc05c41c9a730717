// Against a REAL unleash-server (tools/unleash-server): the adapter follows stage and read-percentage
// changes made through the admin API, and keeps its last known flags when the server is out of reach.
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FlagState, type EffectiveFlags } from '../../flags/flag-state.js';
import type { MigrationFlags } from '../../flags/migration-flags.js';
import { READ_TOGGLE, STAGE_TOGGLE, UnleashFlagSource } from '../../flags/unleash-flags.js';
import { FileOutbox } from '../../src/dualwrite/file-outbox.js';
import { routesToPostgres } from '../../src/dualwrite/routing.js';
import { openDualWrite } from '../../src/runtime/open-dual-write.js';
import type { DualWriteRuntime } from '../../src/runtime/dual-write-runtime.js';
import type { Stage } from '../../src/ports/stage.js';
import { openPglite } from '../support/pglite.js';
import { UnleashAdmin, waitForHealth } from '../support/unleash-admin.js';
import { canRun } from '../support/service-available.js';
import { eventually } from '../support/eventually.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
/** UNLEASH_URL points at an already running server; otherwise tools/unleash-server/ensure.sh starts one. */
const API_URL = process.env.UNLEASH_URL || 'http://127.0.0.1:4242/api/';
const SERVER_URL = API_URL.replace(/\/api\/?$/, '');
const CLIENT_TOKEN = process.env.UNLEASH_TOKEN || '*:development.dualwrite-client-token';
const ADMIN_TOKEN = process.env.UNLEASH_ADMIN_TOKEN || '*:*.dualwrite-admin-token';
const GROUP = READ_TOGGLE;
/** How long the adapter may take to follow a change made on the server. */
const FOLLOW_TIMEOUT_MS = 10_000;

/** Starts the server unless UNLEASH_URL names one; returns why it is unavailable, if it is. */
async function ensureServer(): Promise<string | undefined> {
  if (!process.env.UNLEASH_URL) {
    try {
      await promisify(execFile)('bash', ['tools/unleash-server/ensure.sh'], { cwd: ROOT, timeout: 120_000 });
    } catch (error) {
      const { stderr, message } = error as { stderr?: string; message: string };
      return `tools/unleash-server/ensure.sh failed: ${(stderr || message).trim()}`;
    }
  }
  try {
    await waitForHealth(`${SERVER_URL}/health`, 10_000);
  } catch (error) {
    return `unleash-server at ${SERVER_URL} is not healthy: ${(error as Error).message}`;
  }
  return undefined;
}

/** A TCP relay to the server that can be cut and restored, to make the server unreachable for one client only. */
async function relay(targetPort: number): Promise<{ url: string; cut(): Promise<void>; restore(): Promise<void> }> {
  const sockets = new Set<Socket>();
  let server: Server;
  let port = 0;
  const listen = async () => {
    server = createServer((client) => {
      const upstream = connect(targetPort, '127.0.0.1');
      for (const socket of [client, upstream]) {
        sockets.add(socket);
        socket.on('error', () => {});
        socket.on('close', () => {
          sockets.delete(socket);
          client.destroy();
          upstream.destroy();
        });
      }
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((resolve, reject) => server.once('error', reject).listen(port, '127.0.0.1', resolve));
    port = (server.address() as { port: number }).port;
  };
  await listen();
  return {
    url: `http://127.0.0.1:${port}/api/`,
    async cut() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const socket of sockets) socket.destroy();
      await closed;
    },
    restore: listen,
  };
}

/** The flags a source produced, as FlagState exposes them minus the source name. */
const sourceFlags = ({ stage, readPercent, rolloutGroup }: MigrationFlags): MigrationFlags => ({
  stage,
  readPercent,
  rolloutGroup,
});

describe('UnleashFlagSource against a real unleash-server', () => {
  let unavailable: string | undefined;
  let admin: UnleashAdmin;
  let dir: string;
  let source: UnleashFlagSource;
  let flags: FlagState;
  let runtime: DualWriteRuntime | undefined;
  const sourceErrors: unknown[] = [];
  const propagation: { change: string; ms: number }[] = [];
  const extraSources: UnleashFlagSource[] = [];

  /** Sets the stage variant and the read rollout on the server, and waits for the runtime's flags to follow. */
  async function moveTo(
    change: string,
    variant: Stage,
    rollout: number,
    expected: Partial<EffectiveFlags>,
  ): Promise<void> {
    const started = Date.now();
    await admin.setVariants(STAGE_TOGGLE, [variant]);
    await admin.setRolloutPercentage(READ_TOGGLE, rollout);
    await eventually(() => expect(flags.current, `the flags after ${change}`).toMatchObject(expected), {
      timeoutMs: FOLLOW_TIMEOUT_MS,
    });
    await runtime?.stage.settled();
    const ms = Date.now() - started;
    propagation.push({ change, ms });
    console.info(`unleash propagation ${change}: ${ms} ms`);
  }

  /** memory-only ran: PostgreSQL-reading stages wait until PostgreSQL is resynced and verified. */
  const resyncPostgres = async () => {
    expect((await runtime!.resyncPostgres()).verify.consistent).toBe(true);
    expect(flags.stale.postgres).toBe(false);
  };
  const contributor = (name: string) => runtime!.graph.createContributor({ name });
  /** Overwrites a contributor's name in PostgreSQL only, so a read shows which side answered. */
  const plantInPostgres = async (id: string, name: string) => {
    const record = await runtime!.postgres.graph.getContributor(id);
    await runtime!.postgres.graph.putRecord('contributors', { ...record!, name });
  };

  beforeAll(async () => {
    unavailable = await ensureServer();
    if (!canRun('the Unleash integration tests', unavailable)) return;
    admin = new UnleashAdmin({ url: SERVER_URL, adminToken: ADMIN_TOKEN });
    await admin.ensureContextField('routingKey', {
      stickiness: true,
      description: 'Key that routes an entity to a store',
    });
    await admin.ensureFeature(STAGE_TOGGLE, { type: 'operational' });
    await admin.ensureFeature(READ_TOGGLE, { type: 'release' });
    await admin.setFlexibleRollout(STAGE_TOGGLE, {
      rollout: 100,
      stickiness: 'default',
      groupId: STAGE_TOGGLE,
      variants: ['memory-only'],
    });
    await admin.setFlexibleRollout(READ_TOGGLE, { rollout: 0, stickiness: 'routingKey', groupId: GROUP });
    await admin.enable(STAGE_TOGGLE);
    await admin.enable(READ_TOGGLE);

    dir = await mkdtemp(join(tmpdir(), 'dw-unleash-'));
    const db = await openPglite();
    source = new UnleashFlagSource({
      url: API_URL,
      token: CLIENT_TOKEN,
      refreshIntervalMs: 1000,
      onError: (_name, error) => void sourceErrors.push(error),
    });
    flags = new FlagState([source]);
    runtime = await openDualWrite({
      db,
      flags,
      outbox: await FileOutbox.open({ path: join(dir, 'outbox.jsonl') }),
      env: {},
    });
    await eventually(
      () =>
        expect(flags.current.source, `flags from Unleash; errors: ${sourceErrors.map(String).join('; ')}`).toBe(
          'unleash',
        ),
      { timeoutMs: FOLLOW_TIMEOUT_MS },
    );
  }, 180_000);

  afterAll(async () => {
    for (const extra of extraSources) await extra.close();
    // Leave the shared server at the safe starting point.
    if (!unavailable && admin) {
      await admin.setVariants(STAGE_TOGGLE, ['memory-only']);
      await admin.setRolloutPercentage(READ_TOGGLE, 0);
    }
    if (runtime) {
      await runtime.close();
      await runtime.db.close();
    }
    await flags?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
    if (propagation.length)
      console.info(
        `unleash propagation times (ms): ${propagation.map(({ change, ms }) => `${change}: ${ms}`).join(', ')}`,
      );
  });

  it('starts from the server in memory-only: writes stay in memory', async ({ skip }) => {
    skip(unavailable !== undefined, unavailable);
    await moveTo('reset to memory-only 0%', 'memory-only', 0, { stage: 'memory-only', readPercent: 0 });
    expect(flags.current).toEqual({ stage: 'memory-only', readPercent: 0, rolloutGroup: GROUP, source: 'unleash' });
    const c = await contributor('memory only');
    expect(await runtime!.memory.graph.getContributor(c.id)).toEqual(c);
    expect(await runtime!.postgres.graph.getContributor(c.id)).toBeNull();
  });

  it('follows memory-only -> dual-write: writes reach PostgreSQL, reads stay in memory', async ({ skip }) => {
    skip(unavailable !== undefined, unavailable);
    await moveTo('memory-only -> dual-write', 'dual-write', 0, { stage: 'dual-write', readPercent: 0 });
    const c = await contributor('mirrored');
    expect(await runtime!.postgres.graph.getContributor(c.id)).toEqual(c);
    await plantInPostgres(c.id, 'only in PostgreSQL');
    expect((await runtime!.graph.getContributor(c.id))!.name).toBe('mirrored');
  });

  it('follows dual-write -> read-shift 50%: exactly the keys Unleash enables read from PostgreSQL', async ({
    skip,
  }) => {
    skip(unavailable !== undefined, unavailable);
    expect(flags.stale.postgres).toBe(true);
    await resyncPostgres();
    await moveTo('dual-write -> read-shift 50%', 'read-shift', 50, { stage: 'read-shift', readPercent: 50 });
    expect(flags.current.rolloutGroup).toBe(GROUP);
    const sides: { memory: number; postgres: number } = { memory: 0, postgres: 0 };
    for (let i = 0; i < 40; i++) {
      const c = await contributor(`memory ${i}`);
      expect(await runtime!.postgres.graph.getContributor(c.id)).toEqual(c);
      await plantInPostgres(c.id, `postgres ${i}`);
      const key = `contributor:${c.id}`;
      const unleashSaysPostgres = source.client.isEnabled(READ_TOGGLE, { properties: { routingKey: key } });
      expect(routesToPostgres(GROUP, key, 50)).toBe(unleashSaysPostgres);
      const side = unleashSaysPostgres ? 'postgres' : 'memory';
      expect((await runtime!.graph.getContributor(c.id))!.name).toBe(`${side} ${i}`);
      sides[side]++;
    }
    // 40 keys at 50%: both sides get some (all on one side has probability 2^-39).
    expect(sides.memory).toBeGreaterThan(0);
    expect(sides.postgres).toBeGreaterThan(0);
  });

  it('follows read-shift 50% -> 100%: a value planted only in PostgreSQL is read through runtime.graph', async ({
    skip,
  }) => {
    skip(unavailable !== undefined, unavailable);
    await moveTo('read-shift 50% -> 100%', 'read-shift', 100, { stage: 'read-shift', readPercent: 100 });
    const c = await contributor('in memory');
    await plantInPostgres(c.id, 'only in PostgreSQL');
    expect((await runtime!.graph.getContributor(c.id))!.name).toBe('only in PostgreSQL');
    expect((await runtime!.graph.listContributors(500)).find(({ id }) => id === c.id)!.name).toBe('only in PostgreSQL');
  });

  it('rolls back read-shift 100% -> 0%: reads come from memory again, writes are still mirrored', async ({ skip }) => {
    skip(unavailable !== undefined, unavailable);
    await moveTo('precondition read-shift 100%', 'read-shift', 100, { stage: 'read-shift', readPercent: 100 });
    const c = await contributor('in memory');
    await plantInPostgres(c.id, 'only in PostgreSQL');
    expect((await runtime!.graph.getContributor(c.id))!.name).toBe('only in PostgreSQL');
    await moveTo('read-shift 100% -> 0%', 'read-shift', 0, { stage: 'read-shift', readPercent: 0 });
    expect((await runtime!.graph.getContributor(c.id))!.name).toBe('in memory');
    const d = await contributor('still mirrored');
    expect(await runtime!.postgres.graph.getContributor(d.id)).toEqual(d);
  });

  it('rolls back to memory-only: writes are no longer mirrored and reads come from memory', async ({ skip }) => {
    skip(unavailable !== undefined, unavailable);
    await moveTo('read-shift 0% -> memory-only', 'memory-only', 0, { stage: 'memory-only', readPercent: 0 });
    expect(flags.current.refused).toBeUndefined();
    const c = await contributor('not mirrored');
    expect(await runtime!.memory.graph.getContributor(c.id)).toEqual(c);
    expect(await runtime!.postgres.graph.getContributor(c.id)).toBeNull();
    expect((await runtime!.graph.listContributors(500)).map(({ id }) => id)).toContain(c.id);
  });

  it('keeps the bootstrapped flags in a source pointed at a port nothing listens on', async ({ skip }) => {
    skip(unavailable !== undefined, unavailable);
    await moveTo('precondition dual-write', 'dual-write', 0, { stage: 'dual-write', readPercent: 0 });
    await resyncPostgres();
    // Bootstrap from what the server serves now, as a deployment would ship it.
    const response = await fetch(`${API_URL}client/features`, { headers: { Authorization: CLIENT_TOKEN } });
    expect(response.status).toBe(200);
    const bootstrapFile = join(dir, 'bootstrap.json');
    await writeFile(bootstrapFile, await response.text());
    const errors: unknown[] = [];
    // unleash-client retries a refused connection twice, 1 s apart with `timeout: 1000`.
    const cutOff = new UnleashFlagSource({
      url: 'http://127.0.0.1:1/api/',
      bootstrapFile,
      refreshIntervalMs: 1000,
      onError: (_name, error) => void errors.push(error),
      client: { timeout: 1000 },
    });
    extraSources.push(cutOff);
    await cutOff.ready();
    expect(cutOff.current()).toEqual(sourceFlags(flags.current));
    await moveTo('dual-write -> read-shift 10% (cut-off source must not follow)', 'read-shift', 10, {
      stage: 'read-shift',
      readPercent: 10,
    });
    await eventually(() => expect(errors, 'connection errors reported').not.toHaveLength(0), { timeoutMs: 15_000 });
    expect(errors[0]).toMatchObject({ code: 'ECONNREFUSED' });
    expect(cutOff.current()).toEqual({ stage: 'dual-write', readPercent: 0, rolloutGroup: GROUP });
    // Closed right after a failed poll, before the next one starts.
    await cutOff.close();
    extraSources.splice(extraSources.indexOf(cutOff), 1);
  });

  it('keeps its last known flags while the server is unreachable and follows again once it is back', async ({
    skip,
  }) => {
    skip(unavailable !== undefined, unavailable);
    await moveTo('precondition dual-write', 'dual-write', 0, { stage: 'dual-write', readPercent: 0 });
    await resyncPostgres();
    const link = await relay(Number(new URL(SERVER_URL).port || 80));
    const errors: unknown[] = [];
    const relayed = new UnleashFlagSource({
      url: link.url,
      token: CLIENT_TOKEN,
      refreshIntervalMs: 500,
      onError: (_name, error) => void errors.push(error),
      client: { timeout: 1000 },
    });
    extraSources.push(relayed);
    const want = (expected: MigrationFlags, what: string) =>
      eventually(() => expect(relayed.current(), what).toEqual(expected), { timeoutMs: 15_000 });
    await want({ stage: 'dual-write', readPercent: 0, rolloutGroup: GROUP }, 'flags through the relay');

    await link.cut();
    await moveTo('dual-write -> read-shift 30% (relayed source cut off)', 'read-shift', 30, {
      stage: 'read-shift',
      readPercent: 30,
    });
    await eventually(() => expect(errors, 'connection errors reported').not.toHaveLength(0), { timeoutMs: 15_000 });
    expect(relayed.current()).toEqual({ stage: 'dual-write', readPercent: 0, rolloutGroup: GROUP });

    await link.restore();
    await want({ stage: 'read-shift', readPercent: 30, rolloutGroup: GROUP }, 'flags after the server came back');
  }, 60_000);
});
