import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { chromium } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import type { StatusData } from '../../src/api/status-data.js';
import { availableBackends, useBackend } from '../support/backends.js';
import { request, useApiHarness, type ApiHarness, type ApiHarnessOptions } from './api-harness.js';
import { eventually } from '../support/eventually.js';
import { readForEvidence } from '../support/runtimes.js';
import { canRun } from '../support/service-available.js';

/**
 * The status page: who may open it (the read-only status token or the admin token, as a
 * bearer header or the cookie GET /status?token= trades it for), what it draws, and the
 * page itself in headless Chromium over a process that has moved through a rollout.
 */

const ADMIN_TOKEN = 'admin-token-that-must-never-be-logged-4c1d';
const STATUS_TOKEN = 'status-token-that-must-never-be-logged-9e2b';
const CANARY_REASON = 'canary for ticket 7: 10% of reads';

const CHROMIUM = '/usr/bin/chromium';
const chromiumMissing = existsSync(CHROMIUM)
  ? undefined
  : `${CHROMIUM} is not installed (apt-get install chromium; .ci/run installs it)`;
canRun("the status page's browser test", chromiumMissing);

const OUTPUT = join(process.cwd(), 'test-output', 'status-page.png');

for (const factory of availableBackends([process.env.DATABASE_URL ? 'postgres' : 'pglite'])) {
  describe(`the status page on ${factory.name}`, () => {
    const backend = useBackend(factory);
    const api = useApiHarness(backend);

    /**
     * An API whose stage the admin routes can move (a flags file in a temporary folder), sampled
     * every 200 ms, comparing every read with the other side (the gate's shadow comparisons).
     */
    const open = async (options: ApiHarnessOptions = {}) => {
      const dir = await mkdtemp(join(tmpdir(), 'dw-status-'));
      api.defer(() => rm(dir, { recursive: true, force: true }));
      return api.open({
        adminToken: ADMIN_TOKEN,
        statusToken: STATUS_TOKEN,
        statusHistory: { intervalMs: 200 },
        env: { DUALWRITE_FLAGS_FILE: join(dir, 'flags.json'), DUAL_WRITE_MODE: 'dual-write' },
        shadow: { sampleRate: 1 },
        ...options,
      });
    };

    /** The cookie GET /status?token= sets, as a Cookie header. */
    const signIn = async (h: ApiHarness, token: string) => {
      const response = await fetch(`${h.url}/status?token=${encodeURIComponent(token)}`, { redirect: 'manual' });
      expect(response.status).toBe(303);
      return {
        setCookie: response.headers.get('set-cookie')!,
        location: response.headers.get('location'),
        cookie: response.headers.get('set-cookie')!.split(';')[0]!,
      };
    };

    /**
     * A rollout as an operator runs it: records written, reads compared with PostgreSQL, a
     * clean verification, the canary (read-shift 10%) through the evidence gate, keyed reads,
     * then a contributor changed behind the mirror's back and found by a second verification.
     */
    const rollOut = async (h: ApiHarness) => {
      const admin = { token: ADMIN_TOKEN };
      for (let n = 0; n < 24; n++)
        expect(
          (await h.call('PUT', `/projects/npm/package-${n}`, { body: { description: `package ${n}` } })).status,
        ).toBe(200);
      const ada = await h.call('POST', '/contributors', { body: { name: 'Ada' } });
      await h.call('POST', '/contributors', { body: { name: 'Grace' } });
      await h.call('POST', '/tasks', { body: { direction: 'migrate', taskType: 'impl', model: 'm', command: 'c' } });
      await readForEvidence(h.rt);
      expect(
        (await h.call('POST', '/admin/verify', { ...admin, body: { reason: 'before the canary' } })).body,
      ).toMatchObject({ consistent: true });
      const canary = await h.call('POST', '/admin/stage', {
        ...admin,
        body: { stage: 'read-shift', percent: 10, reason: CANARY_REASON },
      });
      expect(canary.status, canary.text).toBe(200);
      for (let round = 0; round < 3; round++)
        for (let n = 0; n < 24; n++) await h.call('GET', `/projects/npm/package-${n}`);
      await h.rt.postgres.graph.putRecord('contributors', { ...ada.body, name: 'Not Ada' });
      expect(
        (await h.call('POST', '/admin/verify', { ...admin, body: { reason: 'after the canary' } })).body,
      ).toMatchObject({ consistent: false });
      // Samples after the activity (taken every 200 ms here), so every chart has points.
      await eventually(async () => {
        const data: StatusData = (await request(h.url, 'GET', '/status/data', { token: STATUS_TOKEN })).body;
        expect(data.history.samples.filter((sample) => sample.readsPerSecond.memory > 0)).not.toHaveLength(0);
        expect(data.history.samples.length).toBeGreaterThanOrEqual(4);
      });
    };

    it('refuses /status and /status/data without a token, and with a wrong one sets no cookie', async () => {
      const h = await open();
      for (const path of ['/status', '/status/data', '/status/assets/status.js']) {
        const answer = await h.call('GET', path);
        expect({ status: answer.status, error: answer.body.error }, path).toEqual({
          status: 401,
          error: expect.stringContaining('/status?token='),
        });
        expect(answer.headers.get('www-authenticate')).toBe('Bearer realm="dualwrite-status"');
      }
      const wrong = await fetch(`${h.url}/status?token=${STATUS_TOKEN}x`, { redirect: 'manual' });
      expect(wrong.status).toBe(401);
      expect(wrong.headers.get('set-cookie')).toBeNull();
      expect((await h.call('GET', '/status/data', { token: `${STATUS_TOKEN}x` })).status).toBe(401);
      expect((await h.call('GET', '/status/data', { headers: { cookie: 'dualwrite_status=forged' } })).status).toBe(
        401,
      );
    });

    it('trades ?token= for an HttpOnly, SameSite=Strict cookie and redirects to /status without it', async () => {
      const h = await open();
      for (const token of [STATUS_TOKEN, ADMIN_TOKEN]) {
        const { setCookie, location, cookie } = await signIn(h, token);
        expect(location).toBe('/status');
        expect(setCookie).toMatch(/^dualwrite_status=[\w-]+; Path=\/status; Max-Age=\d+; HttpOnly; SameSite=Strict$/);
        // The cookie stands for the token on this page only: it is not the token, and opens nothing else.
        expect(setCookie).not.toContain(token);
        const page = await h.call('GET', '/status', { headers: { cookie } });
        expect(page.status).toBe(200);
        expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
        expect(page.headers.get('content-security-policy')).toContain("script-src 'self'");
        expect(page.text).toContain('<script src="/status/assets/status.js" defer></script>');
        expect((await h.call('GET', '/status/data', { headers: { cookie } })).status).toBe(200);
        expect((await h.call('GET', '/status/assets/uPlot.iife.min.js', { headers: { cookie } })).text).toContain(
          'uPlot',
        );
        const cookieValue = cookie.split('=')[1]!;
        expect((await h.call('GET', '/status/data', { token: cookieValue })).status).toBe(401);
        expect((await h.call('GET', '/admin/status', { token: cookieValue })).status).toBe(401);
      }
    });

    it('opens the page and its data to either token as a bearer header; /admin stays the admin token’s', async () => {
      const h = await open();
      for (const token of [STATUS_TOKEN, ADMIN_TOKEN]) {
        expect((await h.call('GET', '/status', { token })).status).toBe(200);
        expect((await h.call('GET', '/status/data', { token })).status).toBe(200);
      }
      const admin = await h.call('GET', '/admin/status', { token: STATUS_TOKEN });
      expect({ status: admin.status, error: admin.body.error }).toEqual({
        status: 401,
        error: 'the admin token is wrong',
      });
      expect(
        (
          await h.call('POST', '/admin/stage', {
            token: STATUS_TOKEN,
            body: { stage: 'read-shift', percent: 10, reason: 'no' },
          })
        ).status,
      ).toBe(401);
      expect(h.rt.stage.current.stage).toBe('dual-write');
      expect((await h.call('GET', '/status/assets/nothing.js', { token: STATUS_TOKEN })).status).toBe(404);
    });

    it('is disabled, saying so, when neither token is configured', async () => {
      const h = await open({ adminToken: undefined, statusToken: undefined });
      expect((await h.call('GET', '/status', { token: STATUS_TOKEN })).body).toEqual({
        error: 'the status page is disabled: neither a status token nor an admin token is configured',
      });
      expect((await fetch(`${h.url}/status?token=${STATUS_TOKEN}`, { redirect: 'manual' })).status).toBe(401);
    });

    it('never logs either token, though ?token= is in the URL', async () => {
      const lines: string[] = [];
      const logger = pino({ level: 'trace' }, { write: (line: string) => void lines.push(line) });
      const h = await open({ logger });
      const { cookie } = await signIn(h, STATUS_TOKEN);
      await signIn(h, ADMIN_TOKEN);
      await fetch(`${h.url}/status?token=${STATUS_TOKEN}-wrong`, { redirect: 'manual' });
      // A URL no route takes is logged by the not-found handler: redacted too.
      await fetch(`${h.url}/status/?token=${STATUS_TOKEN}`, { redirect: 'manual' });
      await h.call('GET', '/status/data', { token: STATUS_TOKEN });
      await h.call('GET', '/status/data', { headers: { cookie } });

      const incoming = lines.map((line) => JSON.parse(line)).filter((line) => line.msg === 'incoming request');
      expect(incoming.map((line) => line.req.url)).toEqual([
        '/status?token=[redacted]',
        '/status?token=[redacted]',
        '/status?token=[redacted]',
        '/status/?token=[redacted]',
        '/status/data',
        '/status/data',
      ]);
      expect(
        lines.filter((line) => line.includes(STATUS_TOKEN) || line.includes(ADMIN_TOKEN) || line.includes(cookie)),
      ).toEqual([]);
    });

    it.skipIf(chromiumMissing !== undefined)(
      'draws the real figures of the running process in headless Chromium, and saves a screenshot',
      async () => {
        const h = await open();
        await rollOut(h);
        const browser = await chromium.launch({
          executablePath: CHROMIUM,
          args: [
            '--no-sandbox',
            '--disable-gpu',
            '--disable-background-networking',
            '--disable-component-update',
            '--disable-sync',
            '--no-first-run',
          ],
        });
        api.defer(() => browser.close());
        const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
        const page = await context.newPage();
        const problems: string[] = [];
        page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
        page.on(
          'console',
          (message) => void (message.type() === 'error' && problems.push(`console: ${message.text()}`)),
        );
        page.on(
          'response',
          (response) => void (response.status() >= 400 && problems.push(`${response.status()} from ${response.url()}`)),
        );

        await page.goto(`${h.url}/status?token=${STATUS_TOKEN}`);
        // The token left the address bar; the cookie that replaced it is out of scripts' reach.
        expect(page.url()).toBe(`${h.url}/status`);
        expect(await context.cookies()).toEqual([
          expect.objectContaining({ name: 'dualwrite_status', path: '/status', httpOnly: true, sameSite: 'Strict' }),
        ]);
        // Browser-side code is given as text: this project's TypeScript has no DOM types.
        await page.waitForFunction(
          "document.documentElement.dataset.renderedAt !== undefined && Number(document.querySelector('#chart-latency')?.dataset.points) > 0",
        );
        await page.evaluate('new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve)))');

        const report = h.rt.verifier.lastReport!;
        const contributors = report.entities.find((entity) => entity.entity === 'contributors')!;
        expect(await page.textContent('#stage')).toBe(h.rt.stage.current.stage);
        expect(await page.textContent('#flags')).toContain(
          `${h.rt.stage.current.readPercent}% of keyed reads from PostgreSQL`,
        );
        expect(await page.textContent('#next-verdict')).toBe('read-shift 25%: the evidence gate would refuse it now');
        expect(await page.textContent('#next-checks li.failed')).toContain('verification');
        expect(await page.locator('#consistency-rows tr[data-entity="contributors"] td').allTextContents()).toEqual([
          'graph',
          'contributors',
          `${(contributors.consistencyRatio * 100).toFixed(2)}%`,
          '1',
          '0',
          '2',
          '2',
        ]);
        expect(await page.textContent('#audit-rows')).toContain(CANARY_REASON);
        // Whether the sides are known equal, as the runtime says it (never from an empty outbox alone).
        expect(await page.textContent('#now-figures')).toContain(
          `converged${h.rt.convergence().converged ? 'yes' : 'no'}: ${h.rt.convergence().detail}`,
        );

        for (const id of [
          'chart-differences',
          'chart-outbox',
          'chart-mirror',
          'chart-latency',
          'chart-errors',
          'chart-reads',
        ]) {
          expect(Number(await page.getAttribute(`#${id}`, 'data-points')), id).toBeGreaterThan(0);
          expect(await page.evaluate(`(${PAINTED_PIXELS})(${JSON.stringify(id)})`), id).toBeGreaterThan(1000);
        }
        expect(problems).toEqual([]);

        await mkdir(join(OUTPUT, '..'), { recursive: true });
        // Under test-output/ only: the README's docs/status-page.png is a copy made by hand, so a test run never rewrites a tracked file.
        await page.screenshot({ path: OUTPUT, fullPage: true });
      },
      120_000,
    );

    /** A process with one recorded background job run: a verification an operator asked for. */
    const openWithJobRun = async () => {
      const h = await open();
      expect((await h.call('PUT', '/projects/npm/react', { body: { description: 'UI' } })).status).toBe(200);
      expect(
        (await h.call('POST', '/admin/verify', { token: ADMIN_TOKEN, body: { reason: 'a recorded run' } })).status,
      ).toBe(200);
      return h;
    };

    it('GET /status/data lists the background job runs, newest first', async () => {
      const h = await openWithJobRun();
      const data: StatusData = (await h.call('GET', '/status/data', { token: STATUS_TOKEN })).body;
      // Runs of earlier tests on this database are listed too: the newest is this one.
      const runs = await h.rt.jobs.listExecutions({ limit: 20 });
      expect(data.jobs.executions.map((row) => row.id)).toEqual(runs.map((run) => run.id));
      expect(data.jobs.executions[0]).toEqual({
        id: runs[0]!.id,
        task: 'verifier',
        state: 'success',
        trigger: 'manual',
        startedAt: runs[0]!.startedAt,
        durationMs: runs[0]!.durationMs,
        progress: 100,
        summary: expect.stringMatching(/^\{"consistent":true,/),
        resultTruncated: false,
      });
    });

    it.skipIf(chromiumMissing !== undefined)(
      'draws the background job runs in the "Background jobs" table',
      async () => {
        const h = await openWithJobRun();
        const browser = await chromium.launch({
          executablePath: CHROMIUM,
          args: ['--no-sandbox', '--disable-gpu', '--no-first-run'],
        });
        api.defer(() => browser.close());
        const page = await browser.newPage();
        await page.goto(`${h.url}/status?token=${STATUS_TOKEN}`);
        await page.waitForFunction('document.documentElement.dataset.renderedAt !== undefined');
        expect(await page.textContent('#jobs-title')).toBe('Background jobs (last 20 runs)');
        const cells = await page.locator('#jobs-rows tr[data-task="verifier"] td').allTextContents();
        expect(cells.slice(0, 2)).toEqual(['verifier (manual)', 'success']);
        expect(cells[3]).toMatch(/^\d+(\.\d)? m?s$/);
        expect(cells[4]).toBe('100%');
        expect(cells[5]).toContain('"consistent":true');
      },
      120_000,
    );

    it('GET /status/data: the stage, the gate on the next step, consistency per entity, history and the audit trail', async () => {
      const h = await open();
      await rollOut(h);
      const data: StatusData = (await h.call('GET', '/status/data', { token: STATUS_TOKEN })).body;
      expect(data.status.stage).toMatchObject({ inForce: 'read-shift', readPercent: 10 });
      expect(data.status.flags).toMatchObject({ stage: 'read-shift', readPercent: 10, source: 'file' });
      // The last verification found the changed contributor: the gate refuses the next percentage on it.
      expect(data.nextStep).toMatchObject({
        stage: 'read-shift',
        readPercent: 25,
        verdict: { advance: true, allowed: false },
      });
      expect(data.nextStep!.verdict.checks.filter((check) => !check.ok).map((check) => check.name)).toEqual([
        'verification',
      ]);
      expect(data.consistency.find((entity) => entity.entity === 'contributors')).toEqual({
        store: 'graph',
        entity: 'contributors',
        consistencyRatio: 0.5,
        persistentDifferences: 1,
        transientDifferences: 0,
        rowsMemory: 2,
        rowsPostgres: 2,
      });
      expect(data.history.verifications.map((point) => point.differences['graph/contributors'])).toEqual([0, 1]);
      const latest = data.history.samples.at(-1)!;
      expect(latest).toMatchObject({ outbox: { depth: 0 }, mirrorQueueDepth: 0 });
      expect(
        data.history.samples.some(
          (sample) => sample.sides.postgres.p95Ms !== null && sample.sides.memory.p95Ms !== null,
        ),
      ).toBe(true);
      expect(data.audit.events.find((event) => event.reason === CANARY_REASON)).toMatchObject({
        action: 'stage.change',
        who: 'admin-token',
        from: 'dual-write',
        to: 'read-shift 10%',
      });
    });
  });
}

/** Browser-side: how many pixels of the chart in figure `id` are painted (axes, grid and lines). */
const PAINTED_PIXELS = `(id) => {
  const canvas = document.getElementById(id).querySelector('canvas');
  const pixels = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
  let painted = 0;
  for (let n = 3; n < pixels.length; n += 4) if (pixels[n] > 0) painted++;
  return painted;
}`;
