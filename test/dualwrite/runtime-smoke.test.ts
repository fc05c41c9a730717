import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FlagState } from '../../flags/flag-state.js';
import { ManualFlagSource } from '../../flags/manual-flags.js';
import { FileOutbox } from '../../src/dualwrite/file-outbox.js';
import { openDualWrite } from '../../src/runtime/open-dual-write.js';
import type { DualWriteRuntime } from '../../src/runtime/dual-write-runtime.js';
import { openPglite } from '../support/pglite.js';

describe('dual-write runtime on PGlite', () => {
  let runtime: DualWriteRuntime;
  let dir: string;
  const source = new ManualFlagSource({ stage: 'dual-write' });
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'dw-'));
    const db = await openPglite();
    runtime = await openDualWrite({
      db,
      flags: new FlagState([source]),
      outbox: await FileOutbox.open({ path: join(dir, 'outbox.jsonl') }),
      env: {},
    });
  });
  afterAll(async () => {
    await runtime.close();
    await runtime.db.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('mirrors a write to PostgreSQL with the same decided record', async () => {
    const c = await runtime.graph.createContributor({ name: 'Ada' });
    expect(await runtime.postgres.graph.getContributor(c.id)).toEqual(c);
    expect(await runtime.memory.graph.getContributor(c.id)).toEqual(c);
  });

  it('reads from PostgreSQL at 100% in read-shift', async () => {
    const c = await runtime.graph.createContributor({ name: 'Bob' });
    await runtime.postgres.graph.putRecord('contributors', { ...c, name: 'Only in PG' });
    source.set({ stage: 'read-shift', readPercent: 100 });
    expect((await runtime.graph.getContributor(c.id))!.name).toBe('Only in PG');
    source.set({ stage: 'dual-write' });
    expect((await runtime.graph.getContributor(c.id))!.name).toBe('Bob');
  });
});
