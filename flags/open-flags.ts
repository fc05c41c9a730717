import { EnvFlagSource } from './env-flags.js';
import { FileFlagSource } from './file-flags.js';
import { FlagState, type FlagStateOptions } from './flag-state.js';
import type { FlagSource, MigrationFlags } from './migration-flags.js';
import { LastKnownFlagSource } from './last-known-flags.js';
import { UnleashFlagSource } from './unleash-flags.js';

/** Where flags come from (read from the environment by the config module). */
export interface FlagsConfig {
  /** UNLEASH_URL, UNLEASH_TOKEN, UNLEASH_BOOTSTRAP_FILE. Default: no Unleash. */
  readonly unleash?: { readonly url: string; readonly token?: string; readonly bootstrapFile?: string };
  /** DUALWRITE_FLAGS_FILE: the flags file, which the admin API and CLI write. Default .dualwrite/flags.json. */
  readonly flagsFile: string;
  /** DUAL_WRITE_MODE and READ_FROM_POSTGRES_PERCENT; absent when neither is set. */
  readonly env?: MigrationFlags;
  /** DUALWRITE_LAST_FLAGS_PATH: the flags last in force. Default .dualwrite/last-flags.json. */
  readonly lastFlagsPath: string;
}

/**
 * The flag layer from the environment: Unleash when UNLEASH_URL is set (token
 * UNLEASH_TOKEN, bootstrap UNLEASH_BOOTSTRAP_FILE), then the flags file (DUALWRITE_FLAGS_FILE,
 * default .dualwrite/flags.json; the admin API and CLI write it), then DUAL_WRITE_MODE /
 * READ_FROM_POSTGRES_PERCENT, then the flags the last process ran with
 * (DUALWRITE_LAST_FLAGS_PATH); memory-only when none has flags. The flags file ranks above
 * env so that an operator's change outlives a restart.
 */
export function openFlags(
  config: FlagsConfig,
  options: FlagStateOptions = {},
): { readonly flags: FlagState; readonly flagsFile: FileFlagSource } {
  const onError = (source: string, error: unknown) => {
    options.metrics?.flagSourceFailed(source);
    options.logger?.warn(
      `dualwrite: flag source ${source} failed, keeping last known flags: ${error instanceof Error ? error.message : String(error)}`,
    );
  };
  const sources: FlagSource[] = [];
  if (config.unleash) sources.push(new UnleashFlagSource({ ...config.unleash, onError }));
  const flagsFile = new FileFlagSource({ path: config.flagsFile, onError });
  sources.push(flagsFile);
  sources.push(new EnvFlagSource(config.env));
  const lastKnown = LastKnownFlagSource.read(config.lastFlagsPath, (error) => onError('last-known', error));
  sources.push(lastKnown);
  return { flags: new FlagState(sources, { ...options, lastKnown: lastKnown.saved }), flagsFile };
}
