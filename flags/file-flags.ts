import { readFileSync, unwatchFile, watchFile } from 'node:fs';
import { Listeners, parseFlags, type FlagErrorListener, type FlagSource, type MigrationFlags } from './migration-flags.js';

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

  constructor(private readonly options: FileFlagOptions) {
    this.reload();
    // Polling (not fs.watch) survives editors and tools that replace the file by rename.
    watchFile(options.path, { interval: options.pollMs ?? 500, persistent: false }, () => this.reload());
  }

  current(): MigrationFlags | undefined {
    return this.flags;
  }

  subscribe(listener: () => void): () => void {
    return this.listeners.subscribe(listener);
  }

  async close(): Promise<void> {
    unwatchFile(this.options.path);
  }

  private reload(): void {
    let next: MigrationFlags;
    try {
      const raw = JSON.parse(readFileSync(this.options.path, 'utf8')) as Record<string, unknown>;
      next = parseFlags({ stage: raw.stage, readPercent: raw.readFromPostgresPercent, rolloutGroup: raw.rolloutGroup }, `flags file ${this.options.path}`);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT' || this.flags) this.options.onError?.(this.name, error);
      return;
    }
    if (JSON.stringify(next) === JSON.stringify(this.flags)) return;
    this.flags = next;
    this.listeners.notify();
  }
}
