import { readFileSync, statSync } from 'node:fs';
import { writeFileAtomically } from '../src/shared/atomic-file.js';
import {
  Listeners,
  parseFlags,
  type FlagErrorListener,
  type FlagSource,
  type MigrationFlags,
} from './migration-flags.js';

export interface FileFlagOptions {
  /** JSON file: {"stage": "dual-write", "readFromPostgresPercent": 10}. Required. */
  readonly path: string;
  /** How often the file is checked for changes. Default 500 ms. */
  readonly pollMs?: number;
  readonly onError?: FlagErrorListener;
}

/**
 * Flags from a local JSON file, re-read when it changes, so a rollback is an edit of the
 * file and needs no restart. A missing or invalid file keeps the last known flags and
 * reports an error; it never resets the stage.
 */
export class FileFlagSource implements FlagSource {
  readonly name = 'file';
  private flags: MigrationFlags | undefined;
  private readonly listeners = new Listeners();
  /** The file's identity when last read, so a poll re-reads only a changed file. */
  private seen = '';
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly options: FileFlagOptions) {
    this.reload();
    // Polling (not fs.watch) survives editors and tools that replace the file by rename; our
    // own timer compares against the stat taken with our read, so no edit after start is missed.
    this.timer = setInterval(() => this.poll(), options.pollMs ?? 500);
    this.timer.unref();
  }

  current(): MigrationFlags | undefined {
    return this.flags;
  }

  subscribe(listener: () => void): () => void {
    return this.listeners.subscribe(listener);
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
  }

  /**
   * Replaces the file with `flags` (temp file, fsync, rename) and puts them in force at once,
   * without waiting for the next poll. Who changed them and why are kept in the file, for
   * whoever opens it next.
   */
  async write(flags: MigrationFlags, change: FlagChange): Promise<void> {
    const body = {
      stage: flags.stage,
      readFromPostgresPercent: flags.readPercent,
      rolloutGroup: flags.rolloutGroup,
      ...change,
    };
    await writeFileAtomically(this.options.path, `${JSON.stringify(body, null, 2)}\n`);
    this.reload();
  }

  private poll(): void {
    if (fileIdentity(this.options.path) !== this.seen) this.reload();
  }

  private reload(): void {
    let next: MigrationFlags;
    this.seen = fileIdentity(this.options.path);
    try {
      const raw = JSON.parse(readFileSync(this.options.path, 'utf8')) as Record<string, unknown>;
      next = parseFlags(
        { stage: raw.stage, readPercent: raw.readFromPostgresPercent, rolloutGroup: raw.rolloutGroup },
        `flags file ${this.options.path}`,
      );
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT' || this.flags) this.options.onError?.(this.name, error);
      return;
    }
    if (JSON.stringify(next) === JSON.stringify(this.flags)) return;
    this.flags = next;
    this.listeners.notify();
  }
}

/** Who changed the flags, when and why. */
export interface FlagChange {
  readonly reason: string;
  readonly principal: string;
  readonly changedAt: string;
}

/** Inode, size and modification time: changes whenever the file is edited or replaced. */
function fileIdentity(path: string): string {
  try {
    const stat = statSync(path, { bigint: true });
    return `${stat.ino}:${stat.size}:${stat.mtimeNs}`;
  } catch {
    return 'missing';
  }
}
