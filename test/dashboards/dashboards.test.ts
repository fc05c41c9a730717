import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { useTestRuntimes } from '../support/runtimes.js';
import { openPglite } from '../support/pglite.js';
import { canRun } from '../support/service-available.js';

const run = promisify(execFile);

/**
 * The alert rules and the Grafana dashboard: promtool accepts the rules and their unit tests
 * pass, every alert has a runbook section, and every metric either names is one the code
 * exports (so dashboards, alerts and code cannot drift apart).
 */

const PROMTOOL = '/usr/bin/promtool';
const promtool = canRun(
  'the promtool checks',
  existsSync(PROMTOOL) ? undefined : 'promtool is not installed (apt-get install prometheus)',
)
  ? PROMTOOL
  : undefined;

const RULES = 'dashboards/alerts.yml';
const DASHBOARD = 'dashboards/grafana-dashboard.json';

describe.runIf(promtool)('alert rules (promtool)', () => {
  it('pass promtool check rules', async () => {
    const { stdout } = await run(promtool!, ['check', 'rules', RULES]);
    expect(stdout).toMatch(/SUCCESS: \d+ rules found/);
  });

  it('pass their unit tests (promtool test rules), one test per alert at least', async () => {
    const { stdout } = await run(promtool!, ['test', 'rules', 'dashboards/alerts.test.yml']);
    expect(stdout).toContain('SUCCESS');
    const tests = await readFile('dashboards/alerts.test.yml', 'utf8');
    for (const alert of await alertNames()) expect(tests).toContain(`alertname: ${alert}`);
  });
});

describe('dashboards and runbook', () => {
  const runtimes = useTestRuntimes();

  it('every alert has a runbook section, which its annotation links to', async () => {
    const runbook = await readFile('dashboards/RUNBOOK.md', 'utf8');
    const rules = await readFile(RULES, 'utf8');
    for (const alert of await alertNames()) {
      expect(runbook).toContain(`## ${alert}\n`);
      expect(rules).toContain(`runbook: dashboards/RUNBOOK.md#${alert.toLowerCase()}`);
    }
  });

  it('the Grafana dashboard has unique panel ids, a query on every panel and the stage as an annotation', async () => {
    const dashboard = JSON.parse(await readFile(DASHBOARD, 'utf8')) as {
      panels: { id: number; targets: { expr: string }[] }[];
      annotations: { list: { expr: string }[] };
    };
    const ids = dashboard.panels.map((panel) => panel.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const panel of dashboard.panels) expect(panel.targets.length).toBeGreaterThan(0);
    expect(dashboard.annotations.list.some((annotation) => annotation.expr.includes('dualwrite_stage'))).toBe(true);
  });

  it('names only metrics that a runtime exports', async () => {
    const db = await openPglite();
    runtimes.defer(() => db.close());
    const { rt } = await runtimes.open({ db });
    const exported = new Set((await rt.metrics.registry.getMetricsAsJSON()).map((metric) => metric.name));
    const named = new Set(
      [
        ...(await readFile(RULES, 'utf8')).matchAll(/\bdualwrite_[a-z_]+/g),
        ...(await readFile(DASHBOARD, 'utf8')).matchAll(/\bdualwrite_[a-z_]+/g),
      ].map(([name]) => name.replace(/_(bucket|sum|count)$/, '')),
    );
    expect(named.size).toBeGreaterThan(20);
    expect([...named].filter((name) => !exported.has(name))).toEqual([]);
  });
});

async function alertNames(): Promise<string[]> {
  return [...(await readFile(RULES, 'utf8')).matchAll(/- alert: (\w+)/g)].map(([, name]) => name!);
}
