import { Listeners, type FlagSource, type MigrationFlags } from './migration-flags.js';

/**
 * Flags from DUAL_WRITE_MODE (a stage name, or true/false as in seed 004) and
 * READ_FROM_POSTGRES_PERCENT, as the config module parsed them at start; they never change.
 */
export class EnvFlagSource implements FlagSource {
  readonly name = 'env';
  private readonly listeners = new Listeners();

  /** `flags`: undefined when neither variable is set. */
  constructor(private readonly flags: MigrationFlags | undefined) {}

  current(): MigrationFlags | undefined {
    return this.flags;
  }

  subscribe(listener: () => void): () => void {
    return this.listeners.subscribe(listener);
  }

  async close(): Promise<void> {}
}
