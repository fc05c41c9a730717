import type { EventEmitter } from 'node:events';
import { mkdtemp, rename, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Registry } from 'prom-client';
import type { ClientFeaturesResponse } from 'unleash-client';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { EnvFlagSource } from '../../flags/env-flags.js';
import { FileFlagSource } from '../../flags/file-flags.js';
import { FlagState } from '../../flags/flag-state.js';
import { ManualFlagSource } from '../../flags/manual-flags.js';
import { DEFAULT_ROLLOUT_GROUP, type FlagSource, type MigrationFlags } from '../../flags/migration-flags.js';
import { READ_TOGGLE, STAGE_TOGGLE, UnleashFlagSource } from '../../flags/unleash-flags.js';
import { DualWriteMetrics, METRIC } from '../../src/dualwrite/metrics.js';
import { STAGES, type Stage } from '../../src/ports/stage.js';
import { loadConfig } from '../../src/runtime/config.js';
import { eventually } from '../support/eventually.js';

const BOOTSTRAP_FILE = fileURLToPath(new URL('../../flags/unleash-bootstrap.json', import.meta.url));
/** Nothing listens on port 1: every fetch is refused. */
const UNREACHABLE = 'http://127.0.0.1:1/api/';

const flags = (stage: Stage, readPercent = 0): MigrationFlags => ({
  stage,
  readPercent,
  rolloutGroup: DEFAULT_ROLLOUT_GROUP,
});

/** Errors a source reported through onError, with the source name they came with. */
function errorLog() {
  const errors: { source: string; error: unknown }[] = [];
  return { errors, onError: (source: string, error: unknown) => void errors.push({ source, error }) };
}

/** Counts notifications of a source or FlagState. */
function notifications(target: { subscribe(listener: () => void): () => void }) {
  const counter = { count: 0 };
  target.subscribe(() => counter.count++);
  return counter;
}

describe('EnvFlagSource', () => {
  it('has no flags when neither DUAL_WRITE_MODE nor READ_FROM_POSTGRES_PERCENT is set', () => {
    expect(new EnvFlagSource(loadConfig({ PATH: '/usr/bin' }).flags.env).current()).toBeUndefined();
  });

  it.each<[string, Stage]>([
    ...STAGES.map((stage): [string, Stage] => [stage, stage]),
    ['true', 'dual-write'],
    ['false', 'memory-only'],
  ])('reads DUAL_WRITE_MODE=%s as stage %s with no reads from PostgreSQL', (value, stage) => {
    expect(new EnvFlagSource(loadConfig({ DUAL_WRITE_MODE: value }).flags.env).current()).toEqual(flags(stage));
  });

  it.each([
    [{ DUAL_WRITE_MODE: 'read-shift', READ_FROM_POSTGRES_PERCENT: '25' }, flags('read-shift', 25)],
    [{ DUAL_WRITE_MODE: 'true', READ_FROM_POSTGRES_PERCENT: '100' }, flags('dual-write', 100)],
    [{ DUAL_WRITE_MODE: 'dual-write', READ_FROM_POSTGRES_PERCENT: '0' }, flags('dual-write', 0)],
    [{ READ_FROM_POSTGRES_PERCENT: '10' }, flags('memory-only', 10)],
  ])('reads %j as %j', (env, expected) => {
    expect(new EnvFlagSource(loadConfig(env).flags.env).current()).toEqual(expected);
  });

  it.each([
    [{ DUAL_WRITE_MODE: 'dualwrite' }, 'DUAL_WRITE_MODE'],
    [{ DUAL_WRITE_MODE: 'yes' }, 'DUAL_WRITE_MODE'],
    [{ DUAL_WRITE_MODE: 'Dual-Write' }, 'DUAL_WRITE_MODE'],
    [{ DUAL_WRITE_MODE: 'dual-write', READ_FROM_POSTGRES_PERCENT: '101' }, 'READ_FROM_POSTGRES_PERCENT'],
    [{ DUAL_WRITE_MODE: 'dual-write', READ_FROM_POSTGRES_PERCENT: '-1' }, 'READ_FROM_POSTGRES_PERCENT'],
    [{ DUAL_WRITE_MODE: 'dual-write', READ_FROM_POSTGRES_PERCENT: '12.5' }, 'READ_FROM_POSTGRES_PERCENT'],
    [{ DUAL_WRITE_MODE: 'dual-write', READ_FROM_POSTGRES_PERCENT: 'ten' }, 'READ_FROM_POSTGRES_PERCENT'],
    [{ READ_FROM_POSTGRES_PERCENT: ' ' }, 'READ_FROM_POSTGRES_PERCENT'],
  ])('refuses %j with a TypeError naming %s', (env, variable) => {
    let thrown: unknown;
    try {
      new EnvFlagSource(loadConfig(env).flags.env);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(TypeError);
    expect((thrown as TypeError).message).toContain(variable);
  });
});

describe('FileFlagSource', () => {
  let dir: string;
  let path: string;
  const opened: FlagSource[] = [];
  const open = (onError?: (source: string, error: unknown) => void) => {
    const source = new FileFlagSource({ path, pollMs: 50, onError });
    opened.push(source);
    return source;
  };
  /** Replaces the file the way atomic writers do: a temp file renamed over it. */
  const replace = async (content: string) => {
    await writeFile(`${path}.tmp`, content);
    await rename(`${path}.tmp`, path);
  };

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'dw-flags-'));
    path = join(dir, 'flags.json');
  });
  afterEach(async () => {
    for (const source of opened.splice(0)) await source.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('reads stage, percentage and rollout group from the file', async () => {
    await writeFile(path, JSON.stringify({ stage: 'read-shift', readFromPostgresPercent: 10, rolloutGroup: 'g1' }));
    expect(open().current()).toEqual({ stage: 'read-shift', readPercent: 10, rolloutGroup: 'g1' });
  });

  it('has no flags and reports nothing while the file does not exist, and picks it up once created', async () => {
    const { errors, onError } = errorLog();
    const source = open(onError);
    const seen = notifications(source);
    // Time passing is the point: four polls (every 50 ms) of the missing file report nothing.
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(source.current()).toBeUndefined();
    expect(errors).toEqual([]);
    await replace(JSON.stringify({ stage: 'dual-write' }));
    await eventually(() => expect(source.current(), 'the flags of the created file').toBeDefined());
    expect(source.current()).toEqual(flags('dual-write'));
    expect(seen.count).toBe(1);
  });

  it.each([
    ['edited in place', (content: string) => writeFile(path, content)],
    ['replaced by write-temp-and-rename', (content: string) => replace(content)],
  ])('picks up a file %s without a restart and notifies subscribers', async (_how, edit) => {
    await writeFile(path, JSON.stringify({ stage: 'dual-write' }));
    const source = open();
    const seen = notifications(source);
    await edit(JSON.stringify({ stage: 'read-shift', readFromPostgresPercent: 40 }));
    await eventually(() => expect(seen.count, 'change notifications').toBeGreaterThan(0));
    expect(source.current()).toEqual(flags('read-shift', 40));
    await edit(JSON.stringify({ stage: 'memory-only' }));
    await eventually(() => expect(source.current()?.stage, 'the rollback edit').toBe('memory-only'));
    expect(source.current()).toEqual(flags('memory-only'));
    expect(seen.count).toBe(2);
  });

  it.each([
    ['bad JSON', '{"stage": "dual-write",', SyntaxError],
    ['an unknown stage', JSON.stringify({ stage: 'dual_write' }), TypeError],
    ['a percentage of 101', JSON.stringify({ stage: 'read-shift', readFromPostgresPercent: 101 }), TypeError],
    ['a fractional percentage', JSON.stringify({ stage: 'read-shift', readFromPostgresPercent: 2.5 }), TypeError],
  ])('keeps the last known flags and calls onError after an edit with %s', async (_what, content, errorClass) => {
    await writeFile(path, JSON.stringify({ stage: 'read-shift', readFromPostgresPercent: 30 }));
    const { errors, onError } = errorLog();
    const source = open(onError);
    const seen = notifications(source);
    await replace(content);
    await eventually(() => expect(errors, 'errors reported to onError').not.toHaveLength(0));
    expect(errors[0]!.source).toBe('file');
    expect(errors[0]!.error).toBeInstanceOf(errorClass);
    expect(source.current()).toEqual(flags('read-shift', 30));
    expect(seen.count).toBe(0);
  });

  it('keeps the last known flags and calls onError when the file is deleted', async () => {
    await writeFile(path, JSON.stringify({ stage: 'postgres-primary' }));
    const { errors, onError } = errorLog();
    const source = open(onError);
    await unlink(path);
    await eventually(() => expect(errors, 'errors reported to onError').not.toHaveLength(0));
    expect(errors[0]).toMatchObject({ source: 'file', error: { code: 'ENOENT' } });
    expect(source.current()).toEqual(flags('postgres-primary'));
  });

  it('follows a valid edit made after an invalid one', async () => {
    await writeFile(path, JSON.stringify({ stage: 'dual-write' }));
    const { errors, onError } = errorLog();
    const source = open(onError);
    await replace('not json');
    await eventually(() => expect(errors, 'errors reported to onError').not.toHaveLength(0));
    await replace(JSON.stringify({ stage: 'read-shift', readFromPostgresPercent: 5 }));
    await eventually(() => expect(source.current()?.stage, 'the valid edit').toBe('read-shift'));
    expect(source.current()).toEqual(flags('read-shift', 5));
  });
});

describe('FlagState', () => {
  let dir: string;
  const states: FlagState[] = [];
  const state = (sources: FlagSource[], options?: ConstructorParameters<typeof FlagState>[1]) => {
    const created = new FlagState(sources, options);
    states.push(created);
    return created;
  };

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'dw-flagstate-'));
  });
  afterEach(async () => {
    for (const created of states.splice(0)) await created.close();
    await rm(dir, { recursive: true, force: true });
  });

  /** manual, file and env sources; undefined means that source has no flags. */
  async function sources(manual?: Stage, file?: Stage, env?: Stage): Promise<FlagSource[]> {
    const path = join(dir, 'flags.json');
    if (file) await writeFile(path, JSON.stringify({ stage: file }));
    return [
      new ManualFlagSource(manual ? { stage: manual } : undefined),
      new FileFlagSource({ path, pollMs: 50 }),
      new EnvFlagSource(loadConfig(env ? { DUAL_WRITE_MODE: env } : {}).flags.env),
    ];
  }

  it.each([
    ['postgres-primary', 'read-shift', 'dual-write', 'manual', 'postgres-primary', 100],
    [undefined, 'read-shift', 'dual-write', 'file', 'read-shift', 0],
    [undefined, undefined, 'dual-write', 'env', 'dual-write', 0],
    [undefined, undefined, undefined, 'default', 'memory-only', 0],
  ] as const)(
    'with manual=%s, file=%s, env=%s the %s source wins with stage %s',
    async (manual, file, env, source, stage, readPercent) => {
      const current = state(await sources(manual, file, env)).current;
      expect(current).toEqual({ stage, readPercent, rolloutGroup: DEFAULT_ROLLOUT_GROUP, source });
    },
  );

  it('switches to a higher-priority source as soon as it gets flags, and notifies subscribers', async () => {
    const [manual, ...rest] = await sources(undefined, 'dual-write', 'memory-only');
    const flagState = state([manual!, ...rest]);
    const seen = notifications(flagState);
    expect(flagState.current.source).toBe('file');
    (manual as ManualFlagSource).set({ stage: 'postgres-primary' });
    expect(flagState.current).toMatchObject({ stage: 'postgres-primary', source: 'manual' });
    expect(seen.count).toBe(1);
  });

  it('does not notify subscribers when a source repeats the flags in force', () => {
    const manual = new ManualFlagSource({ stage: 'dual-write' });
    const flagState = state([manual]);
    const seen = notifications(flagState);
    manual.set({ stage: 'dual-write', readPercent: 0 });
    expect(seen.count).toBe(0);
  });

  it.each([
    ['memory-only', 0, 'memory-only', 0],
    ['dual-write', 0, 'dual-write', 0],
    ['read-shift', 0, 'read-shift', 0],
    ['read-shift', 40, 'read-shift', 40],
    ['read-shift', 100, 'read-shift', 100],
    ['postgres-primary', 0, 'postgres-primary', 100],
    ['postgres-primary', 40, 'postgres-primary', 100],
    ['postgres-only', 0, 'postgres-only', 100],
  ] as const)(
    'requested %s with percentage %i runs %s with an effective read percentage of %i',
    (stage, readPercent, effective, effectivePercent) => {
      const current = state([new ManualFlagSource({ stage, readPercent })]).current;
      expect(current).toEqual({
        stage: effective,
        readPercent: effectivePercent,
        rolloutGroup: DEFAULT_ROLLOUT_GROUP,
        source: 'manual',
      });
    },
  );

  it('turns dual-write with a read percentage above 0 into read-shift without refusing it', () => {
    const current = state([new ManualFlagSource({ stage: 'dual-write', readPercent: 30 })]).current;
    expect(current).toEqual({
      stage: 'read-shift',
      readPercent: 30,
      rolloutGroup: DEFAULT_ROLLOUT_GROUP,
      source: 'manual',
    });
  });

  it('refuses reads from PostgreSQL in memory-only, logging once and counting every refusal', async () => {
    const registry = new Registry();
    const warnings: string[] = [];
    const manual = new ManualFlagSource({ stage: 'memory-only', readPercent: 50 });
    const flagState = state([manual], {
      metrics: new DualWriteMetrics(registry),
      logger: { warn: (message: string) => void warnings.push(message) },
    });
    expect(flagState.current).toEqual({
      stage: 'memory-only',
      readPercent: 0,
      rolloutGroup: DEFAULT_ROLLOUT_GROUP,
      source: 'manual',
      refused: 'reads-without-dual-write',
    });
    for (let i = 0; i < 2; i++) {
      manual.set({ stage: 'memory-only', readPercent: 0 });
      expect(flagState.current.refused).toBeUndefined();
      manual.set({ stage: 'memory-only', readPercent: 20 + i });
      expect(flagState.current).toMatchObject({
        stage: 'memory-only',
        readPercent: 0,
        refused: 'reads-without-dual-write',
      });
    }
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain('reads-without-dual-write');
    const refusals = await registry.getSingleMetric(METRIC.flagRefusals)!.get();
    expect(refusals.values).toEqual([{ value: 3, labels: { reason: 'reads-without-dual-write' } }]);
  });

  it('exports the stage and read percentage in force as gauges', async () => {
    const registry = new Registry();
    const manual = new ManualFlagSource({ stage: 'read-shift', readPercent: 15 });
    state([manual], { metrics: new DualWriteMetrics(registry) });
    const text = await registry.metrics();
    expect(text).toContain(`${METRIC.stage}{stage="read-shift"} 1`);
    expect(text).toContain(`${METRIC.stage}{stage="dual-write"} 0`);
    expect(text).toContain(`${METRIC.readPercent} 15`);
  });

  it.each([
    ['memory-only', 0],
    ['dual-write', 0],
    ['read-shift', 30],
  ] as const)('after postgres-only, runs %s as postgres-primary until memoryResynced()', (stage, readPercent) => {
    const warnings: string[] = [];
    const manual = new ManualFlagSource({ stage: 'postgres-only' });
    const flagState = state([manual], { logger: { warn: (message: string) => void warnings.push(message) } });
    manual.set({ stage, readPercent });
    expect(flagState.current).toMatchObject({
      stage: 'postgres-primary',
      readPercent: 100,
      refused: 'memory-stale-after-postgres-only',
    });
    expect(warnings).toHaveLength(1);
    flagState.memoryResynced();
    expect(flagState.current).toEqual({ stage, readPercent, rolloutGroup: DEFAULT_ROLLOUT_GROUP, source: 'manual' });
  });

  it('keeps memory stale through postgres-primary, which it does not refuse', () => {
    const manual = new ManualFlagSource({ stage: 'postgres-only' });
    const flagState = state([manual]);
    manual.set({ stage: 'postgres-primary' });
    expect(flagState.current).toEqual({
      stage: 'postgres-primary',
      readPercent: 100,
      rolloutGroup: DEFAULT_ROLLOUT_GROUP,
      source: 'manual',
    });
    manual.set({ stage: 'dual-write' });
    expect(flagState.current).toMatchObject({ stage: 'postgres-primary', refused: 'memory-stale-after-postgres-only' });
  });

  it('does not treat memory as stale when it never ran postgres-only', () => {
    const manual = new ManualFlagSource({ stage: 'postgres-primary' });
    const flagState = state([manual]);
    manual.set({ stage: 'dual-write' });
    expect(flagState.current).toEqual({
      stage: 'dual-write',
      readPercent: 0,
      rolloutGroup: DEFAULT_ROLLOUT_GROUP,
      source: 'manual',
    });
  });
});

describe('UnleashFlagSource without a server', () => {
  const opened: UnleashFlagSource[] = [];
  const open = (options: Partial<ConstructorParameters<typeof UnleashFlagSource>[0]> = {}) => {
    const source = new UnleashFlagSource({ url: UNREACHABLE, refreshIntervalMs: 0, ...options });
    opened.push(source);
    return source;
  };
  afterEach(async () => {
    for (const source of opened.splice(0)) await source.close();
  });

  /** Both toggles as /api/client/features returns them. */
  function toggles(options: {
    stageEnabled?: boolean;
    stage: string;
    readEnabled?: boolean;
    rollout: number;
    groupId?: string;
  }): ClientFeaturesResponse['features'] {
    return [
      {
        name: STAGE_TOGGLE,
        enabled: options.stageEnabled ?? true,
        strategies: [
          {
            name: 'flexibleRollout',
            constraints: [],
            parameters: { groupId: STAGE_TOGGLE, rollout: '100', stickiness: 'default' },
            variants: [{ name: options.stage, weight: 1000, stickiness: 'default' }],
          },
        ],
        variants: [],
      },
      {
        name: READ_TOGGLE,
        enabled: options.readEnabled ?? true,
        strategies: [
          {
            name: 'flexibleRollout',
            constraints: [],
            parameters: {
              groupId: options.groupId ?? READ_TOGGLE,
              rollout: String(options.rollout),
              stickiness: 'routingKey',
            },
            variants: [],
          },
        ],
        variants: [],
      },
    ];
  }

  it('takes dual-write with 25% reads from flags/unleash-bootstrap.json', async () => {
    const source = open({ bootstrapFile: BOOTSTRAP_FILE });
    await source.ready();
    expect(source.current()).toEqual({
      stage: 'dual-write',
      readPercent: 25,
      rolloutGroup: 'dualwrite.read-from-postgres',
    });
    expect(new FlagState([source]).current).toMatchObject({ stage: 'read-shift', readPercent: 25, source: 'unleash' });
  });

  it.each([
    [{ stage: 'read-shift', rollout: 60 }, flags('read-shift', 60)],
    [{ stage: 'postgres-only', rollout: 0 }, flags('postgres-only', 0)],
    [
      { stage: 'dual-write', rollout: 100, groupId: 'other-group' },
      { stage: 'dual-write', readPercent: 100, rolloutGroup: 'other-group' },
    ],
    [{ stageEnabled: false, stage: 'postgres-primary', rollout: 50 }, flags('memory-only', 50)],
    [{ stage: 'read-shift', readEnabled: false, rollout: 50 }, flags('read-shift', 0)],
  ])('reads toggles %j as %j', async (definition, expected) => {
    const source = open({ client: { bootstrap: { data: toggles(definition) } } });
    await source.ready();
    expect(source.current()).toEqual(expected);
  });

  it('reports a stage variant that is not a stage to onError and produces no flags', async () => {
    const { errors, onError } = errorLog();
    const source = open({ onError, client: { bootstrap: { data: toggles({ stage: 'dual_write', rollout: 0 }) } } });
    await eventually(() => expect(errors, 'errors reported to onError').not.toHaveLength(0));
    expect(errors[0]!.source).toBe('unleash');
    expect(errors[0]!.error).toBeInstanceOf(TypeError);
    expect(String(errors[0]!.error)).toContain('dual_write');
    expect(source.current()).toBeUndefined();
  });

  it('has no flags with a missing bootstrap file, so FlagState falls through to the next source', async () => {
    const source = open({ bootstrapFile: join(tmpdir(), 'dw-no-such-bootstrap.json') });
    const warnings: string[] = [];
    source.client.on('warn', (warning: string) => void warnings.push(warning));
    const flagState = new FlagState([
      source,
      new EnvFlagSource(loadConfig({ DUAL_WRITE_MODE: 'dual-write' }).flags.env),
    ]);
    // The client has tried the bootstrap file (and has no server to poll).
    await eventually(() => expect(warnings).toContainEqual(expect.stringContaining('unable to load bootstrap')));
    expect(source.current()).toBeUndefined();
    expect(flagState.current).toMatchObject({ stage: 'dual-write', source: 'env' });
  });

  it('publishes only flags read from the toggles, never a default stage before the client is ready', async () => {
    const source = open({ bootstrapFile: BOOTSTRAP_FILE });
    const published: (MigrationFlags | undefined)[] = [];
    source.subscribe(() => published.push(source.current()));
    await source.ready();
    // Time passing is the point: nothing more is published after ready.
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(published).toEqual([{ stage: 'dual-write', readPercent: 25, rolloutGroup: 'dualwrite.read-from-postgres' }]);
  });

  // unleash-client retries a refused connection twice, 1 s apart with `timeout: 1000`: a failed poll takes ~2 s.
  it('keeps the bootstrap flags and reports connection errors to onError while polling an unreachable server', async () => {
    const { errors, onError } = errorLog();
    const source = open({ bootstrapFile: BOOTSTRAP_FILE, refreshIntervalMs: 1000, onError, client: { timeout: 1000 } });
    await eventually(() => expect(errors, 'a failed poll').not.toHaveLength(0), { timeoutMs: 10_000 });
    // afterEach closes the source now, well before its next poll starts.
    expect(errors[0]!.source).toBe('unleash');
    expect(errors[0]!.error).toMatchObject({ code: 'ECONNREFUSED' });
    expect(source.current()).toEqual({
      stage: 'dual-write',
      readPercent: 25,
      rolloutGroup: 'dualwrite.read-from-postgres',
    });
  });

  it('can be closed while a poll of an unreachable server is in flight without an unhandled error', async () => {
    const unhandled: unknown[] = [];
    const record = (error: unknown) => void unhandled.push(error);
    process.on('unhandledRejection', record);
    process.on('uncaughtException', record);
    try {
      const { errors, onError } = errorLog();
      const source = new UnleashFlagSource({
        url: UNREACHABLE,
        bootstrapFile: BOOTSTRAP_FILE,
        refreshIntervalMs: 1000,
        onError,
        client: { timeout: 1000 },
      });
      // The client's repository is where the poll reports its failure, with or without a listener.
      const reported = vi.spyOn((source.client as unknown as { repository: EventEmitter }).repository, 'emit');
      // The first poll starts at once and fails after ~2 s of retries: close in between.
      await new Promise((resolve) => setTimeout(resolve, 500));
      expect(errors).toEqual([]);
      await source.close();
      await eventually(() => expect(reported).toHaveBeenCalledWith('error', expect.anything()), { timeoutMs: 5000 });
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', record);
      process.off('uncaughtException', record);
    }
  });
});
