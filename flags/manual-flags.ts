import { Listeners, parseFlags, type FlagSource, type MigrationFlags } from './migration-flags.js';

/** Flags set from code (an admin endpoint, a test); validated like every other source. */
export class ManualFlagSource implements FlagSource {
  readonly name = 'manual';
  private flags: MigrationFlags | undefined;
  private readonly listeners = new Listeners();

  constructor(initial?: { stage: unknown; readPercent?: unknown }) {
    if (initial) this.flags = parseFlags(initial, 'manual');
  }

  set(flags: { stage: unknown; readPercent?: unknown; rolloutGroup?: unknown }): void {
    this.flags = parseFlags(flags, 'manual');
    this.listeners.notify();
  }

  current(): MigrationFlags | undefined {
    return this.flags;
  }

  subscribe(listener: () => void): () => void {
    return this.listeners.subscribe(listener);
  }

  async close(): Promise<void> {}
}
