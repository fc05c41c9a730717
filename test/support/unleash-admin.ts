// Small typed client for the Unleash 7 admin API, used by integration tests against tools/unleash-server.

/** A strategy-level variant; `variable` weights are spread by the server over what `fix` weights leave of 1000. */
export interface StrategyVariant {
  name: string;
  weight: number;
  weightType: 'variable' | 'fix';
  stickiness: string;
  payload?: { type: 'string' | 'json' | 'csv' | 'number'; value: string };
}

/** Settings of a feature's flexibleRollout strategy in one environment. */
export interface FlexibleRollout {
  /** Percentage 0-100 of stickiness-hash buckets that get the feature. */
  rollout: number;
  /** Context field whose value is hashed, e.g. `routingKey` or `default`. */
  stickiness: string;
  groupId: string;
  variants?: Array<string | StrategyVariant>;
}

/** A strategy as the admin API returns it. */
export interface FeatureStrategy {
  id: string;
  name: string;
  title?: string | null;
  disabled?: boolean | null;
  constraints: unknown[];
  parameters: Record<string, string>;
  variants: StrategyVariant[];
  segments?: number[];
}

export interface UnleashAdminOptions {
  /** Server root, e.g. `http://127.0.0.1:4242`. */
  url: string;
  /** Admin token, e.g. `*:*.dualwrite-admin-token`. */
  adminToken: string;
  /** Project holding the features; `default` if omitted. */
  project?: string;
}

/** Non-2xx answer from the admin API. */
export class UnleashAdminError extends Error {
  readonly status: number;

  constructor(method: string, path: string, status: number, body: string) {
    super(`${method} ${path} -> ${status}: ${body}`);
    this.name = 'UnleashAdminError';
    this.status = status;
  }
}

export class UnleashAdmin {
  readonly #url: string;
  readonly #token: string;
  readonly #project: string;

  constructor({ url, adminToken, project = 'default' }: UnleashAdminOptions) {
    this.#url = url.replace(/\/+$/, '');
    this.#token = adminToken;
    this.#project = project;
  }

  /** Creates custom context field `name` if missing, and makes its stickiness flag match. */
  async ensureContextField(name: string, { stickiness = true, description = '' } = {}): Promise<void> {
    const field = await this.#find<{ stickiness: boolean; description?: string }>(`/api/admin/context/${enc(name)}`);
    if (!field) {
      await this.#call('POST', '/api/admin/context', { name, description, stickiness });
    } else if (field.stickiness !== stickiness) {
      await this.#call('PUT', `/api/admin/context/${enc(name)}`, { ...field, name, stickiness });
    }
  }

  /** Creates feature toggle `name` in the project if missing (it starts disabled in every environment). */
  async ensureFeature(name: string, { type = 'operational', description = '' } = {}): Promise<void> {
    if (!(await this.#find(this.#featurePath(name)))) {
      await this.#call('POST', `/api/admin/projects/${enc(this.#project)}/features`, { name, type, description });
    }
  }

  /** Creates or fully replaces the feature's flexibleRollout strategy in `environment`. */
  async setFlexibleRollout(
    feature: string,
    settings: FlexibleRollout,
    environment = 'development',
  ): Promise<FeatureStrategy> {
    const body = {
      name: 'flexibleRollout',
      constraints: [],
      parameters: { rollout: percentage(settings.rollout), stickiness: settings.stickiness, groupId: settings.groupId },
      variants: (settings.variants ?? []).map((v) => toVariant(v, settings.stickiness)),
    };
    const existing = await this.#flexibleRollout(feature, environment);
    const path = `${this.#featurePath(feature)}/environments/${enc(environment)}/strategies`;
    return existing
      ? this.#call<FeatureStrategy>('PUT', `${path}/${existing.id}`, { ...existing, ...body })
      : this.#call<FeatureStrategy>('POST', path, body);
  }

  /** Changes only the rollout percentage of the feature's existing flexibleRollout strategy. */
  async setRolloutPercentage(feature: string, rollout: number, environment = 'development'): Promise<FeatureStrategy> {
    return this.#updateFlexibleRollout(feature, environment, (s) => ({
      ...s,
      parameters: { ...s.parameters, rollout: percentage(rollout) },
    }));
  }

  /** Replaces the strategy variants of the feature's existing flexibleRollout strategy (a string is a variable-weight variant). */
  async setVariants(
    feature: string,
    variants: Array<string | StrategyVariant>,
    environment = 'development',
  ): Promise<FeatureStrategy> {
    return this.#updateFlexibleRollout(feature, environment, (s) => ({
      ...s,
      variants: variants.map((v) => toVariant(v, s.parameters.stickiness ?? 'default')),
    }));
  }

  /** Turns the feature on in `environment`. */
  async enable(feature: string, environment = 'development'): Promise<void> {
    await this.#call('POST', `${this.#featurePath(feature)}/environments/${enc(environment)}/on`);
  }

  /** Turns the feature off in `environment`. */
  async disable(feature: string, environment = 'development'): Promise<void> {
    await this.#call('POST', `${this.#featurePath(feature)}/environments/${enc(environment)}/off`);
  }

  #featurePath(feature: string): string {
    return `/api/admin/projects/${enc(this.#project)}/features/${enc(feature)}`;
  }

  async #flexibleRollout(feature: string, environment: string): Promise<FeatureStrategy | undefined> {
    const path = `${this.#featurePath(feature)}/environments/${enc(environment)}/strategies`;
    const strategies = await this.#call<FeatureStrategy[]>('GET', path);
    return strategies.find((s) => s.name === 'flexibleRollout');
  }

  // PUT replaces the whole strategy (omitted parameters and variants are dropped), so always send it complete.
  async #updateFlexibleRollout(
    feature: string,
    environment: string,
    change: (s: FeatureStrategy) => FeatureStrategy,
  ): Promise<FeatureStrategy> {
    const existing = await this.#flexibleRollout(feature, environment);
    if (!existing) throw new Error(`${feature} has no flexibleRollout strategy in ${environment}`);
    const path = `${this.#featurePath(feature)}/environments/${enc(environment)}/strategies/${existing.id}`;
    return this.#call<FeatureStrategy>('PUT', path, change(existing));
  }

  async #find<T>(path: string): Promise<T | undefined> {
    try {
      return await this.#call<T>('GET', path);
    } catch (err) {
      if (err instanceof UnleashAdminError && err.status === 404) return undefined;
      throw err;
    }
  }

  async #call<T = unknown>(method: string, path: string, body?: unknown): Promise<T> {
    const res = await fetch(this.#url + path, {
      method,
      headers: { Authorization: this.#token, ...(body === undefined ? {} : { 'Content-Type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    if (!res.ok) throw new UnleashAdminError(method, path, res.status, text);
    return (text ? JSON.parse(text) : undefined) as T;
  }
}

/** Resolves once `url` (e.g. `http://127.0.0.1:4242/health`) answers 2xx; rejects after `timeoutMs`. */
export async function waitForHealth(url: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(2_000) });
      if (res.ok) return;
    } catch {
      // not listening yet
    }
    if (Date.now() >= deadline) throw new Error(`${url} did not answer within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

function enc(segment: string): string {
  return encodeURIComponent(segment);
}

function percentage(rollout: number): string {
  if (!Number.isInteger(rollout) || rollout < 0 || rollout > 100) {
    throw new RangeError(`rollout must be an integer 0-100, got ${rollout}`);
  }
  return String(rollout);
}

function toVariant(variant: string | StrategyVariant, stickiness: string): StrategyVariant {
  return typeof variant === 'string' ? { name: variant, weight: 0, weightType: 'variable', stickiness } : variant;
}
