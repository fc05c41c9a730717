import { appendFile, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { FileOutbox } from '../../src/dualwrite/file-outbox.js';
import { IntentLog } from '../../src/dualwrite/intent-log.js';
import type { MirrorOp } from '../../src/dualwrite/outbox.js';

/** The async mirror's write-ahead log: what a stopped process left unfinished reaches the outbox, in order, once. */

const op = (n: number): MirrorOp => ({
  store: 'graph',
  target: 'postgres',
  method: 'upsertProject',
  key: `project:npm/p${n % 3}`,
  records: [{ entity: 'projects', key: ['npm', `p${n % 3}`], record: { n } }],
  epoch: 1,
});

describe('IntentLog', () => {
  const dirs: string[] = [];
  afterEach(async () => {
    for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true });
  });
  const folder = async () => {
    const dir = await mkdtemp(join(tmpdir(), 'dw-intents-'));
    dirs.push(dir);
    return { path: join(dir, 'intents.jsonl'), outbox: await FileOutbox.open({ path: join(dir, 'outbox.jsonl') }) };
  };

  it('hands what a closed log left unfinished to the outbox in order, once, ignoring a torn last line', async () => {
    const { path, outbox } = await folder();
    const { log } = await IntentLog.open(outbox, { path });
    const seqs = await Promise.all(Array.from({ length: 6 }, (_, n) => log.append(op(n))));
    log.finish(seqs[1]!);
    log.finish(seqs[4]!);
    expect(log.size()).toBe(4);
    await log.close();
    await appendFile(path, '{"seq": 99, "op": {"tor'); // a crash mid-append: never acknowledged

    const reopened = await IntentLog.open(outbox, { path });
    expect(reopened.recovered).toBe(4);
    expect((await outbox.peek(10)).map((entry) => (entry.records[0]!.record as { n: number }).n)).toEqual([0, 2, 3, 5]);
    expect(await readFile(path, 'utf8')).toBe('');
    await reopened.log.close();
    expect((await IntentLog.open(outbox, { path })).recovered).toBe(0);
    await outbox.close();
  });

  it('replays finished intents again after a crash rather than lose an unfinished one', async () => {
    const { path, outbox } = await folder();
    const { log } = await IntentLog.open(outbox, { path });
    const seqs = await Promise.all(Array.from({ length: 3 }, (_, n) => log.append(op(n))));
    log.finish(seqs[0]!);
    // No close(): the process was killed; finished marks lived in memory only.
    expect((await IntentLog.open(outbox, { path })).recovered).toBe(3);
    await outbox.close();
  });

  it('keeps only unfinished intents when it compacts, so a restart replays those', async () => {
    const { path, outbox } = await folder();
    const { log } = await IntentLog.open(outbox, { path, compactAfter: 3 });
    const seqs = await Promise.all(Array.from({ length: 5 }, (_, n) => log.append(op(n))));
    for (const seq of seqs.slice(0, 3)) log.finish(seq);
    await log.append(op(5));
    // Killed after the compaction: the file holds the unfinished ones (a repeat of an intent counts once).
    expect((await IntentLog.open(outbox, { path })).recovered).toBe(3);
    expect((await outbox.peek(10)).map((entry) => (entry.records[0]!.record as { n: number }).n)).toEqual([3, 4, 5]);
    await outbox.close();
  });
});
