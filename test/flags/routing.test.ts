import { mulberry32 } from '../../src/cli/demo/sample-data.js';
import { InMemStorageProvider, Unleash, type ClientFeaturesResponse } from 'unleash-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { READ_TOGGLE } from '../../flags/unleash-flags.js';
import { rolloutBucket, routesToPostgres } from '../../src/dualwrite/routing.js';

const GROUP = 'dualwrite.read-from-postgres';
const PERCENTS = [0, 10, 50, 99, 100];

/** Deterministic pseudo-random numbers, so failures reproduce. */
const random = mulberry32;

/** Code point ranges keys are drawn from: ASCII, Latin-1, Cyrillic, CJK, and astral (emoji, surrogate pairs). */
const RANGES: [number, number][] = [
  [0x21, 0x7e],
  [0xa1, 0xff],
  [0x400, 0x4ff],
  [0x4e00, 0x9fff],
  [0x1f300, 0x1f64f],
];

/** `count` distinct routing keys as the DualWriteStore builds them, half with non-ASCII characters. */
function routingKeys(count: number, seed: number): string[] {
  const next = random(seed);
  const keys = new Set<string>();
  const prefixes = ['contributor:', 'asset:', 'contribution:', 'project:npm/', 'op:'];
  while (keys.size < count) {
    const prefix = prefixes[Math.floor(next() * prefixes.length)]!;
    let body = '';
    const length = 1 + Math.floor(next() * 24);
    const asciiOnly = keys.size % 2 === 0;
    for (let i = 0; i < length; i++) {
      const [low, high] = asciiOnly ? RANGES[0]! : RANGES[Math.floor(next() * RANGES.length)]!;
      body += String.fromCodePoint(low + Math.floor(next() * (high - low + 1)));
    }
    keys.add(prefix + body);
  }
  // Shapes the stores really produce, and a few edge cases.
  for (const key of [
    'contributor:00000000-0000-4000-8000-000000000001',
    'project:npm/left-pad',
    'project:?',
    'op:search',
    'ä',
    '日本',
    '🚀',
    'a\u0000b',
  ])
    keys.add(key);
  return [...keys];
}

/** An Unleash client that knows only the read toggle at `percent`, from bootstrap data (no server). */
async function clientAt(percent: number): Promise<Unleash> {
  const features: ClientFeaturesResponse['features'] = [
    {
      name: READ_TOGGLE,
      enabled: true,
      strategies: [
        {
          name: 'flexibleRollout',
          constraints: [],
          parameters: { rollout: String(percent), stickiness: 'routingKey', groupId: GROUP },
        },
      ],
      variants: [],
    },
  ];
  const client = new Unleash({
    url: 'http://127.0.0.1:1/api/',
    appName: 'dualwrite-routing-test',
    refreshInterval: 0,
    disableMetrics: true,
    storageProvider: new InMemStorageProvider(),
    bootstrap: { data: features },
  });
  client.on('error', () => {});
  client.on('warn', () => {});
  await new Promise<void>((resolve) => client.once('ready', () => resolve()));
  return client;
}

describe('routesToPostgres agrees with unleash-client', () => {
  const keys = routingKeys(2000, 42);
  const clients = new Map<number, Unleash>();
  beforeAll(async () => {
    for (const percent of PERCENTS) clients.set(percent, await clientAt(percent));
  });
  afterAll(() => {
    for (const client of clients.values()) client.destroy();
  });

  it('draws 2000 distinct keys, among them non-ASCII and astral ones', () => {
    expect(new Set(keys).size).toBeGreaterThanOrEqual(2000);
    expect(keys.filter((key) => /[^\p{ASCII}]/u.test(key)).length).toBeGreaterThan(900);
    expect(keys.filter((key) => /[\u{10000}-\u{10ffff}]/u.test(key)).length).toBeGreaterThan(100);
  });

  it('reads a custom context field both top-level and under properties', () => {
    // unleash-client 6.12.1 resolves stickiness as context[field] ?? context.properties[field].
    const client = clients.get(50)!;
    for (const key of keys.slice(0, 200)) {
      expect(client.isEnabled(READ_TOGGLE, { properties: { routingKey: key } })).toBe(
        client.isEnabled(READ_TOGGLE, { routingKey: key }),
      );
    }
  });

  it.each(PERCENTS)('routes exactly the keys unleash-client enables at %i percent', (percent) => {
    const client = clients.get(percent)!;
    const disagreements = keys.filter(
      (key) =>
        client.isEnabled(READ_TOGGLE, { properties: { routingKey: key } }) !== routesToPostgres(GROUP, key, percent),
    );
    expect(disagreements).toEqual([]);
  });

  it('gives every key a bucket from 1 to 100', () => {
    const buckets = keys.map((key) => rolloutBucket(GROUP, key));
    expect(buckets.every((bucket) => Number.isInteger(bucket) && bucket >= 1 && bucket <= 100)).toBe(true);
  });
});

describe('routesToPostgres rollout', () => {
  const keys = routingKeys(10_000, 7);

  it('only moves keys toward PostgreSQL as the percentage rises', () => {
    const violations: string[] = [];
    for (const key of keys) {
      let routed = false;
      for (let percent = 0; percent <= 100; percent++) {
        const now = routesToPostgres(GROUP, key, percent);
        if (routed && !now) violations.push(`${key} left PostgreSQL at ${percent}%`);
        routed ||= now;
      }
      if (!routed) violations.push(`${key} never reached PostgreSQL`);
    }
    expect(violations).toEqual([]);
  });

  it('routes no key at 0 percent and every key at 100 percent', () => {
    expect(keys.filter((key) => routesToPostgres(GROUP, key, 0))).toEqual([]);
    expect(keys.filter((key) => !routesToPostgres(GROUP, key, 100))).toEqual([]);
  });

  it.each([1, 5, 10, 25, 50, 75, 90, 99])('routes %i percent of 10k keys to PostgreSQL, within 3 points', (percent) => {
    const share = (100 * keys.filter((key) => routesToPostgres(GROUP, key, percent)).length) / keys.length;
    expect(Math.abs(share - percent)).toBeLessThanOrEqual(3);
  });

  it('buckets keys independently per rollout group', () => {
    const inBoth = keys.filter(
      (key) => routesToPostgres(GROUP, key, 50) && routesToPostgres('another-group', key, 50),
    ).length;
    // Independent halves overlap on about a quarter of the keys; the same group would overlap on half.
    expect(Math.abs((100 * inBoth) / keys.length - 25)).toBeLessThanOrEqual(3);
  });
});
