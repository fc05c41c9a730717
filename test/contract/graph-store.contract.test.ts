/**
 * The GraphStore contract: the same suite, unchanged, on every available backend
 * (memory, pglite, postgres). A behaviour belongs here when every store must agree on it.
 */
import { describe, expect, it } from 'vitest';
import type { JsonObject } from '../../src/domain/json.js';
import type { GraphRecords } from '../../src/stores/graph/graph-records.js';
import { compareText } from '../../src/domain/text.js';
import { availableBackends, useBackend, type Backend } from '../support/backends.js';

type Graph = Backend['graph'];

const GRAPH_ENTITY_NAMES: readonly (keyof GraphRecords)[] = [
  'projects',
  'dependencies',
  'contributors',
  'assets',
  'contributions',
];

/** Every graph record, per entity, in key order: equal before and after means nothing was written. */
async function allRecords(graph: Graph): Promise<Record<string, unknown[]>> {
  const result: Record<string, unknown[]> = {};
  for (const entity of GRAPH_ENTITY_NAMES) result[entity] = await graph.scanRecords(entity, { limit: 100_000 });
  return result;
}

/** Asserts that `action` rejects with `error` naming `field`, and that no graph record changed. */
async function expectRejectedWithoutWrites(
  graph: Graph,
  action: () => Promise<unknown>,
  error: string,
  field: string,
): Promise<void> {
  const before = await allRecords(graph);
  await expect(action()).rejects.toMatchObject({ name: error, field });
  expect(await allRecords(graph)).toEqual(before);
}

const uuid = (suffix: string): string => `00000000-0000-4000-8000-${suffix.padStart(12, '0')}`;

const ADA = uuid('ada1');
const BOB = uuid('b0b1');
const DOC = uuid('d0c1');
const IMG = uuid('1e61');
const FIRST_CONTRIBUTION = uuid('c0c0');
const UNKNOWN = uuid('fffff');
const REACT = { ecosystem: 'npm', name: 'react' };
const LEFT_PAD = { ecosystem: 'npm', name: 'left-pad' };
const MISSING = { ecosystem: 'npm', name: 'does-not-exist' };

/** A small graph of every entity, so a rejected write has something it could wrongly change. */
async function seedWorld(graph: Graph): Promise<void> {
  await graph.upsertProject({ ...REACT, description: 'UI library' });
  await graph.upsertProject(LEFT_PAD);
  await graph.addDependency(REACT, LEFT_PAD);
  await graph.createContributor({ id: ADA, name: 'Ada' });
  await graph.createAsset({ id: DOC, name: 'Doc', assetType: 'code' });
  await graph.createContribution({
    id: FIRST_CONTRIBUTION,
    contributorId: ADA,
    assetId: DOC,
    costAmount: '1.00',
    coherenceScore: '0.50',
  });
}

const contribution = (fields: Record<string, unknown>) => ({
  contributorId: ADA,
  assetId: DOC,
  costAmount: '1.00',
  coherenceScore: '0.50',
  ...fields,
});

/** Bypasses the input types, to send what a JavaScript caller could. */
const raw = <T>(value: unknown): T => value as T;

interface InvalidCase {
  readonly title: string;
  readonly act: (graph: Graph) => Promise<unknown>;
  readonly error: 'ValidationError' | 'NotFoundError' | 'ConflictError';
  readonly field: string;
}

const INVALID_INPUTS: readonly InvalidCase[] = [
  // projects
  {
    title: 'a project ecosystem of 101 characters',
    act: (g) => g.upsertProject({ ecosystem: 'e'.repeat(101), name: 'x' }),
    error: 'ValidationError',
    field: 'ecosystem',
  },
  {
    title: 'a project name of 256 characters',
    act: (g) => g.upsertProject({ ecosystem: 'npm', name: 'n'.repeat(256) }),
    error: 'ValidationError',
    field: 'name',
  },
  {
    title: 'a project name containing NUL',
    act: (g) => g.upsertProject({ ecosystem: 'npm', name: 'a\u0000b' }),
    error: 'ValidationError',
    field: 'name',
  },
  {
    title: 'a blank project name',
    act: (g) => g.upsertProject({ ecosystem: 'npm', name: '   ' }),
    error: 'ValidationError',
    field: 'name',
  },
  {
    title: 'a project replace with a lone surrogate in its description',
    act: (g) => g.upsertProject({ ...REACT, description: 'bad \ud800' }),
    error: 'ValidationError',
    field: 'description',
  },
  {
    title: 'a homepageUrl of 501 characters',
    act: (g) => g.upsertProject({ ...REACT, homepageUrl: `https://${'h'.repeat(493)}` }),
    error: 'ValidationError',
    field: 'homepageUrl',
  },
  {
    title: 'a project write time that is not a timestamp',
    act: (g) => g.upsertProject({ ...REACT, at: 'yesterday' }),
    error: 'ValidationError',
    field: 'at',
  },
  // dependencies
  { title: 'a self-edge', act: (g) => g.addDependency(REACT, REACT), error: 'ValidationError', field: 'to' },
  {
    title: 'a self-edge spelled in different cases',
    act: (g) => g.addDependency({ ecosystem: 'NPM', name: 'React' }, { ecosystem: 'npm', name: 'REACT' }),
    error: 'ValidationError',
    field: 'to',
  },
  {
    title: 'an edge from an unknown project',
    act: (g) => g.addDependency(MISSING, LEFT_PAD),
    error: 'NotFoundError',
    field: 'from',
  },
  {
    title: 'an edge to an unknown project',
    act: (g) => g.addDependency(LEFT_PAD, MISSING),
    error: 'NotFoundError',
    field: 'to',
  },
  {
    title: 'an edge time that is not a timestamp',
    act: (g) => g.addDependency(LEFT_PAD, REACT, { at: '2026-13-01T00:00:00Z' }),
    error: 'ValidationError',
    field: 'at',
  },
  {
    title: 'an edge whose from.ecosystem is 101 characters',
    act: (g) => g.addDependency({ ecosystem: 'e'.repeat(101), name: 'x' }, REACT),
    error: 'ValidationError',
    field: 'from.ecosystem',
  },
  // contributors
  {
    title: 'a contributor name of 256 emoji',
    act: (g) => g.createContributor({ name: '😀'.repeat(256) }),
    error: 'ValidationError',
    field: 'name',
  },
  {
    title: 'a contributor name containing NUL',
    act: (g) => g.createContributor({ name: 'Ada\u0000' }),
    error: 'ValidationError',
    field: 'name',
  },
  {
    title: 'a contributor email of 256 characters',
    act: (g) => g.createContributor({ name: 'Ada', email: 'e'.repeat(256) }),
    error: 'ValidationError',
    field: 'email',
  },
  {
    title: 'a contributor id that is not a UUID',
    act: (g) => g.createContributor({ id: 'not-a-uuid', name: 'Ada' }),
    error: 'ValidationError',
    field: 'id',
  },
  {
    title: 'a duplicate contributor id',
    act: (g) => g.createContributor({ id: ADA, name: 'Ada again' }),
    error: 'ConflictError',
    field: 'id',
  },
  {
    title: 'a duplicate contributor id in upper case',
    act: (g) => g.createContributor({ id: ADA.toUpperCase(), name: 'Ada again' }),
    error: 'ConflictError',
    field: 'id',
  },
  {
    title: 'array metadata',
    act: (g) => g.createContributor({ name: 'Ada', metadata: raw([1, 2]) }),
    error: 'ValidationError',
    field: 'metadata',
  },
  {
    title: 'string metadata',
    act: (g) => g.createContributor({ name: 'Ada', metadata: raw('{"a":1}') }),
    error: 'ValidationError',
    field: 'metadata',
  },
  {
    title: 'metadata with NUL in a nested string',
    act: (g) => g.createContributor({ name: 'Ada', metadata: { a: { b: 'x\u0000y' } } }),
    error: 'ValidationError',
    field: 'metadata.a.b',
  },
  {
    title: 'metadata with a lone surrogate in an array',
    act: (g) => g.createContributor({ name: 'Ada', metadata: { list: ['ok', 'bad \udc00'] } }),
    error: 'ValidationError',
    field: 'metadata.list[1]',
  },
  {
    title: 'metadata with NUL in a nested key',
    act: (g) => g.createContributor({ name: 'Ada', metadata: { nested: { 'k\u0000': 1 } } }),
    error: 'ValidationError',
    field: 'metadata.nested key',
  },
  {
    title: 'metadata with a non-finite number',
    act: (g) => g.createContributor({ name: 'Ada', metadata: { n: Number.NaN } }),
    error: 'ValidationError',
    field: 'metadata.n',
  },
  // assets
  {
    title: 'an assetType of 51 characters',
    act: (g) => g.createAsset({ name: 'Doc', assetType: 't'.repeat(51) }),
    error: 'ValidationError',
    field: 'assetType',
  },
  {
    title: 'a duplicate asset id',
    act: (g) => g.createAsset({ id: DOC, name: 'Doc again', assetType: 'code' }),
    error: 'ConflictError',
    field: 'id',
  },
  {
    title: 'asset metadata with a lone surrogate',
    act: (g) => g.createAsset({ name: 'Doc', assetType: 'code', metadata: { s: '\ud83d' } }),
    error: 'ValidationError',
    field: 'metadata.s',
  },
  // contributions
  {
    title: 'a cost with 3 significant decimals',
    act: (g) => g.createContribution(contribution({ costAmount: '1.005' })),
    error: 'ValidationError',
    field: 'costAmount',
  },
  {
    title: 'a negative cost string',
    act: (g) => g.createContribution(contribution({ costAmount: '-1' })),
    error: 'ValidationError',
    field: 'costAmount',
  },
  {
    title: 'a negative cost number',
    act: (g) => g.createContribution(contribution({ costAmount: -0.01 })),
    error: 'ValidationError',
    field: 'costAmount',
  },
  {
    title: 'a cost that is not a number',
    act: (g) => g.createContribution(contribution({ costAmount: '1,5' })),
    error: 'ValidationError',
    field: 'costAmount',
  },
  {
    title: 'a NaN cost',
    act: (g) => g.createContribution(contribution({ costAmount: Number.NaN })),
    error: 'ValidationError',
    field: 'costAmount',
  },
  {
    title: 'a cost that does not fit NUMERIC(15,2)',
    act: (g) => g.createContribution(contribution({ costAmount: '10000000000000.00' })),
    error: 'ValidationError',
    field: 'costAmount',
  },
  {
    title: 'a cost that would overflow the asset total',
    act: (g) => g.createContribution(contribution({ costAmount: '9999999999999.99' })),
    error: 'ValidationError',
    field: 'costAmount',
  },
  {
    title: 'a coherence score of -0.01',
    act: (g) => g.createContribution(contribution({ coherenceScore: -0.01 })),
    error: 'ValidationError',
    field: 'coherenceScore',
  },
  {
    title: 'a coherence score of 1.01',
    act: (g) => g.createContribution(contribution({ coherenceScore: 1.01 })),
    error: 'ValidationError',
    field: 'coherenceScore',
  },
  {
    title: 'a coherence score with 3 significant decimals',
    act: (g) => g.createContribution(contribution({ coherenceScore: '0.555' })),
    error: 'ValidationError',
    field: 'coherenceScore',
  },
  {
    title: 'a contribution by an unknown contributor',
    act: (g) => g.createContribution(contribution({ contributorId: UNKNOWN })),
    error: 'NotFoundError',
    field: 'contributorId',
  },
  {
    title: 'a contribution to an unknown asset',
    act: (g) => g.createContribution(contribution({ assetId: UNKNOWN })),
    error: 'NotFoundError',
    field: 'assetId',
  },
  {
    title: 'a contributorId that is not a UUID',
    act: (g) => g.createContribution(contribution({ contributorId: 'ada' })),
    error: 'ValidationError',
    field: 'contributorId',
  },
  {
    title: 'a duplicate contribution id',
    act: (g) => g.createContribution(contribution({ id: FIRST_CONTRIBUTION })),
    error: 'ConflictError',
    field: 'id',
  },
  {
    title: 'a contribution timestamp without a time zone',
    act: (g) => g.createContribution(contribution({ timestamp: '2026-03-04T05:06:07' })),
    error: 'ValidationError',
    field: 'timestamp',
  },
  {
    title: 'contribution metadata with NUL',
    act: (g) => g.createContribution(contribution({ metadata: { note: '\u0000' } })),
    error: 'ValidationError',
    field: 'metadata.note',
  },
];

/** Keys of every object in `value`, level by level, that are not in code point order. */
function unsortedKeyPaths(value: unknown, path = '$'): string[] {
  if (Array.isArray(value)) return value.flatMap((item, i) => unsortedKeyPaths(item, `${path}[${i}]`));
  if (typeof value !== 'object' || value === null) return [];
  const keys = Object.keys(value);
  const sorted = [...keys].sort(compareText);
  const here = keys.join('\u0001') === sorted.join('\u0001') ? [] : [path];
  return [
    ...here,
    ...keys.flatMap((key) => unsortedKeyPaths((value as Record<string, unknown>)[key], `${path}.${key}`)),
  ];
}

/** Metadata exercising what JSONB could change: unicode, key order, nesting, numbers. */
const RICH_METADATA: JsonObject = {
  zeta: 'last in code point order among ASCII keys',
  '😀': 'astral key (after U+FF61 by code point, before it by UTF-16 unit)',
  '\uff61': 'halfwidth ideographic full stop key',
  é: 'accented key',
  Alpha: 'upper case sorts before lower case',
  emoji: '👩‍💻🎉🇫🇷',
  cjk: '日本語の文字と한국어',
  rtl: 'שלום עולם مرحبا',
  combining: 'e\u0301 n\u0303 a\u0308\u0304',
  nested: { b: [1, { d: null, c: true }, []], a: { z: false, y: [[]] } },
  numbers: [0.1, 1e21, -0, -1.5, 123456789.125, 1e-7, 0.30000000000000004],
  empty: {},
  t: true,
  f: false,
  n: null,
};

/** RICH_METADATA in canonical form, written in the key order the stores must return. */
const RICH_METADATA_CANONICAL: JsonObject = {
  Alpha: 'upper case sorts before lower case',
  cjk: '日本語の文字と한국어',
  combining: 'e\u0301 n\u0303 a\u0308\u0304',
  emoji: '👩‍💻🎉🇫🇷',
  empty: {},
  f: false,
  n: null,
  nested: { a: { y: [[]], z: false }, b: [1, { c: true, d: null }, []] },
  numbers: [0.1, 1e21, 0, -1.5, 123456789.125, 1e-7, 0.30000000000000004],
  rtl: 'שלום עולם مرحبا',
  t: true,
  zeta: 'last in code point order among ASCII keys',
  é: 'accented key',
  '\uff61': 'halfwidth ideographic full stop key',
  '😀': 'astral key (after U+FF61 by code point, before it by UTF-16 unit)',
};

interface ListedKind {
  readonly kind: 'contributor' | 'asset';
  readonly entity: 'contributors' | 'assets';
  readonly create: (
    graph: Graph,
    fields: { id?: string; at?: string },
  ) => Promise<{ id: string; createdAt: string; updatedAt: string }>;
  readonly get: (graph: Graph, id: string) => Promise<object | null>;
  readonly list: (graph: Graph, limit?: number) => Promise<{ id: string }[]>;
  /** Fields a create leaves at their defaults. */
  readonly defaults: Record<string, unknown>;
}

const LISTED_KINDS: readonly ListedKind[] = [
  {
    kind: 'contributor',
    entity: 'contributors',
    create: (g, fields) => g.createContributor({ name: 'Ada', ...fields }),
    get: (g, id) => g.getContributor(id),
    list: (g, limit) => g.listContributors(limit),
    defaults: { name: 'Ada', email: null, githubUsername: null, walletAddress: null, metadata: {} },
  },
  {
    kind: 'asset',
    entity: 'assets',
    create: (g, fields) => g.createAsset({ name: 'Doc', assetType: 'code', ...fields }),
    get: (g, id) => g.getAsset(id),
    list: (g, limit) => g.listAssets(limit),
    defaults: { name: 'Doc', description: null, assetType: 'code', totalCost: '0.00', metadata: {} },
  },
];

const START = '2026-01-01T00:00:00.000Z';

for (const factory of availableBackends()) {
  describe(`GraphStore contract on ${factory.name}`, () => {
    const backend = useBackend(factory);
    const graph = (): Graph => backend.current.graph;

    describe('projects', () => {
      it('folds ecosystem and name to lowercase and finds the project in any case', async () => {
        const created = await graph().upsertProject({ ecosystem: 'NPM', name: 'React' });
        expect(created).toMatchObject({ ecosystem: 'npm', name: 'react' });
        expect(await graph().getProject({ ecosystem: 'npm', name: 'REACT' })).toEqual(created);
        expect(await graph().getProject({ ecosystem: 'nPm', name: 'react' })).toEqual(created);
        expect((await graph().scanRecords('projects', { limit: 10 })).map((p) => [p.ecosystem, p.name])).toEqual([
          ['npm', 'react'],
        ]);
      });

      it('returns null for an unknown project', async () => {
        expect(await graph().getProject(MISSING)).toBeNull();
      });

      it('replaces description and urls on upsert, keeping createdAt and dependencyCount and stamping updatedAt', async () => {
        const first = await graph().upsertProject({
          ...REACT,
          description: 'old',
          homepageUrl: 'https://react.dev',
          repositoryUrl: 'https://github.com/facebook/react',
        });
        await graph().upsertProject(LEFT_PAD);
        await graph().addDependency(REACT, LEFT_PAD);
        backend.current.clock.set('2026-05-01T12:00:00.000Z');
        const replaced = await graph().upsertProject({ ecosystem: 'NPM', name: 'REACT', description: 'new' });
        const expected = {
          ecosystem: 'npm',
          name: 'react',
          description: 'new',
          homepageUrl: null,
          repositoryUrl: null,
          dependencyCount: 1,
          createdAt: first.createdAt,
          updatedAt: '2026-05-01T12:00:00.000Z',
        };
        expect(replaced).toEqual(expected);
        expect(await graph().getProject(REACT)).toEqual(expected);
      });

      it('stamps a new project with the clock time', async () => {
        const project = await graph().upsertProject(REACT);
        expect(project).toEqual({
          ...REACT,
          description: null,
          homepageUrl: null,
          repositoryUrl: null,
          dependencyCount: 0,
          createdAt: START,
          updatedAt: START,
        });
      });

      it('honours an explicit write time, normalized to UTC', async () => {
        const project = await graph().upsertProject({ ...REACT, at: '2025-12-31T23:00:00.5-01:00' });
        expect(project).toMatchObject({ createdAt: '2026-01-01T00:00:00.500Z', updatedAt: '2026-01-01T00:00:00.500Z' });
        expect(await graph().getProject(REACT)).toEqual(project);
      });

      it('counts projects once per case-insensitive key', async () => {
        expect(await graph().countProjects()).toBe(0);
        for (const name of ['react', 'vue', 'angular', 'REACT', 'Vue'])
          await graph().upsertProject({ ecosystem: 'npm', name });
        expect(await graph().countProjects()).toBe(3);
      });
    });

    describe('search', () => {
      const names = (projects: { ecosystem: string; name: string }[]) =>
        projects.map((p) => `${p.ecosystem}/${p.name}`);

      it('lists name matches first, then description matches, each by (ecosystem, name) in code point order', async () => {
        const projects = [
          { ecosystem: 'pypi', name: 'reactivex', description: null },
          { ecosystem: 'npm', name: 'zzz', description: 'A React-ish thing' },
          { ecosystem: 'npm', name: 'react😀', description: null },
          { ecosystem: 'npm', name: 'react\uff61', description: null },
          { ecosystem: 'cargo', name: 'yew', description: 'like REACT for Rust' },
          { ecosystem: 'npm', name: 'react', description: 'UI library' },
          { ecosystem: 'npm', name: 'preact', description: 'fast react alternative' },
          { ecosystem: 'npm', name: 'vue', description: 'progressive framework' },
        ];
        for (const project of projects) await graph().upsertProject(project);
        const expected = [
          'npm/preact',
          'npm/react',
          'npm/react\uff61',
          'npm/react😀',
          'pypi/reactivex',
          'cargo/yew',
          'npm/zzz',
        ];
        expect(names(await graph().search('react'))).toEqual(expected);
        expect(names(await graph().search('ReAcT'))).toEqual(expected);
      });

      it('matches descriptions case-insensitively beyond ASCII', async () => {
        await graph().upsertProject({ ecosystem: 'npm', name: 'school', description: 'Une ÉCOLE de code' });
        await graph().upsertProject({ ecosystem: 'npm', name: 'other', description: 'ecole without accent' });
        expect(names(await graph().search('école'))).toEqual(['npm/school']);
        expect(names(await graph().search('ÉCOLE'))).toEqual(['npm/school']);
      });

      it.each([
        { query: '%', found: ['npm/a%b'] },
        { query: '_', found: ['npm/a_b'] },
        { query: '\\', found: ['npm/a\\b'] },
        { query: 'a_b', found: ['npm/a_b'] },
        { query: 'a%', found: ['npm/a%b'] },
        { query: '\\b', found: ['npm/a\\b'] },
        { query: 'x', found: ['npm/axb'] },
      ])('matches $query literally, never as a wildcard', async ({ query, found }) => {
        for (const name of ['a%b', 'a_b', 'a\\b', 'axb']) await graph().upsertProject({ ecosystem: 'npm', name });
        expect(names(await graph().search(query))).toEqual(found);
      });

      it('matches wildcard characters literally in descriptions too', async () => {
        await graph().upsertProject({ ecosystem: 'npm', name: 'p1', description: '100% fun' });
        await graph().upsertProject({ ecosystem: 'npm', name: 'p2', description: '100 fun' });
        expect(names(await graph().search('0%'))).toEqual(['npm/p1']);
      });

      it('returns 20 matches by default and honours an explicit limit', async () => {
        for (let i = 24; i >= 0; i--)
          await graph().upsertProject({ ecosystem: 'npm', name: `pkg-${String(i).padStart(2, '0')}` });
        const all = Array.from({ length: 25 }, (_, i) => `npm/pkg-${String(i).padStart(2, '0')}`);
        expect(names(await graph().search('pkg'))).toEqual(all.slice(0, 20));
        expect(names(await graph().search('pkg', 5))).toEqual(all.slice(0, 5));
        expect(names(await graph().search('pkg', 1000))).toEqual(all);
      });

      it('returns nothing when nothing matches', async () => {
        await graph().upsertProject(REACT);
        expect(await graph().search('angular')).toEqual([]);
      });

      it.each([0, 1001, 1.5, -1])('rejects limit %s naming the field limit', async (limit) => {
        await graph().upsertProject(REACT);
        await expect(graph().search('react', limit)).rejects.toMatchObject({ name: 'ValidationError', field: 'limit' });
      });
    });

    describe('dependencies', () => {
      it('is idempotent: a repeated edge returns the first edge and counts once', async () => {
        await graph().upsertProject(REACT);
        await graph().upsertProject(LEFT_PAD);
        const first = await graph().addDependency(REACT, LEFT_PAD, { at: '2026-02-01T00:00:00.000Z' });
        const again = await graph().addDependency(
          { ecosystem: 'NPM', name: 'React' },
          { ecosystem: 'npm', name: 'LEFT-PAD' },
          { at: '2026-03-01T00:00:00.000Z' },
        );
        expect(first).toEqual({ from: REACT, to: LEFT_PAD, createdAt: '2026-02-01T00:00:00.000Z' });
        expect(again).toEqual(first);
        expect(await graph().getProject(REACT)).toMatchObject({
          dependencyCount: 1,
          updatedAt: '2026-02-01T00:00:00.000Z',
        });
        expect(await graph().scanRecords('dependencies', { limit: 10 })).toEqual([first]);
        expect(await graph().countDependents(LEFT_PAD)).toBe(1);
      });

      it('keeps dependencyCount equal to the number of outgoing edges', async () => {
        const targets = ['a', 'b', 'c', 'd'].map((name) => ({ ecosystem: 'npm', name }));
        for (const project of [REACT, ...targets]) await graph().upsertProject(project);
        for (const target of [...targets, targets[0]!, targets[2]!]) await graph().addDependency(REACT, target);
        await graph().addDependency(targets[0]!, targets[1]!);
        expect(await graph().getProject(REACT)).toMatchObject({ dependencyCount: 4 });
        expect(await graph().getProject(targets[0]!)).toMatchObject({ dependencyCount: 1 });
        expect(await graph().getProject(targets[1]!)).toMatchObject({ dependencyCount: 0 });
        expect(await graph().scanRecords('dependencies', { limit: 100 })).toHaveLength(5);
      });

      it("sets the source project's updatedAt to the edge time and leaves the target alone", async () => {
        const source = await graph().upsertProject({ ...REACT, at: '2026-01-10T00:00:00.000Z' });
        const target = await graph().upsertProject({ ...LEFT_PAD, at: '2026-01-11T00:00:00.000Z' });
        await graph().addDependency(REACT, LEFT_PAD, { at: '2026-04-05T06:07:08.009+01:00' });
        expect(await graph().getProject(REACT)).toEqual({
          ...source,
          dependencyCount: 1,
          updatedAt: '2026-04-05T05:07:08.009Z',
        });
        expect(await graph().getProject(LEFT_PAD)).toEqual(target);
      });

      it('stamps an edge with the clock time when no time is given', async () => {
        await graph().upsertProject(REACT);
        await graph().upsertProject(LEFT_PAD);
        backend.current.clock.set('2026-07-01T00:00:00.000Z');
        const edge = await graph().addDependency(REACT, LEFT_PAD);
        expect(edge.createdAt).toBe('2026-07-01T00:00:00.000Z');
        expect(await graph().getProject(REACT)).toMatchObject({ updatedAt: '2026-07-01T00:00:00.000Z' });
      });

      it('counts incoming edges as dependents, and 0 for an unknown project', async () => {
        for (const name of ['core', 'x', 'y', 'z']) await graph().upsertProject({ ecosystem: 'npm', name });
        for (const name of ['x', 'y', 'z'])
          await graph().addDependency({ ecosystem: 'npm', name }, { ecosystem: 'npm', name: 'core' });
        await graph().addDependency({ ecosystem: 'npm', name: 'core' }, { ecosystem: 'npm', name: 'x' });
        expect(await graph().countDependents({ ecosystem: 'NPM', name: 'Core' })).toBe(3);
        expect(await graph().countDependents({ ecosystem: 'npm', name: 'x' })).toBe(1);
        expect(await graph().countDependents({ ecosystem: 'npm', name: 'y' })).toBe(0);
        expect(await graph().countDependents(MISSING)).toBe(0);
      });
    });

    describe.each(LISTED_KINDS)('$entity', (kind) => {
      it(`creates a ${kind.kind} with a generated id and the clock time, and gets it back`, async () => {
        const created = await kind.create(graph(), {});
        expect(created).toEqual({ id: uuid('1'), ...kind.defaults, createdAt: START, updatedAt: START });
        expect(await kind.get(graph(), created.id)).toEqual(created);
      });

      it(`returns null for an unknown ${kind.kind} id`, async () => {
        await kind.create(graph(), {});
        expect(await kind.get(graph(), UNKNOWN)).toBeNull();
      });

      it(`lists ${kind.entity} newest first, ties by id ascending`, async () => {
        const t0 = '2026-02-01T00:00:00.000Z';
        const t1 = '2026-02-02T00:00:00.000Z';
        const t2 = '2026-02-03T00:00:00.000Z';
        await kind.create(graph(), { id: uuid('c'), at: t1 });
        await kind.create(graph(), { id: uuid('b'), at: t2 });
        await kind.create(graph(), { id: uuid('d'), at: t0 });
        await kind.create(graph(), { id: uuid('a'), at: t2 });
        await kind.create(graph(), { id: uuid('e'), at: '2026-02-03T01:00:00.000+01:00' });
        const ids = (await kind.list(graph())).map((r) => r.id);
        expect(ids).toEqual([uuid('a'), uuid('b'), uuid('e'), uuid('c'), uuid('d')]);
        expect((await kind.list(graph(), 2)).map((r) => r.id)).toEqual([uuid('a'), uuid('b')]);
      });

      it(`lists at most 100 ${kind.entity} by default`, async () => {
        for (let i = 0; i < 101; i++) await kind.create(graph(), {});
        const listed = await kind.list(graph());
        expect(listed).toHaveLength(100);
        expect(listed.map((r) => r.id)).not.toContain(uuid('1'));
      });

      it.each([0, 1001, 1.5])(`rejects list limit %s naming the field limit`, async (limit) => {
        await expect(kind.list(graph(), limit)).rejects.toMatchObject({ name: 'ValidationError', field: 'limit' });
      });

      it.each([
        { spelling: 'the same id', id: uuid('abc') },
        { spelling: 'the id in upper case', id: uuid('abc').toUpperCase() },
      ])(`rejects a second ${kind.kind} with $spelling as a ConflictError on id, writing nothing`, async ({ id }) => {
        const first = await kind.create(graph(), { id: uuid('abc'), at: '2026-02-01T00:00:00.000Z' });
        await expectRejectedWithoutWrites(
          graph(),
          () => kind.create(graph(), { id, at: '2026-03-01T00:00:00.000Z' }),
          'ConflictError',
          'id',
        );
        expect(await kind.get(graph(), first.id)).toEqual(first);
      });

      it(`rejects a ${kind.kind} id that is not a UUID when reading`, async () => {
        await expect(kind.get(graph(), 'nope')).rejects.toMatchObject({ name: 'ValidationError', field: 'id' });
      });
    });

    describe('contributions', () => {
      const seedPeople = async () => {
        await graph().createContributor({ id: ADA, name: 'Ada' });
        await graph().createAsset({ id: DOC, name: 'Doc', assetType: 'code', at: '2026-01-15T00:00:00.000Z' });
      };

      it.each([
        { costAmount: '5', coherenceScore: 0.5, stored: ['5.00', '0.50'] },
        { costAmount: '1.500', coherenceScore: '1', stored: ['1.50', '1.00'] },
        { costAmount: 0, coherenceScore: '0', stored: ['0.00', '0.00'] },
        { costAmount: 12.3, coherenceScore: '0.05', stored: ['12.30', '0.05'] },
        { costAmount: ' 7.1 ', coherenceScore: 0.99, stored: ['7.10', '0.99'] },
        { costAmount: '9999999999999.99', coherenceScore: '1.000', stored: ['9999999999999.99', '1.00'] },
      ])(
        'stores cost $costAmount and score $coherenceScore as canonical strings $stored',
        async ({ costAmount, coherenceScore, stored }) => {
          await seedPeople();
          const created = await graph().createContribution({
            contributorId: ADA,
            assetId: DOC,
            costAmount,
            coherenceScore,
          });
          expect([created.costAmount, created.coherenceScore]).toEqual(stored);
          expect(await graph().getContribution(created.id)).toEqual(created);
          expect((await graph().getAsset(DOC))!.totalCost).toBe(stored[0]);
        },
      );

      it('totals 1000 contributions of 0.10 to exactly 100.00', async () => {
        await seedPeople();
        for (let i = 0; i < 1000; i++)
          await graph().createContribution({ contributorId: ADA, assetId: DOC, costAmount: '0.10', coherenceScore: 1 });
        expect((await graph().getAsset(DOC))!.totalCost).toBe('100.00');
        expect(await graph().listContributionsByAsset(DOC)).toHaveLength(1000);
      });

      it('totals 0.1 + 0.2 given as numbers to exactly 0.30', async () => {
        await seedPeople();
        await graph().createContribution({ contributorId: ADA, assetId: DOC, costAmount: 0.1, coherenceScore: 1 });
        await graph().createContribution({ contributorId: ADA, assetId: DOC, costAmount: 0.2, coherenceScore: 1 });
        expect((await graph().getAsset(DOC))!.totalCost).toBe('0.30');
      });

      it('totals 100 concurrent contributions on one asset exactly', async () => {
        await seedPeople();
        await Promise.all(
          Array.from({ length: 100 }, (_, i) =>
            graph().createContribution({
              contributorId: ADA,
              assetId: DOC,
              costAmount: `${i}.01`,
              coherenceScore: 0.5,
            }),
          ),
        );
        // 0 + 1 + ... + 99 = 4950, plus 100 * 0.01.
        expect((await graph().getAsset(DOC))!.totalCost).toBe('4951.00');
        expect(await graph().listContributionsByAsset(DOC)).toHaveLength(100);
      });

      it("sets the asset's updatedAt to the contribution's timestamp and keeps its createdAt", async () => {
        await seedPeople();
        const asset = (await graph().getAsset(DOC))!;
        const made = await graph().createContribution({
          contributorId: ADA,
          assetId: DOC,
          costAmount: '2.50',
          coherenceScore: 1,
          timestamp: '2026-06-01T10:00:00.123+02:00',
        });
        expect(made.timestamp).toBe('2026-06-01T08:00:00.123Z');
        expect(await graph().getAsset(DOC)).toEqual({
          ...asset,
          totalCost: '2.50',
          updatedAt: '2026-06-01T08:00:00.123Z',
        });
      });

      it('rejects a contribution that would overflow the NUMERIC(15,2) total, writing nothing', async () => {
        await seedPeople();
        const max = '9999999999999.99';
        await graph().createContribution({ contributorId: ADA, assetId: DOC, costAmount: max, coherenceScore: 1 });
        await expectRejectedWithoutWrites(
          graph(),
          () => graph().createContribution({ contributorId: ADA, assetId: DOC, costAmount: max, coherenceScore: 1 }),
          'ValidationError',
          'costAmount',
        );
        expect((await graph().getAsset(DOC))!.totalCost).toBe(max);
      });

      it.each([
        { field: 'contributorId', input: { contributorId: UNKNOWN, assetId: DOC } },
        { field: 'assetId', input: { contributorId: ADA, assetId: UNKNOWN } },
      ])('rejects an unknown $field as NotFoundError, leaving the asset total unchanged', async ({ field, input }) => {
        await seedPeople();
        await graph().createContribution({ contributorId: ADA, assetId: DOC, costAmount: '3.00', coherenceScore: 1 });
        await expectRejectedWithoutWrites(
          graph(),
          () => graph().createContribution({ ...input, costAmount: '1.00', coherenceScore: 1 }),
          'NotFoundError',
          field,
        );
        expect((await graph().getAsset(DOC))!.totalCost).toBe('3.00');
      });

      it('lists contributions by asset and by contributor oldest first, ties by id', async () => {
        await graph().createContributor({ id: ADA, name: 'Ada' });
        await graph().createContributor({ id: BOB, name: 'Bob' });
        await graph().createAsset({ id: DOC, name: 'Doc', assetType: 'code' });
        await graph().createAsset({ id: IMG, name: 'Img', assetType: 'image' });
        const t1 = '2026-03-01T00:00:00.000Z';
        const t2 = '2026-03-02T00:00:00.000Z';
        const t3 = '2026-03-03T00:00:00.000Z';
        const writes = [
          { id: uuid('c0'), contributorId: ADA, assetId: DOC, timestamp: t3 },
          { id: uuid('c3'), contributorId: ADA, assetId: DOC, timestamp: t1 },
          { id: uuid('c1'), contributorId: ADA, assetId: IMG, timestamp: t2 },
          { id: uuid('c2'), contributorId: BOB, assetId: DOC, timestamp: '2026-03-01T01:00:00.000+01:00' },
          { id: uuid('c4'), contributorId: BOB, assetId: IMG, timestamp: t1 },
        ];
        for (const write of writes)
          await graph().createContribution({ ...write, costAmount: '1.00', coherenceScore: 1 });
        const ids = (list: { id: string }[]) => list.map((c) => c.id);
        expect(ids(await graph().listContributionsByAsset(DOC))).toEqual([uuid('c2'), uuid('c3'), uuid('c0')]);
        expect(ids(await graph().listContributionsByAsset(IMG))).toEqual([uuid('c4'), uuid('c1')]);
        expect(ids(await graph().listContributionsByContributor(ADA))).toEqual([uuid('c3'), uuid('c1'), uuid('c0')]);
        expect(ids(await graph().listContributionsByContributor(BOB))).toEqual([uuid('c2'), uuid('c4')]);
        expect(await graph().listContributionsByAsset(UNKNOWN)).toEqual([]);
        expect(await graph().getContribution(uuid('c1'))).toEqual({
          id: uuid('c1'),
          contributorId: ADA,
          assetId: IMG,
          costAmount: '1.00',
          coherenceScore: '1.00',
          metadata: {},
          timestamp: t2,
        });
      });
    });

    describe('JSON metadata', () => {
      it('round-trips unicode, nesting, arrays, numbers, booleans and nulls in canonical key order', async () => {
        const contributor = await graph().createContributor({ id: ADA, name: 'Ada', metadata: RICH_METADATA });
        const asset = await graph().createAsset({ id: DOC, name: 'Doc', assetType: 'code', metadata: RICH_METADATA });
        const made = await graph().createContribution({
          contributorId: ADA,
          assetId: DOC,
          costAmount: 1,
          coherenceScore: 1,
          metadata: RICH_METADATA,
        });
        const stored = [
          contributor.metadata,
          asset.metadata,
          made.metadata,
          (await graph().getContributor(ADA))!.metadata,
          (await graph().getAsset(DOC))!.metadata,
          (await graph().getContribution(made.id))!.metadata,
          (await graph().scanRecords('contributors', { limit: 1 }))[0]!.metadata,
        ];
        for (const metadata of stored) {
          expect(metadata).toEqual(RICH_METADATA_CANONICAL);
          expect(JSON.stringify(metadata)).toBe(JSON.stringify(RICH_METADATA_CANONICAL));
          expect(unsortedKeyPaths(metadata)).toEqual([]);
          expect(Object.is((metadata.numbers as number[])[2], 0)).toBe(true);
        }
      });

      it('stores absent and null metadata as an empty object', async () => {
        await graph().createContributor({ id: ADA, name: 'Ada' });
        await graph().createContributor({ id: BOB, name: 'Bob', metadata: null });
        expect((await graph().getContributor(ADA))!.metadata).toEqual({});
        expect((await graph().getContributor(BOB))!.metadata).toEqual({});
      });

      it('round-trips a key named __proto__ as an ordinary key', async () => {
        const metadata = JSON.parse('{"__proto__": {"polluted": true}, "a": 1}') as JsonObject;
        const created = await graph().createContributor({ id: ADA, name: 'Ada', metadata });
        const read = (await graph().getContributor(ADA))!;
        for (const m of [created.metadata, read.metadata]) {
          expect(Object.keys(m)).toEqual(['__proto__', 'a']);
          expect(JSON.stringify(m)).toBe('{"__proto__":{"polluted":true},"a":1}');
        }
      });
    });

    describe('timestamps', () => {
      const offsetTime = '2026-03-04T05:06:07.891+02:00';
      const utcTime = '2026-03-04T03:06:07.891Z';

      it.each([
        {
          entity: 'contributors',
          write: (g: Graph) => g.createContributor({ id: ADA, name: 'Ada', at: offsetTime }),
          read: (g: Graph) => g.getContributor(ADA),
          fields: ['createdAt', 'updatedAt'],
        },
        {
          entity: 'assets',
          write: (g: Graph) => g.createAsset({ id: DOC, name: 'Doc', assetType: 'code', at: offsetTime }),
          read: (g: Graph) => g.getAsset(DOC),
          fields: ['createdAt', 'updatedAt'],
        },
        {
          entity: 'projects',
          write: (g: Graph) => g.upsertProject({ ...REACT, at: offsetTime }),
          read: (g: Graph) => g.getProject(REACT),
          fields: ['createdAt', 'updatedAt'],
        },
        {
          entity: 'contributions',
          write: async (g: Graph) => {
            await g.createContributor({ id: ADA, name: 'Ada' });
            await g.createAsset({ id: DOC, name: 'Doc', assetType: 'code' });
            return g.createContribution({
              id: FIRST_CONTRIBUTION,
              contributorId: ADA,
              assetId: DOC,
              costAmount: 1,
              coherenceScore: 1,
              timestamp: offsetTime,
            });
          },
          read: (g: Graph) => g.getContribution(FIRST_CONTRIBUTION),
          fields: ['timestamp'],
        },
      ])(
        'returns an explicit time on $entity in UTC with milliseconds and reads it back identically',
        async ({ write, read, fields }) => {
          const written = (await write(graph())) as unknown as Record<string, unknown>;
          for (const field of fields) expect(written[field]).toBe(utcTime);
          expect(await read(graph())).toEqual(written);
        },
      );

      it('returns an explicit edge time in UTC and reads it back identically', async () => {
        await graph().upsertProject(REACT);
        await graph().upsertProject(LEFT_PAD);
        const edge = await graph().addDependency(REACT, LEFT_PAD, { at: offsetTime });
        expect(edge.createdAt).toBe(utcTime);
        expect(await graph().scanRecords('dependencies', { limit: 10 })).toEqual([edge]);
      });

      it('drops digits below the millisecond identically on every store', async () => {
        const created = await graph().createContributor({
          id: ADA,
          name: 'Ada',
          at: '2026-03-04T05:06:07.891999+02:00',
        });
        expect(created.createdAt).toBe(utcTime);
        expect(await graph().getContributor(ADA)).toEqual(created);
      });

      it.each([
        'yesterday',
        '',
        '2026-03-04',
        '2026-03-04T05:06:07',
        '2026-13-01T00:00:00Z',
        '2026-02-30T00:00:00Z',
        '0000-01-01T00:00:00Z',
        '9999-12-31T23:00:00-02:00',
        1_772_600_000_000,
      ])('rejects the write time %j naming the field at, writing nothing', async (at) => {
        await seedWorld(graph());
        await expectRejectedWithoutWrites(
          graph(),
          () => graph().createContributor({ name: 'Ada', at: raw(at) }),
          'ValidationError',
          'at',
        );
      });
    });

    describe('text limits count code points', () => {
      it('accepts values at their VARCHAR limit counted in code points and returns them unchanged', async () => {
        const name = '😀'.repeat(255);
        const contributor = await graph().createContributor({ id: ADA, name, email: '👩‍💻'.repeat(85) });
        expect(contributor.name).toBe(name);
        expect(await graph().getContributor(ADA)).toEqual(contributor);
        const ecosystem = '🦀'.repeat(100);
        const project = await graph().upsertProject({ ecosystem, name: 'é'.repeat(255) });
        expect(await graph().getProject({ ecosystem, name: 'É'.repeat(255) })).toEqual(project);
      });
    });

    describe('invalid input', () => {
      it.each(INVALID_INPUTS)(
        'rejects $title as $error on field $field and writes nothing',
        async ({ act, error, field }) => {
          await seedWorld(graph());
          await expectRejectedWithoutWrites(graph(), () => act(graph()), error, field);
        },
      );
    });
  });
}
