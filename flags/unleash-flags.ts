import type { EventEmitter } from 'node:events';
import { InMemStorageProvider, Unleash, type UnleashConfig } from 'unleash-client';
import { isStage } from '../src/ports/stage.js';
import {
  DEFAULT_ROLLOUT_GROUP,
  Listeners,
  parsePercent,
  type FlagErrorListener,
  type FlagSource,
  type MigrationFlags,
} from './migration-flags.js';

/** Toggle names, as defined in flags/unleash-features.json. */
export const STAGE_TOGGLE = 'dualwrite.stage';
export const READ_TOGGLE = 'dualwrite.read-from-postgres';

export interface UnleashFlagOptions {
  /** UNLEASH_URL, e.g. http://unleash:4242/api/. Required. */
  readonly url: string;
  /** UNLEASH_TOKEN: a client (backend) token. */
  readonly token?: string;
  /** Default "dualwrite". */
  readonly appName?: string;
  /** Poll interval. Default 5000 ms. (unleash-client's request timeout must stay >= 1000 ms.) */
  readonly refreshIntervalMs?: number;
  /** Flags used until the server first answers (same JSON shape as /api/client/features). Default: none. */
  readonly bootstrapFile?: string;
  readonly onError?: FlagErrorListener;
  /** Extra unleash-client settings (tests set storageProvider, timeouts). */
  readonly client?: Partial<UnleashConfig>;
}

/**
 * Flags from Unleash. The stage is the variant of toggle `dualwrite.stage` (disabled
 * means memory-only); the read percentage is the rollout of the flexibleRollout strategy
 * on `dualwrite.read-from-postgres` (disabled means 0), read from the toggle definition
 * so routing can bucket keys itself exactly as Unleash does, without calling isEnabled
 * on the hot path. Re-evaluated only when the client reports a change. When the server
 * is unreachable, unleash-client keeps the last known toggles, and so does this source.
 */
export class UnleashFlagSource implements FlagSource {
  readonly name = 'unleash';
  readonly client: Unleash;
  private flags: MigrationFlags | undefined;
  private readonly listeners = new Listeners();
  private clientReady = false;

  constructor(options: UnleashFlagOptions) {
    this.client = new Unleash({
      url: options.url,
      appName: options.appName ?? 'dualwrite',
      refreshInterval: options.refreshIntervalMs ?? 5000,
      disableMetrics: true,
      customHeaders: options.token ? { Authorization: options.token } : undefined,
      bootstrap: options.bootstrapFile ? { filePath: options.bootstrapFile } : undefined,
      storageProvider: new InMemStorageProvider(),
      ...options.client,
    });
    // Attached before anything can fail: an 'error' without a listener would crash the process.
    this.client.on('error', (error: unknown) => options.onError?.(this.name, error));
    this.client.on('warn', () => {});
    // Until 'ready', getVariant answers "disabled", which would read as memory-only: a guessed stage.
    this.client.on('ready', () => {
      this.clientReady = true;
      this.refresh(options.onError);
    });
    this.client.on('changed', () => {
      if (this.clientReady) this.refresh(options.onError);
    });
  }

  current(): MigrationFlags | undefined {
    return this.flags;
  }

  subscribe(listener: () => void): () => void {
    return this.listeners.subscribe(listener);
  }

  /** Resolves once the client has toggles (from the server or the bootstrap file). */
  ready(): Promise<void> {
    return this.flags ? Promise.resolve() : new Promise((resolve) => this.client.once('ready', () => resolve()));
  }

  async close(): Promise<void> {
    this.client.destroy();
    // destroy() drops the repository's listeners; a fetch still in flight would then emit an
    // unhandled 'error' and crash the process.
    (this.client as unknown as { repository: EventEmitter }).repository.on('error', () => {});
  }

  private refresh(onError: FlagErrorListener | undefined): void {
    try {
      const next = this.evaluate();
      if (!next || JSON.stringify(next) === JSON.stringify(this.flags)) return;
      this.flags = next;
      this.listeners.notify();
    } catch (error) {
      onError?.(this.name, error);
    }
  }

  /** The flags the toggles describe, or undefined while either toggle is unknown (never guess a stage). */
  private evaluate(): MigrationFlags | undefined {
    const stageToggle = this.client.getFeatureToggleDefinition(STAGE_TOGGLE);
    const readToggle = this.client.getFeatureToggleDefinition(READ_TOGGLE);
    if (!stageToggle || !readToggle) return undefined;
    const variant = this.client.getVariant(STAGE_TOGGLE);
    const stage = !stageToggle.enabled || !variant.enabled ? 'memory-only' : variant.name;
    if (!isStage(stage))
      throw new TypeError(`Unleash toggle ${STAGE_TOGGLE} has variant ${JSON.stringify(stage)}, not a stage`);
    const strategy = readToggle.strategies?.find((s) => s.name === 'flexibleRollout');
    const readPercent =
      readToggle.enabled && strategy
        ? parsePercent(strategy.parameters?.rollout ?? 0, `Unleash ${READ_TOGGLE} rollout`)
        : 0;
    const rolloutGroup = String(strategy?.parameters?.groupId || READ_TOGGLE || DEFAULT_ROLLOUT_GROUP);
    return { stage, readPercent, rolloutGroup };
  }
}
