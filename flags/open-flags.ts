import { EnvFlagSource } from './env-flags.js';
import { FileFlagSource } from './file-flags.js';
import { FlagState, type FlagStateOptions } from './flag-state.js';
import type { FlagSource } from './migration-flags.js';
import { lastKnownFlagsPath, LastKnownFlagSource } from './last-known-flags.js';
import { UnleashFlagSource } from './unleash-flags.js';

/** Where operators' flags are kept: DUALWRITE_FLAGS_FILE, default .dualwrite/flags.json. */
export function flagsFilePath(env: NodeJS.ProcessEnv): string {
  return env.DUALWRITE_FLAGS_FILE || '.dualwrite/flags.json';
}

/**
 * The flag layer from the environment: Unleash when UNLEASH_URL is set (token
 * UNLEASH_TOKEN, bootstrap UNLEASH_BOOTSTRAP_FILE), then the flags file (DUALWRITE_FLAGS_FILE,
 * default .dualwrite/flags.json; the admin API and CLI write it), then DUAL_WRITE_MODE /
 * READ_FROM_POSTGRES_PERCENT, then the flags the last process ran with
 * (DUALWRITE_LAST_FLAGS_PATH); memory-only when none has flags. The flags file ranks above
 * env so that an operator's change outlives a restart.
 */
export function openFlags(env: NodeJS.ProcessEnv = process.env, options: FlagStateOptions = {}): { readonly flags: FlagState; readonly flagsFile: FileFlagSource } {
  const onError = (source: string, error: unknown) => {
    options.metrics?.flagSourceErrors.inc({ source });
    options.logger?.warn(`dualwrite: flag source ${source} failed, keeping last known flags: ${error instanceof Error ? error.message : String(error)}`);
  };
  const sources: FlagSource[] = [];
  if (env.UNLEASH_URL) {
    sources.push(new UnleashFlagSource({ url: env.UNLEASH_URL, token: env.UNLEASH_TOKEN, bootstrapFile: env.UNLEASH_BOOTSTRAP_FILE || undefined, onError }));
  }
  const flagsFile = new FileFlagSource({ path: flagsFilePath(env), onError });
  sources.push(flagsFile);
  sources.push(new EnvFlagSource(env));
  const lastKnown = LastKnownFlagSource.read(lastKnownFlagsPath(env), (error) => onError('last-known', error));
  sources.push(lastKnown);
  return { flags: new FlagState(sources, { ...options, lastKnown: lastKnown.saved }), flagsFile };
}
