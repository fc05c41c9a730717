import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { AgentTask } from '../../src/stores/agent-task/agent-task-model.js';
import type { Asset, Contribution, Contributor, DependencyEdge, Project } from '../../src/stores/graph/graph-model.js';
import type { JsonValue } from '../../src/domain/json.js';
import { entityNames } from '../../src/domain/records.js';
import { AGENT_TASK_ENTITIES, type AgentTaskRecords } from '../../src/stores/agent-task/agent-task-records.js';
import { GRAPH_ENTITIES, type GraphRecords } from '../../src/stores/graph/graph-records.js';
import { MemoryAgentTaskStore } from '../../src/stores/agent-task/memory-agent-task-store.js';
import { MemoryGraphStore } from '../../src/stores/graph/memory-graph-store.js';
import { encodeKey } from '../../src/memory/memory-tables.js';
import { PostgresAgentTaskStore } from '../../src/stores/agent-task/postgres-agent-task-store.js';
import { PostgresGraphStore } from '../../src/stores/graph/postgres-graph-store.js';
import type { SqlExecutor } from '../../src/postgres/sql-executor.js';
import type { RecordPort } from '../../src/ports/record-port.js';
import { mulberry32 } from '../../src/cli/demo/sample-data.js';
import type { EntitySql } from '../../src/postgres/entity-sql.js';
import { jsonbText, numericText, rowHash, rowHashSql } from '../../src/postgres/row-hash.js';
import { hashTextExtended } from '../../src/postgres/text-hash.js';
import { AGENT_TASK_DEFINITION } from '../../src/stores/agent-task/agent-task-store-definition.js';
import { GRAPH_DEFINITION } from '../../src/stores/graph/graph-store-definition.js';
import { availableBackends, useBackend } from '../support/backends.js';

/**
 * The verifier compares range checksums computed inside PostgreSQL with checksums computed
 * in JavaScript, so the two row hashes must agree bit for bit: jsonbText must render what
 * jsonb prints, and rowHash what rowHashSql computes over the stored row.
 */

// ---------------------------------------------------------------------------------------
// Values

/** Every character PostgreSQL's JSON output escapes or might: controls, quotes, separators, astral. */
const TRICKY_TEXT = `${Array.from({ length: 0x7f }, (_, i) => String.fromCharCode(i + 1)).join('')} é ß İ ı ǅ \u00a0 \u2028 \u2029 \ufeff \uffff 😀 𝄞 日本 "quoted" \\back\\slash\\ </script>`;

const NUMBERS = [
  0,
  0.1,
  0.2 + 0.1,
  -0.5,
  1,
  -1,
  42,
  123456789012,
  2 ** 53 - 1,
  -(2 ** 53),
  1e20,
  1e21,
  -1e21,
  1.2345e25,
  1.5e-7,
  -2.5e-10,
  1e-7,
  0.000001,
  5e-324,
  1.7976931348623157e308,
  Math.PI,
  -Math.E,
];

const JSON_VALUES: readonly [string, JsonValue][] = [
  ['null', null],
  ['true', true],
  ['false', false],
  ...NUMBERS.map((n): [string, JsonValue] => [`number ${n}`, n]),
  ['empty string', ''],
  ['string with quotes, backslashes, controls, emoji, U+2028', TRICKY_TEXT],
  ['empty object', {}],
  ['empty array', []],
  ['array of mixed scalars', [1, 'two', null, true, 0.1, 1e21, -2.5e-10, [], {}]],
  [
    'object with keys of different lengths and non-ASCII keys',
    {
      b: 1,
      a: 2,
      aa: 3,
      é: 4,
      z: 5,
      日本: 6,
      ab: 7,
      '😀': 8,
      '': 9,
      B: 10,
      ä: 11,
      aaa: 12,
      'a b': 13,
      '\u2028': 14,
      ß: 15,
      zz: 16,
      ﬀ: 17,
    },
  ],
  [
    'nested objects and arrays',
    {
      outer: { z: [{ yy: 1, x: { '': [] } }, { é: null }], a: { ccc: true, bb: false, d: 'x\n"y"' } },
      list: [[1, [2, [3, { k: 1e-7 }]]]],
    },
  ],
  ['object with a "__proto__" key', JSON.parse('{"__proto__": {"polluted": true}, "a": 1}') as JsonValue],
  ['keys that differ only beyond the BMP', { '\u{1f600}': 1, '\u{1f601}': 2, '\uffff': 3, '\ue000': 4 }],
];

/** Doubles of every magnitude, positive and negative, from a fixed seed. */
function randomNumbers(count: number): number[] {
  const random = mulberry32(7);
  return Array.from({ length: count }, (_, i) => {
    const magnitude = 10 ** (Math.floor(random() * 80) - 40);
    const value = (random() - 0.5) * magnitude;
    return i % 5 === 0 ? Math.round(value) : value;
  }).map((n) => (Object.is(n, -0) ? 0 : n));
}

/** PostgreSQL's own jsonb text of each value, sent as JSON.stringify's text. */
async function jsonbTextsInPostgres(db: SqlExecutor, values: readonly JsonValue[]): Promise<string[]> {
  const rows = await db.query<{ t: string }>(
    'SELECT e::text AS t FROM jsonb_array_elements($1::jsonb) WITH ORDINALITY AS a(e, n) ORDER BY n',
    [JSON.stringify(values)],
  );
  return rows.map((row) => row.t);
}

// ---------------------------------------------------------------------------------------
// Records of every entity: NULL fields, unicode text, timestamps in years 1 and 9999

const YEAR_1 = '0001-01-01T00:00:00.000Z';
const YEAR_9999 = '9999-12-31T23:59:59.999Z';
const UNICODE = 'Café "naïve" \\ 日本 😀 \u2028 tab\tnewline\n ctrl\u0001\u001f del\u007f';
const METADATA = {
  '': 0,
  a: 0.1,
  bb: 1e21,
  é: [1.5e-7, -2.5e-10, 123456789012],
  日本: { nested: { z: null, y: true, xx: 'x"\\\u2028' } },
  '😀': [],
};

const PLAIN: Project = {
  ecosystem: 'npm',
  name: 'plain',
  description: null,
  homepageUrl: null,
  repositoryUrl: null,
  dependencyCount: 0,
  createdAt: YEAR_1,
  updatedAt: YEAR_9999,
};
const FANCY: Project = {
  ecosystem: 'pypi',
  name: 'café-日本-😀-i̇',
  description: UNICODE,
  homepageUrl: 'https://example.com/ü?a=1&b="2"',
  repositoryUrl: '',
  dependencyCount: 2147483647,
  createdAt: '1970-01-01T00:00:00.000Z',
  updatedAt: '2026-02-28T12:34:56.789Z',
};
const CONTRIBUTOR_BARE: Contributor = {
  id: '00000000-0000-4000-8000-000000000001',
  name: 'x',
  email: null,
  githubUsername: null,
  walletAddress: null,
  metadata: {},
  createdAt: YEAR_1,
  updatedAt: YEAR_1,
};
const CONTRIBUTOR_FULL: Contributor = {
  id: 'ffffffff-ffff-4fff-bfff-ffffffffffff',
  name: UNICODE,
  email: 'ada@exämple.org',
  githubUsername: '😀',
  walletAddress: '0x\u2028',
  metadata: METADATA,
  createdAt: YEAR_9999,
  updatedAt: YEAR_9999,
};
const ASSET_BARE: Asset = {
  id: '00000000-0000-4000-8000-0000000000a1',
  name: 'a',
  description: null,
  assetType: 'code',
  totalCost: '0.00',
  metadata: {},
  createdAt: YEAR_1,
  updatedAt: YEAR_1,
};
const ASSET_FULL: Asset = {
  id: '00000000-0000-4000-8000-0000000000a2',
  name: UNICODE,
  description: UNICODE,
  assetType: 'dóc',
  totalCost: '9999999999999.99',
  metadata: METADATA,
  createdAt: YEAR_9999,
  updatedAt: '2000-02-29T23:59:59.001Z',
};

const GRAPH_RECORDS: { readonly [E in keyof GraphRecords]: readonly GraphRecords[E][] } = {
  projects: [PLAIN, FANCY],
  dependencies: [
    { from: PLAIN, to: FANCY, createdAt: YEAR_1 },
    { from: FANCY, to: PLAIN, createdAt: YEAR_9999 },
  ].map((e): DependencyEdge => ({
    from: { ecosystem: e.from.ecosystem, name: e.from.name },
    to: { ecosystem: e.to.ecosystem, name: e.to.name },
    createdAt: e.createdAt,
  })),
  contributors: [CONTRIBUTOR_BARE, CONTRIBUTOR_FULL],
  assets: [ASSET_BARE, ASSET_FULL],
  contributions: [
    {
      id: '00000000-0000-4000-8000-0000000000c1',
      contributorId: CONTRIBUTOR_BARE.id,
      assetId: ASSET_BARE.id,
      costAmount: '0.00',
      coherenceScore: '0.00',
      metadata: {},
      timestamp: YEAR_1,
    },
    {
      id: '00000000-0000-4000-8000-0000000000c2',
      contributorId: CONTRIBUTOR_FULL.id,
      assetId: ASSET_FULL.id,
      costAmount: '12345.67',
      coherenceScore: '1.00',
      metadata: METADATA,
      timestamp: YEAR_9999,
    },
    {
      id: '00000000-0000-4000-8000-0000000000c3',
      contributorId: CONTRIBUTOR_FULL.id,
      assetId: ASSET_BARE.id,
      costAmount: '0.01',
      coherenceScore: '0.50',
      metadata: { k: 'v' },
      timestamp: '2026-01-01T00:00:00.001Z',
    },
  ] satisfies Contribution[],
};

const TASK_BARE: AgentTask = {
  id: 'task_bare',
  direction: 'd',
  taskType: 'spec',
  status: 'pending',
  model: 'm',
  command: '',
  output: null,
  context: {},
  progressPct: null,
  currentStep: null,
  decisionPrompt: null,
  decision: null,
  tier: null,
  startedAt: null,
  createdAt: YEAR_1,
  updatedAt: YEAR_1,
};
const TASK_RECORDS: { readonly [E in keyof AgentTaskRecords]: readonly AgentTaskRecords[E][] } = {
  agent_tasks: [
    TASK_BARE,
    {
      id: 'task_😀_日本',
      direction: UNICODE,
      taskType: 'heal',
      status: 'needs_decision',
      model: 'модель',
      command: UNICODE,
      output: UNICODE,
      context: METADATA,
      progressPct: 100,
      currentStep: '\u2028',
      decisionPrompt: '"?"',
      decision: '\\',
      tier: 'gold',
      startedAt: YEAR_1,
      createdAt: YEAR_1,
      updatedAt: YEAR_9999,
    },
    {
      ...TASK_BARE,
      id: 'task_zero',
      status: 'running',
      progressPct: 0,
      startedAt: '2026-06-30T00:00:00.000Z',
      updatedAt: '2026-06-30T00:00:00.000Z',
    },
  ],
};

type AnyPort = RecordPort<Record<string, object>>;

/** Each row's SQL hash, by encoded record key. */
async function sqlHashes(db: SqlExecutor, sql: EntitySql): Promise<Map<string, bigint>> {
  const keys = sql.keyList.split(', ');
  const rows = await db.query<Record<string, string>>(
    `SELECT ${rowHashSql(sql.columns)}::text AS h, ${keys.map((k, i) => `${k}::text AS k${i}`).join(', ')} FROM ${sql.from}`,
  );
  return new Map(rows.map((row) => [encodeKey(keys.map((_, i) => row[`k${i}`]!)), BigInt(row.h!)]));
}

// ---------------------------------------------------------------------------------------

describe('numericText', () => {
  it.each([
    [1e21, '1000000000000000000000'],
    [-1e21, '-1000000000000000000000'],
    [1.2345e25, '12345000000000000000000000'],
    [1.5e-7, '0.00000015'],
    [-2.5e-10, '-0.00000000025'],
    [1e-7, '0.0000001'],
    [1.23e-18, '0.00000000000000000123'],
    [5e-324, `0.${'0'.repeat(323)}5`],
    [1.7976931348623157e308, `17976931348623157${'0'.repeat(292)}`],
    [0.1, '0.1'],
    [0.000001, '0.000001'],
    [123456789012, '123456789012'],
    [1e20, '100000000000000000000'],
    [-0.5, '-0.5'],
    [0, '0'],
  ])('renders %s as %s', (value, text) => {
    expect(numericText(value)).toBe(text);
  });
});

for (const factory of availableBackends(['pglite', 'postgres'])) {
  describe(`row hashes agree with PostgreSQL on ${factory.name}`, () => {
    const backend = useBackend(factory);

    it.each(JSON_VALUES)('jsonbText of %s equals the text PostgreSQL prints for it as jsonb', async (_name, value) => {
      const [row] = await backend.current.db!.query<{ t: string }>('SELECT $1::jsonb::text AS t', [
        JSON.stringify(value),
      ]);
      expect(jsonbText(value)).toBe(row!.t);
    });

    it('jsonbText of 2000 doubles of every magnitude equals jsonb text, number by number', async () => {
      const values = [...NUMBERS, ...randomNumbers(2000)];
      const texts = await jsonbTextsInPostgres(backend.current.db!, values);
      expect(values.map((v) => jsonbText(v))).toEqual(texts);
    });

    it('numericText equals numeric text for every exponent form', async () => {
      const values = NUMBERS.filter((n) => String(n).includes('e'));
      expect(values.length).toBeGreaterThan(5);
      const rows = await backend.current.db!.query<{ t: string }>(
        'SELECT v::numeric::text AS t FROM unnest($1::text[]) WITH ORDINALITY AS a(v, n) ORDER BY n',
        [values.map(String)],
      );
      expect(values.map(numericText)).toEqual(rows.map((row) => row.t));
    });

    it('orders object keys by UTF-8 length, then bytewise, as jsonb does', async () => {
      const value = JSON_VALUES.find(([name]) => name.startsWith('object with keys'))![1];
      const expected =
        '{"": 9, "B": 10, "a": 2, "b": 1, "z": 5, "aa": 3, "ab": 7, "zz": 16, "ß": 15, "ä": 11, "é": 4, "a b": 13, "aaa": 12, "\u2028": 14, "ﬀ": 17, "😀": 8, "日本": 6}';
      const [row] = await backend.current.db!.query<{ t: string }>('SELECT $1::jsonb::text AS t', [
        JSON.stringify(value),
      ]);
      expect([jsonbText(value), row!.t]).toEqual([expected, expected]);
    });

    it('rowHash of every entity equals the SQL hash of the row the Postgres store wrote', async () => {
      const db = backend.current.db!;
      const sides = [
        {
          memory: new MemoryGraphStore(),
          postgres: new PostgresGraphStore(db),
          entities: entityNames(GRAPH_ENTITIES),
          records: GRAPH_RECORDS,
          sql: GRAPH_DEFINITION.postgres,
        },
        {
          memory: new MemoryAgentTaskStore(),
          postgres: new PostgresAgentTaskStore(db),
          entities: entityNames(AGENT_TASK_ENTITIES),
          records: TASK_RECORDS,
          sql: AGENT_TASK_DEFINITION.postgres,
        },
      ] as unknown as {
        memory: AnyPort;
        postgres: AnyPort;
        entities: string[];
        records: Record<string, readonly object[]>;
        sql: Record<string, { checksum: EntitySql }>;
      }[];
      let compared = 0;
      for (const { memory, postgres, entities, records, sql } of sides) {
        for (const entity of entities) {
          for (const record of records[entity]!) {
            await memory.putRecord(entity, record);
            await postgres.putRecord(entity, record);
          }
          const hashes = await sqlHashes(db, sql[entity]!.checksum);
          expect(hashes.size).toBe(records[entity]!.length);
          for (const record of records[entity]!) {
            const key = memory.keyOf(entity, record);
            const stored = (await memory.getRecord(entity, key))!;
            // The same canonical record on both sides, so the hashes compare like for like.
            expect(await postgres.getRecord(entity, key)).toEqual(stored);
            expect({ entity, key, hash: rowHash(sql[entity]!.checksum.columns, stored) }).toEqual({
              entity,
              key,
              hash: hashes.get(encodeKey(key)),
            });
            compared++;
          }
        }
      }
      expect(compared).toBe(14);
    });

    it.each([
      [
        'a timestamp moved by 1 ms',
        'contributors',
        (c: Contributor) => ({ ...c, updatedAt: '0001-01-01T00:00:00.001Z' }),
      ],
      ['a NULL field set to empty text', 'contributors', (c: Contributor) => ({ ...c, email: '' })],
      ['one JSON key changed', 'contributors', (c: Contributor) => ({ ...c, metadata: { a: 1 } })],
    ] as const)('%s changes the hash on both sides alike', async (_name, entity, change) => {
      const db = backend.current.db!;
      const sql = GRAPH_DEFINITION.postgres[entity].checksum;
      const graph = new PostgresGraphStore(db);
      await graph.putRecord(entity, CONTRIBUTOR_BARE);
      const before = (await sqlHashes(db, sql)).get(CONTRIBUTOR_BARE.id)!;
      const changed = change(CONTRIBUTOR_BARE);
      await graph.putRecord(entity, changed);
      const after = (await sqlHashes(db, sql)).get(CONTRIBUTOR_BARE.id)!;
      expect(after).not.toBe(before);
      expect([rowHash(sql.columns, CONTRIBUTOR_BARE), rowHash(sql.columns, changed)]).toEqual([before, after]);
    });

    it('hashTextExtended equals hashtextextended(text, 0) for any text, every length around the 12-byte blocks', async () => {
      const texts = fc.sample(fc.string({ unit: 'grapheme', maxLength: 40 }), { seed: 11, numRuns: 300 });
      texts.push(...Array.from({ length: 30 }, (_, n) => 'x'.repeat(n)), TRICKY_TEXT);
      const rows = await backend.current.db!.query<{ h: string }>(
        'SELECT hashtextextended(t, 0)::text AS h FROM unnest($1::text[]) WITH ORDINALITY AS a(t, n) ORDER BY n',
        [texts],
      );
      expect(texts.map((text) => hashTextExtended(text).toString())).toEqual(rows.map((row) => row.h));
    });

    it('text moved from one field to the next changes the hash (fields cannot run into each other)', async () => {
      const sql = GRAPH_DEFINITION.postgres.contributors.checksum;
      const split = (name: string, email: string | null) => rowHash(sql.columns, { ...CONTRIBUTOR_BARE, name, email });
      const hashes = [
        split('ab', 'c'),
        split('a', 'bc'),
        split('abc', ''),
        split('abc', null),
        split('1:a', 'b'),
        split('a', '1:b'),
      ];
      expect(new Set(hashes).size).toBe(hashes.length);
    });
  });
}
