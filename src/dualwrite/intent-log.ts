import { mkdir, open, type FileHandle } from 'node:fs/promises';
import { readFileIfExists, writeFileAtomically } from '../shared/atomic-file.js';
import { dirname } from 'node:path';
import type { MirrorOp, Outbox } from './outbox.js';

/** Options of IntentLog. */
export interface IntentLogOptions {
  /** Journal path. Default .dualwrite/intents.jsonl */
  readonly path?: string;
  /** Rewrite the file once this many finished intents sit before the first unfinished one. Default 10000. */
  readonly compactAfter?: number;
}

interface Intent {
  readonly seq: number;
  readonly op: MirrorOp;
}

/**
 * The write-ahead log of an async mirror: a mirror write is appended (and fsynced) before
 * its caller is answered, and marked finished once it was applied or moved to the outbox.
 * Appends that arrive while an fsync runs share the next one (group commit), so the cost
 * is one fsync per batch rather than per write. After a crash, the intents not known to
 * be finished are handed to the outbox, in order, by `open()`: replaying a record copy
 * that already landed changes nothing, so nothing acknowledged is lost.
 *
 * Finished marks are kept in memory only; the file is rewritten without the finished
 * prefix from time to time, and a crash at worst replays some finished intents again.
 */
export class IntentLog {
  private readonly unfinished = new Map<number, Intent>();
  private nextSeq = 1;
  private buffer: string[] = [];
  private waiters: { resolve: () => void; reject: (error: unknown) => void }[] = [];
  private flushScheduled = false;
  /** File operations, one after another. */
  private tail: Promise<void> = Promise.resolve();
  private finishedSinceCompaction = 0;

  private constructor(
    private readonly path: string,
    private readonly compactAfter: number,
    private file: FileHandle,
  ) {}

  /**
   * Opens the log. What a previous process left unfinished is first appended to `outbox`
   * (durably, in order), and only then removed from the log; the number moved is returned.
   */
  static async open(
    outbox: Pick<Outbox, 'append'>,
    options: IntentLogOptions = {},
  ): Promise<{ log: IntentLog; recovered: number }> {
    const path = options.path ?? '.dualwrite/intents.jsonl';
    await mkdir(dirname(path), { recursive: true });
    const recovered = await readIntents(path);
    for (const op of recovered)
      await outbox.append(
        op,
        'acknowledged by a process that stopped before mirroring it (recovered from the intent log)',
      );
    const file = await open(path, 'w');
    await file.sync();
    return { log: new IntentLog(path, options.compactAfter ?? 10000, file), recovered: recovered.length };
  }

  /** Appends `op`; resolves once it is on disk. Returns its sequence number for finish(). */
  async append(op: MirrorOp): Promise<number> {
    const seq = this.nextSeq++;
    this.unfinished.set(seq, { seq, op });
    this.buffer.push(`${JSON.stringify({ seq, op })}\n`);
    const durable = new Promise<void>((resolve, reject) => this.waiters.push({ resolve, reject }));
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      void this.serially(() => this.flush());
    }
    await durable;
    return seq;
  }

  /** The write was applied or journaled in the outbox: it need not be replayed after a crash. */
  finish(seq: number): void {
    if (!this.unfinished.delete(seq)) return;
    if (++this.finishedSinceCompaction >= this.compactAfter) {
      this.finishedSinceCompaction = 0;
      void this.serially(() => this.compact());
    }
  }

  /** Intents not yet finished. */
  size(): number {
    return this.unfinished.size;
  }

  /** Leaves only the unfinished intents in the file (none after a drained mirror) and closes it. */
  async close(): Promise<void> {
    await this.serially(() => this.compact());
    await this.file.close();
  }

  private serially(work: () => Promise<void>): Promise<void> {
    const run = this.tail.then(work);
    this.tail = run.catch(() => {});
    return run;
  }

  /** Writes every line buffered so far with one append and one fsync (appends arriving meanwhile wait for the next). */
  private async flush(): Promise<void> {
    this.flushScheduled = false;
    const lines = this.buffer.join('');
    const waiters = this.waiters;
    this.buffer = [];
    this.waiters = [];
    try {
      await this.file.appendFile(lines);
      await this.file.datasync();
      for (const waiter of waiters) waiter.resolve();
    } catch (error) {
      for (const waiter of waiters) waiter.reject(error);
    }
  }

  /** Rewrites the file with only the unfinished intents (temp file, fsync, rename). */
  private async compact(): Promise<void> {
    await writeFileAtomically(
      this.path,
      [...this.unfinished.values()].map((intent) => `${JSON.stringify(intent)}\n`).join(''),
    );
    await this.file.close();
    this.file = await open(this.path, 'a');
  }
}

/** The intents of a previous process in order; a torn last line (a crash mid-append) was never acknowledged. */
async function readIntents(path: string): Promise<MirrorOp[]> {
  const text = await readFileIfExists(path);
  if (text === undefined) return [];
  const lines = text.split('\n');
  if (!text.endsWith('\n')) lines.pop();
  // By sequence number: a compaction may have written an intent that a later append repeats.
  const intents = new Map<number, MirrorOp>();
  for (const [index, line] of lines.entries()) {
    if (line === '') continue;
    try {
      const intent = JSON.parse(line) as Intent;
      intents.set(intent.seq, intent.op);
    } catch (error) {
      throw new Error(`intent log ${path} line ${index + 1} is not valid JSON: ${(error as Error).message}`, {
        cause: error,
      });
    }
  }
  return [...intents.entries()].sort(([a], [b]) => a - b).map(([, op]) => op);
}
