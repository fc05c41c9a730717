import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { serve, type ServedApi } from '../../src/api/serve.js';
import { openPostgresSchema } from '../support/backends.js';
import { findPrometheus, startPrivatePrometheus, type PrivatePrometheus } from '../support/private-prometheus.js';
import { startTcpProxy } from '../support/tcp-proxy.js';
import { canRun } from '../support/service-available.js';
import { eventually } from '../support/eventually.js';

/**
 * A real Prometheus scrapes the example API's /metrics and evaluates dashboards/alerts.yml
 * (the outbox rule's thresholds scaled down): with PostgreSQL cut off through a TCP proxy
 * (the shared server is never touched) and writes going on, DualwriteOutboxNotDraining and
 * DualwritePostgresDown go pending; once it is back the outbox drains and both clear.
 * promtool's unit tests (dashboards.test.ts) cover the exact thresholds; this covers the
 * exporter, the labels a scrape adds and the rules together.
 */

const unavailable = !findPrometheus()
  ? 'prometheus is not installed (apt-get install prometheus)'
  : !process.env.DATABASE_URL
    ? 'DATABASE_URL is not set (CI sets it; see README)'
    : undefined;
const available = canRun('the Prometheus scrape test', unavailable);

// The outbox rule exactly as alerts.yml has it, and with thresholds a test can wait for
// (2 s instead of 2 minutes, pending for 30 s instead of 1 minute: long enough to be seen pending).
const OUTBOX_RULE = [
  '      - alert: DualwriteOutboxNotDraining',
  '        expr: dualwrite_outbox_depth > 0 and on (instance) dualwrite_outbox_oldest_age_seconds > 120',
  '        for: 1m',
].join('\n');
const FAST_OUTBOX_RULE = OUTBOX_RULE.replace('_seconds > 120', '_seconds > 2').replace('for: 1m', 'for: 30s');

/** One alert as /api/v1/alerts lists it (pending and firing ones only). */
interface Alert {
  readonly labels: Record<string, string>;
  readonly state: 'pending' | 'firing';
  readonly value: string;
}

describe.runIf(available)('Prometheus scraping the example API', () => {
  const cleanups: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  it('sees PostgreSQL cut off: the outbox and PostgreSQL-down alerts go pending, and clear once it is back', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'dw-prometheus-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const schema = await openPostgresSchema('dw_prom');
    cleanups.push(() => schema.drop());
    const target = new URL(process.env.DATABASE_URL!);
    const proxy = await startTcpProxy({ host: target.hostname, port: Number(target.port || 5432) });
    cleanups.push(() => proxy.close());
    const proxied = new URL(target);
    proxied.hostname = '127.0.0.1';
    proxied.port = String(proxy.port);

    const api = await serve({
      port: 0,
      host: '127.0.0.1',
      logger: false,
      env: {
        DATABASE_URL: proxied.toString(),
        POSTGRES_SCHEMA: schema.schema,
        POSTGRES_POOL_MIN_SIZE: '0',
        DUAL_WRITE_MODE: 'dual-write',
        DUALWRITE_VERIFY_INTERVAL_MS: '0',
        DUALWRITE_FLAGS_FILE: join(dir, 'flags.json'),
        DUALWRITE_LAST_FLAGS_PATH: join(dir, 'last-flags.json'),
        DUALWRITE_OUTBOX_PATH: join(dir, 'outbox.jsonl'),
      },
    });
    // Restored first, so a failure mid-cut still lets the runtime drain and close.
    cleanups.push(async () => {
      proxy.restore();
      await api.close();
    });

    const rules = await readFile('dashboards/alerts.yml', 'utf8');
    expect(
      rules.split(OUTBOX_RULE),
      'DualwriteOutboxNotDraining changed in alerts.yml: update OUTBOX_RULE here',
    ).toHaveLength(2);
    const rulesFile = join(dir, 'alerts.yml');
    await writeFile(rulesFile, rules.replace(OUTBOX_RULE, FAST_OUTBOX_RULE));

    const prometheus = await startPrivatePrometheus(join(dir, 'prometheus'), {
      global: { scrape_interval: '1s', evaluation_interval: '1s' },
      rule_files: [rulesFile],
      scrape_configs: [
        { job_name: 'dualwrite', static_configs: [{ targets: [new URL(api.url).host], labels: { instance: 'api' } }] },
      ],
    });
    cleanups.push(() => prometheus.kill());

    // The scaled rule is the one Prometheus loaded.
    const { groups } = await prometheus.api<{
      groups: { rules: { name: string; query: string; duration: number }[] }[];
    }>('/api/v1/rules');
    expect(
      groups.flatMap((group) => group.rules).find((rule) => rule.name === 'DualwriteOutboxNotDraining'),
    ).toMatchObject({
      query: expect.stringMatching(/dualwrite_outbox_oldest_age_seconds > 2$/),
      duration: 30,
    });

    // A real scrape of the real exporter: the target is up and its series carry instance="api".
    const targets = await waitFor(
      'the API target to be up',
      async () => (await prometheus.api<{ activeTargets: Target[] }>('/api/v1/targets')).activeTargets,
      (found) => found.some((target) => target.health === 'up'),
    );
    expect(targets).toEqual([
      expect.objectContaining({ health: 'up', labels: expect.objectContaining({ instance: 'api', job: 'dualwrite' }) }),
    ]);
    const scraped = await waitFor(
      'dualwrite_outbox_depth and dualwrite_pg_up to be scraped',
      () => figures(prometheus),
      (found) => found.depth !== undefined && found.pgUp !== undefined,
    );
    expect(scraped).toEqual({ depth: 0, pgUp: 1 });
    expect(await alerts(prometheus)).toEqual([]);

    const writer = startWriter(api);
    cleanups.push(() => writer.stop());
    await waitFor(
      'a write to land',
      async () => writer.acknowledged,
      (acknowledged) => acknowledged > 0,
    );

    proxy.cut();
    const outboxAlert = await waitFor(
      'DualwriteOutboxNotDraining to go pending',
      () => alert(prometheus, 'DualwriteOutboxNotDraining'),
      Boolean,
      60_000,
    );
    expect(outboxAlert).toMatchObject({
      state: 'pending',
      labels: { instance: 'api', job: 'dualwrite', severity: 'warning' },
    });
    expect(Number(outboxAlert!.value)).toBeGreaterThan(0);
    // dualwrite_pg_up is 0 from the first scrape of the cut; the rule's for: 1m (not scaled) keeps it pending here.
    const downAlert = await waitFor(
      'DualwritePostgresDown to go pending',
      () => alert(prometheus, 'DualwritePostgresDown'),
      Boolean,
    );
    expect(downAlert).toMatchObject({
      state: 'pending',
      labels: { instance: 'api', job: 'dualwrite', severity: 'critical' },
    });

    proxy.restore();
    const written = await writer.stop();
    // Memory is authoritative in dual-write: no write failed while PostgreSQL was away, they were journaled.
    expect(written.failures).toEqual([]);
    // Only these two: DualwritePostgresErrorsHigh, pending from the cut, keeps its 5-minute rate window.
    await waitFor(
      'the outbox to drain and its alert and DualwritePostgresDown to clear',
      async () => ({
        ...(await figures(prometheus)),
        alerts: (await alerts(prometheus)).map((active) => active.labels.alertname),
      }),
      (found) =>
        found.depth === 0 &&
        found.pgUp === 1 &&
        !found.alerts.some((name) => name === 'DualwriteOutboxNotDraining' || name === 'DualwritePostgresDown'),
    );
    // The journaled writes were replayed: PostgreSQL holds every acknowledged one.
    expect(await api.runtime.postgres.graph.countProjects()).toBe(written.acknowledged);
  }, 120_000);
});

/** One scrape target as /api/v1/targets lists it. */
interface Target {
  readonly labels: Record<string, string>;
  readonly health: string;
  readonly lastError: string;
}

/** The value of a query that selects one series, or undefined while it has none. */
async function value(prometheus: PrivatePrometheus, query: string): Promise<number | undefined> {
  const { result } = await prometheus.api<{ result: { value: [number, string] }[] }>(
    `/api/v1/query?query=${encodeURIComponent(query)}`,
  );
  if (result.length > 1) throw new Error(`${query} selects ${result.length} series`);
  return result[0] && Number(result[0].value[1]);
}

/** The API's outbox depth and PostgreSQL health as Prometheus last scraped them. */
async function figures(
  prometheus: PrivatePrometheus,
): Promise<{ depth: number | undefined; pgUp: number | undefined }> {
  const [depth, pgUp] = await Promise.all([
    value(prometheus, 'dualwrite_outbox_depth{instance="api"}'),
    value(prometheus, 'dualwrite_pg_up{instance="api"}'),
  ]);
  return { depth, pgUp };
}

async function alerts(prometheus: PrivatePrometheus): Promise<Alert[]> {
  return (await prometheus.api<{ alerts: Alert[] }>('/api/v1/alerts')).alerts;
}

async function alert(prometheus: PrivatePrometheus, name: string): Promise<Alert | undefined> {
  return (await alerts(prometheus)).find((active) => active.labels.alertname === name);
}

/** Reads until `done` holds, or fails naming what was awaited and what was last read. */
function waitFor<T>(what: string, read: () => Promise<T>, done: (found: T) => boolean, timeoutMs = 20_000): Promise<T> {
  return eventually(
    async () => {
      const found = await read();
      expect(done(found), `${what}; last read: ${JSON.stringify(found)}`).toBe(true);
      return found;
    },
    { timeoutMs, everyMs: 250 },
  );
}

/** PUTs a new project over HTTP every 200 ms, one at a time, until stopped. */
function startWriter(api: ServedApi): {
  readonly acknowledged: number;
  stop(): Promise<{ acknowledged: number; failures: string[] }>;
} {
  let acknowledged = 0;
  const failures: string[] = [];
  let stopped = false;
  const loop = (async () => {
    for (let n = 0; !stopped; n++) {
      try {
        const answer = await fetch(`${api.url}/projects/npm/k${n}`, {
          method: 'PUT',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ description: `write ${n}` }),
        });
        const text = await answer.text();
        if (answer.ok) acknowledged++;
        else failures.push(`PUT k${n}: ${answer.status} ${text}`);
      } catch (error) {
        failures.push(`PUT k${n}: ${(error as Error).message}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  })();
  return {
    get acknowledged() {
      return acknowledged;
    },
    async stop() {
      stopped = true;
      await loop;
      return { acknowledged, failures };
    },
  };
}
