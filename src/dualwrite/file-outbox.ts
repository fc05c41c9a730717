import { mkdir, open, truncate, type FileHandle } from 'node:fs/promises';
import { readFileIfExists, writeFileAtomically } from '../shared/atomic-file.js';
import { dirname } from 'node:path';
import type { DataFailure } from './data-error.js';
import { entryOf, type JournalItem, type MirrorOp, type Outbox, type OutboxEntry } from './outbox.js';

export interface FileOutboxOptions {
  /** Journal path. Dead letters go to the same path with ".dead" before the extension. Default .dualwrite/outbox.jsonl */
  readonly path?: string;
  /** Rewrite the journal when it holds this many more lines than pending entries, and at least as many as those. Default 10000. */
  readonly compactAfterLines?: number;
}

type JournalLine = { readonly append: OutboxEntry } | { readonly ack: readonly string[] };

/**
 * Outbox as a local append-only journal (JSON lines): each append and ack is one line,
 * fsynced before it resolves. On open the journal is replayed to rebuild what is pending;
 * a torn last line (a crash mid-write) is ignored, any other bad line is an error.
 */
export class FileOutbox implements Outbox {
  private readonly pending = new Map<string, OutboxEntry>();
  private journalLines = 0;
  private nextSeq = 1;
  /** File operations, one after another. */
  private writing: Promise<unknown> = Promise.resolve();
  /** Lines waiting for the next group commit, and their writers. */
  private buffered: string[] = [];
  private waiters: { resolve: () => void; reject: (error: unknown) => void }[] = [];
  private flushScheduled = false;
  private leased = false;
  /** Ids whose ack line is written but not yet durable: noteError must not append behind it. */
  private readonly acking = new Set<string>();

  private constructor(
    /** The journal's path. */
    readonly path: string,
    private readonly deadPath: string,
    private readonly compactAfterLines: number,
    private file: FileHandle,
  ) {}

  static async open(options: FileOutboxOptions = {}): Promise<FileOutbox> {
    const path = options.path ?? '.dualwrite/outbox.jsonl';
    await mkdir(dirname(path), { recursive: true });
    const lines = await readJournal(path);
    const outbox = new FileOutbox(
      path,
      path.replace(/(\.\w+)?$/, '.dead$1'),
      options.compactAfterLines ?? 10000,
      await open(path, 'a'),
    );
    for (const line of lines) {
      if ('append' in line) {
        outbox.pending.set(line.append.id, line.append);
        outbox.nextSeq = Math.max(outbox.nextSeq, Number(line.append.id) + 1);
      } else {
        for (const id of line.ack) outbox.pending.delete(id);
      }
    }
    outbox.journalLines = lines.length;
    return outbox;
  }

  async append(op: MirrorOp, reason: string, lastError?: DataFailure): Promise<OutboxEntry> {
    const [entry] = await this.appendAll([{ op, reason, ...(lastError ? { lastError } : {}) }]);
    return entry!;
  }

  async appendAll(items: readonly JournalItem[]): Promise<OutboxEntry[]> {
    const journaledAt = new Date().toISOString();
    const entries = items.map((item) => entryOf(item, String(this.nextSeq++).padStart(16, '0'), journaledAt));
    // Written in one call, so they share one group commit.
    await Promise.all(entries.map((entry) => this.write({ append: entry })));
    for (const entry of entries) this.pending.set(entry.id, entry);
    return entries;
  }

  list(): Promise<OutboxEntry[]> {
    return Promise.resolve([...this.pending.values()]);
  }

  async peek(limit: number): Promise<OutboxEntry[]> {
    const entries: OutboxEntry[] = [];
    for (const entry of this.pending.values()) {
      if (entries.length >= limit) break;
      entries.push(entry);
    }
    return entries;
  }

  async ack(ids: readonly string[]): Promise<void> {
    if (ids.length === 0) return;
    for (const id of ids) this.acking.add(id);
    try {
      await this.write({ ack: ids });
    } finally {
      for (const id of ids) this.acking.delete(id);
    }
    for (const id of ids) this.pending.delete(id);
    // Rewritten once the lines no longer needed outnumber the entries kept (and compactAfterLines):
    // each entry is rewritten a bounded number of times however long the backlog.
    const stale = this.journalLines - this.pending.size;
    if (this.pending.size === 0 || (stale >= this.compactAfterLines && stale >= this.pending.size))
      await this.compact();
  }

  /**
   * Written as the entry's append line again, with the same id and `lastError` set: reading
   * the journal keeps the last line of an id at the id's first place, so the order stays, and
   * a journal written so is read alike by versions that know nothing of lastError.
   */
  async noteError(id: string, lastError: DataFailure): Promise<void> {
    const entry = this.pending.get(id);
    // An append line after the id's ack line would bring the entry back when the journal is read.
    if (!entry || this.acking.has(id)) return;
    const noted: OutboxEntry = { ...entry, lastError };
    await this.write({ append: noted });
    if (this.pending.has(id)) this.pending.set(id, noted);
  }

  async deadLetter(entry: OutboxEntry, reason: string): Promise<void> {
    const dead = await open(this.deadPath, 'a');
    try {
      await dead.appendFile(
        `${JSON.stringify({ ...entry, deadLetteredAt: new Date().toISOString(), deadReason: reason })}\n`,
      );
      await dead.datasync();
    } finally {
      await dead.close();
    }
    await this.ack([entry.id]);
  }

  async replayLease(): Promise<{ release(): Promise<void> } | null> {
    // One process owns a local journal; the lease only keeps two replay loops of it apart.
    if (this.leased) return null;
    this.leased = true;
    return { release: async () => void (this.leased = false) };
  }

  stats(): { depth: number; oldestAgeSeconds: number } {
    const oldest = this.pending.values().next().value as OutboxEntry | undefined;
    return {
      depth: this.pending.size,
      oldestAgeSeconds: oldest ? Math.max(0, (Date.now() - Date.parse(oldest.journaledAt)) / 1000) : 0,
    };
  }

  async close(): Promise<void> {
    await this.writing;
    await this.file.close();
  }

  /**
   * Appends a line, in call order; resolves once it is fsynced. Lines written while an
   * fsync runs share the next one (group commit): one fsync per batch, not per line.
   */
  private write(line: JournalLine): Promise<void> {
    this.buffered.push(`${JSON.stringify(line)}\n`);
    const durable = new Promise<void>((resolve, reject) => this.waiters.push({ resolve, reject }));
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      this.writing = this.writing.then(() => this.flush()).catch(() => {});
    }
    return durable;
  }

  private async flush(): Promise<void> {
    this.flushScheduled = false;
    const lines = this.buffered;
    const waiters = this.waiters;
    this.buffered = [];
    this.waiters = [];
    try {
      await this.file.appendFile(lines.join(''));
      await this.file.datasync();
      this.journalLines += lines.length;
      for (const waiter of waiters) waiter.resolve();
    } catch (error) {
      for (const waiter of waiters) waiter.reject(error);
    }
  }

  /** Rewrites the journal with only the pending entries (temp file, fsync, rename). */
  private async compact(): Promise<void> {
    await (this.writing = this.writing.then(async () => {
      await writeFileAtomically(
        this.path,
        [...this.pending.values()].map((entry) => `${JSON.stringify({ append: entry })}\n`).join(''),
      );
      await this.file.close();
      this.file = await open(this.path, 'a');
      this.journalLines = this.pending.size;
    }));
  }
}

/** Reads the journal's lines; a torn last line is cut off the file, so the next append starts a line of its own. */
async function readJournal(path: string): Promise<JournalLine[]> {
  let text = await readFileIfExists(path);
  if (text === undefined) return [];
  if (text.length > 0 && !text.endsWith('\n')) {
    text = text.slice(0, text.lastIndexOf('\n') + 1);
    await truncate(path, Buffer.byteLength(text));
  }
  const raw = text.split('\n');
  const lines: JournalLine[] = [];
  raw.forEach((line, index) => {
    if (line === '') return;
    try {
      lines.push(JSON.parse(line) as JournalLine);
    } catch (error) {
      // Only the last line can be torn by a crash; anything else means the file is damaged.
      const isLast = raw.slice(index + 1).every((rest) => rest === '');
      if (!isLast)
        throw new Error(`outbox journal ${path} line ${index + 1} is not valid JSON: ${(error as Error).message}`, {
          cause: error,
        });
    }
  });
  return lines;
}
