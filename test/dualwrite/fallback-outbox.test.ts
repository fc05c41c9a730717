import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { FallbackOutbox } from '../../src/dualwrite/fallback-outbox.js';
import { FileOutbox } from '../../src/dualwrite/file-outbox.js';
import type { JournalItem, MirrorOp, Outbox, OutboxEntry } from '../../src/dualwrite/outbox.js';
import { eventually } from '../support/eventually.js';

/**
 * The shared outbox (a file outbox standing in for the Redis stream, whose end-to-end case
 * is in redis-outbox-loss.test.ts) can be made to refuse appends, or to hold them until
 * released, so the order of what reaches it can be checked while a move is under way.
 */
class SwitchableOutbox implements Outbox {
  down = false;
  /** Appends accepted before it goes down by itself. */
  acceptBeforeDown = Number.POSITIVE_INFINITY;
  private held: Promise<void> | undefined;
  private releaseHeld: (() => void) | undefined;

  constructor(private readonly inner: FileOutbox) {}

  /** Appends wait until release(). */
  hold(): void {
    this.held = new Promise((resolve) => (this.releaseHeld = resolve));
  }

  release(): void {
    this.releaseHeld?.();
    this.held = undefined;
  }

  append(op: MirrorOp, reason: string): Promise<OutboxEntry> {
    return this.appendAll([{ op, reason }]).then(([entry]) => entry!);
  }

  async appendAll(items: readonly JournalItem[]): Promise<OutboxEntry[]> {
    if (this.acceptBeforeDown-- <= 0) this.down = true;
    if (this.down) throw new Error('connection refused');
    await this.held;
    return this.inner.appendAll(items);
  }

  peek(limit: number) {
    return this.inner.peek(limit);
  }
  list() {
    return this.inner.list();
  }
  ack(ids: readonly string[]) {
    return this.inner.ack(ids);
  }
  deadLetter(entry: OutboxEntry, reason: string) {
    return this.inner.deadLetter(entry, reason);
  }
  replayLease() {
    return this.inner.replayLease();
  }
  stats() {
    return this.inner.stats();
  }
  close() {
    return this.inner.close();
  }
}

const op = (key: string, n: number): MirrorOp => ({
  store: 'graph',
  target: 'postgres',
  method: `write-${n}`,
  records: [],
  key,
  epoch: 1,
});
const methods = (entries: readonly OutboxEntry[]) => entries.map((entry) => entry.method);

/**
 * Waits until a move running in the background has got as far as `condition` says, peeking
 * meanwhile as the replayer does (a peek starts a move again after a failed one).
 */
async function until(condition: () => boolean, outbox?: Outbox): Promise<void> {
  await eventually(
    async () => {
      await outbox?.peek(1);
      expect(condition()).toBe(true);
    },
    { everyMs: 2 },
  );
}

describe('FallbackOutbox', () => {
  const cleanups: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  async function open() {
    const dir = await mkdtemp(join(tmpdir(), 'dw-fallback-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const shared = new SwitchableOutbox(await FileOutbox.open({ path: join(dir, 'shared.jsonl') }));
    const local = await FileOutbox.open({ path: join(dir, 'local.jsonl') });
    const outbox = new FallbackOutbox(shared, local, {
      breaker: { probeMs: 0 },
      appendTimeoutMs: 60_000,
      moveBatchSize: 3,
    });
    cleanups.push(() => outbox.close());
    return { shared, local, outbox };
  }

  it('journals locally while the shared outbox fails; replay goes on from the shared outbox and reaches the local entries once they are moved behind it', async () => {
    const { shared, local, outbox } = await open();
    await outbox.append(op('a', 1), 'pg down');
    shared.down = true;
    await outbox.append(op('a', 2), 'pg down');
    await outbox.append(op('b', 3), 'pg down');
    expect(methods(await local.list())).toEqual(['write-2', 'write-3']);
    // Older than anything waiting locally, so it can be replayed now; the local ones cannot yet.
    expect(methods(await outbox.peek(10))).toEqual(['write-1']);
    expect(methods(await outbox.list())).toEqual(['write-1', 'write-2', 'write-3']);
    expect(outbox.stats().depth).toBe(3);

    shared.down = false;
    await until(() => local.stats().depth === 0, outbox);
    expect(methods(await outbox.peek(10))).toEqual(['write-1', 'write-2', 'write-3']);
  });

  it('does not make appends wait for a move: they go behind the waiting entries, and reach the shared outbox in journal order', async () => {
    const { shared, local, outbox } = await open();
    shared.down = true;
    for (let n = 1; n <= 7; n++) await outbox.append(op('k', n), 'pg down');
    shared.down = false;
    shared.hold();

    // This append starts the move, which is then stuck on the held shared outbox; the append is not.
    const during = await outbox.append(op('k', 8), 'pg down');
    expect(during.method).toBe('write-8');
    expect(methods(await local.list())).toContain('write-8');

    shared.release();
    await until(() => local.stats().depth === 0);
    expect(methods(await outbox.peek(100))).toEqual([
      'write-1',
      'write-2',
      'write-3',
      'write-4',
      'write-5',
      'write-6',
      'write-7',
      'write-8',
    ]);
    await outbox.settled();

    // With nothing waiting locally, appends go straight to the shared outbox again.
    await outbox.append(op('k', 9), 'pg down');
    expect(local.stats().depth).toBe(0);
    expect(methods(await shared.list()).at(-1)).toBe('write-9');
  });

  it('keeps the local entries when a move fails half way, and finishes it once the shared outbox answers', async () => {
    const { shared, local, outbox } = await open();
    shared.down = true;
    for (let n = 1; n <= 5; n++) await outbox.append(op('k', n), 'pg down');
    expect(local.stats().depth).toBe(5);
    // One batch of 3 lands, the next fails.
    shared.down = false;
    shared.acceptBeforeDown = 1;
    await until(() => local.stats().depth === 2, outbox);
    expect(methods(await shared.list())).toEqual(['write-1', 'write-2', 'write-3']);
    expect(methods(await local.list())).toEqual(['write-4', 'write-5']);
    expect(methods(await outbox.list())).toEqual(['write-1', 'write-2', 'write-3', 'write-4', 'write-5']);

    await outbox.append(op('k', 6), 'pg down');
    expect(methods(await local.list())).toEqual(['write-4', 'write-5', 'write-6']);
    shared.down = false;
    shared.acceptBeforeDown = Number.POSITIVE_INFINITY;
    await until(() => local.stats().depth === 0, outbox);
    expect(methods(await outbox.peek(10))).toEqual(['write-1', 'write-2', 'write-3', 'write-4', 'write-5', 'write-6']);
  });
});
