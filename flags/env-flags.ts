import { DEFAULT_ROLLOUT_GROUP, Listeners, parsePercent, parseStage, type FlagSource, type MigrationFlags } from './migration-flags.js';

/**
 * Flags from DUAL_WRITE_MODE (a stage name, or true/false as in seed 004) and
 * READ_FROM_POSTGRES_PERCENT. Read once; a bad value throws at start naming the variable.
 */
export class EnvFlagSource implements FlagSource {
  readonly name = 'env';
  private readonly flags: MigrationFlags | undefined;
  private readonly listeners = new Listeners();

  constructor(env: NodeJS.ProcessEnv = process.env) {
    const set = env.DUAL_WRITE_MODE !== undefined || env.READ_FROM_POSTGRES_PERCENT !== undefined;
    this.flags = set
      ? {
          stage: parseStage(env.DUAL_WRITE_MODE, 'DUAL_WRITE_MODE'),
          readPercent: parsePercent(env.READ_FROM_POSTGRES_PERCENT ?? 0, 'READ_FROM_POSTGRES_PERCENT'),
          rolloutGroup: DEFAULT_ROLLOUT_GROUP,
        }
      : undefined;
  }

  current(): MigrationFlags | undefined {
    return this.flags;
  }

  subscribe(listener: () => void): () => void {
    return this.listeners.subscribe(listener);
  }

  async close(): Promise<void> {}
}
