import { readFileSync } from 'node:fs';
import { writeFileAtomically } from '../src/shared/atomic-file.js';
import { Listeners, parseFlags, type FlagSource, type MigrationFlags } from './migration-flags.js';

/** The flags last in force, as saved by the process before this one. */
export interface SavedFlags extends MigrationFlags {
  readonly savedAt: string;
}

/**
 * The flags a process last ran with, kept on disk so that a process restarted while its
 * flag service is down goes on as it was instead of falling back to memory-only. It is the
 * last source consulted: any source with flags wins over it.
 */
export class LastKnownFlagSource implements FlagSource {
  readonly name = 'last-known';
  private readonly listeners = new Listeners();

  constructor(readonly saved: SavedFlags | undefined) {}

  /** Reads the file at `path`; none (or unreadable, which is reported) means no last known flags. */
  static read(path: string, onError?: (error: unknown) => void): LastKnownFlagSource {
    let saved: SavedFlags | undefined;
    try {
      const raw = JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
      saved = { ...parseFlags(raw, `last known flags file ${path}`), savedAt: String(raw.savedAt) };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') onError?.(error);
    }
    return new LastKnownFlagSource(saved);
  }

  current(): MigrationFlags | undefined {
    return (
      this.saved && {
        stage: this.saved.stage,
        readPercent: this.saved.readPercent,
        rolloutGroup: this.saved.rolloutGroup,
      }
    );
  }

  subscribe(listener: () => void): () => void {
    return this.listeners.subscribe(listener);
  }

  async close(): Promise<void> {}
}

/** Saves the flags in force (temp file, fsync, rename), for the next process. */
export async function saveLastKnownFlags(path: string, flags: MigrationFlags, now = new Date()): Promise<void> {
  const saved: SavedFlags = {
    stage: flags.stage,
    readPercent: flags.readPercent,
    rolloutGroup: flags.rolloutGroup,
    savedAt: now.toISOString(),
  };
  await writeFileAtomically(path, `${JSON.stringify(saved)}\n`);
}
