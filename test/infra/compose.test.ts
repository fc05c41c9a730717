import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';

/**
 * infra/docker-compose.yaml cannot run here (no Docker), so what can drift is checked: it
 * parses, every file it mounts exists, the example API gets only variables dualwrite reads,
 * and Prometheus and Grafana are pointed at the rules and dashboard of this repository.
 */
const COMPOSE = 'infra/docker-compose.yaml';

interface Service {
  readonly environment?: Record<string, string>;
  readonly volumes?: readonly string[];
}

async function yamlFile<T>(path: string): Promise<T> {
  return parse(await readFile(path, 'utf8')) as T;
}

describe('infra/docker-compose.yaml', () => {
  it('parses, with the services the README names', async () => {
    const compose = await yamlFile<{ services: Record<string, Service> }>(COMPOSE);
    expect(Object.keys(compose.services).sort()).toEqual([
      'api',
      'grafana',
      'postgres',
      'prometheus',
      'redis',
      'unleash',
      'unleash-db',
    ]);
  });

  it('mounts only files and folders that exist', async () => {
    const compose = await yamlFile<{ services: Record<string, Service> }>(COMPOSE);
    const mounts = Object.values(compose.services)
      .flatMap((service) => service.volumes ?? [])
      .map((volume) => volume.split(':')[0]!)
      .filter((source) => source.startsWith('.'));
    expect(mounts.length).toBeGreaterThan(3);
    for (const source of mounts) expect(existsSync(resolve(dirname(COMPOSE), source)), source).toBe(true);
  });

  it('sets only variables the configuration module reads', async () => {
    const compose = await yamlFile<{ services: Record<string, Service> }>(COMPOSE);
    const read = new Set(
      [...(await readFile('src/runtime/config.ts', 'utf8')).matchAll(/'([A-Z][A-Z0-9_]+)'/g)].map(([, name]) => name),
    );
    const set = Object.keys(compose.services.api!.environment ?? {});
    expect(set.length).toBeGreaterThan(5);
    expect(set.filter((name) => !read.has(name))).toEqual([]);
  });

  it('points Prometheus at the alert rules and the API, and Grafana at Prometheus and the dashboard', async () => {
    const compose = await yamlFile<{ services: Record<string, Service> }>(COMPOSE);
    const prometheus = await yamlFile<{
      rule_files: string[];
      scrape_configs: { static_configs: { targets: string[] }[] }[];
    }>('infra/prometheus.yml');
    const mounted = (service: string, target: string) =>
      compose.services[service]!.volumes!.find((volume) => volume.split(':')[1] === target);
    for (const rules of prometheus.rule_files)
      expect(mounted('prometheus', rules), rules).toBe('../dashboards/alerts.yml:/etc/prometheus/alerts.yml:ro');
    expect(prometheus.scrape_configs[0]!.static_configs[0]!.targets).toEqual([
      `api:${compose.services.api!.environment!.PORT}`,
    ]);
    const datasources = await yamlFile<{ datasources: { url: string }[] }>(
      'infra/grafana/provisioning/datasources/prometheus.yaml',
    );
    expect(datasources.datasources[0]!.url).toBe('http://prometheus:9090');
    const providers = await yamlFile<{ providers: { options: { path: string } }[] }>(
      'infra/grafana/provisioning/dashboards/dualwrite.yaml',
    );
    expect(mounted('grafana', join(providers.providers[0]!.options.path, 'dualwrite.json'))).toMatch(
      /^\.\.\/dashboards\/grafana-dashboard\.json:/,
    );
  });
});
