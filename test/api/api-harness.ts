import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import { expect } from 'vitest';
import { buildApi, type ApiOptions } from '../../src/api/app.js';
import type { Stage } from '../../src/ports/stage.js';
import type { SqlExecutor } from '../../src/postgres/sql-executor.js';
import type { Backend } from '../support/backends.js';
import { dumpSide, useTestRuntimes, type TestRuntime, type TestRuntimeOptions } from '../support/runtimes.js';

/** One HTTP answer: status, headers, the body as text and, when it is JSON, parsed. */
export interface HttpAnswer {
  readonly status: number;
  readonly headers: Headers;
  readonly text: string;
  // Tests read arbitrary fields of the answers.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  readonly body: any;
}

export interface RequestOptions {
  /** Sent as JSON; a string is sent as it is (for malformed bodies). */
  readonly body?: unknown;
  /** Sent as `Authorization: Bearer <token>`. */
  readonly token?: string;
  readonly headers?: Readonly<Record<string, string>>;
}

/** An API listening on 127.0.0.1 over a runtime on the test database. */
export interface ApiHarness extends TestRuntime {
  readonly app: FastifyInstance;
  readonly url: string;
  call(method: string, path: string, options?: RequestOptions): Promise<HttpAnswer>;
  /** Both sides, record for record, once the mirror has landed what it accepted. */
  sides(): Promise<{ memory: Record<string, unknown[]>; postgres: Record<string, unknown[]> }>;
  /**
   * Sends a request that must be refused with `status` (and `field`, when given) and
   * checks that neither side changed.
   */
  refused(
    method: string,
    path: string,
    options: RequestOptions,
    expected: { status: number; field?: string },
  ): Promise<HttpAnswer>;
}

export interface ApiHarnessOptions {
  readonly stage?: Stage;
  /** The database the runtime uses (a FaultySql over the backend's, to cut it off). Default: the backend's. */
  readonly db?: SqlExecutor;
  readonly adminToken?: string;
  readonly statusToken?: string;
  /** How the status page's history samples the runtime. Default: buildApi's. */
  readonly statusHistory?: ApiOptions['statusHistory'];
  readonly logger?: FastifyBaseLogger;
  /** Open the flag layer from this environment instead of a ManualFlagSource (what runtime.setFlags needs). */
  readonly env?: NodeJS.ProcessEnv;
  readonly transitions?: TestRuntimeOptions['transitions'];
  /** Shadow reads. Default: off (see TestRuntimeOptions.shadow). */
  readonly shadow?: TestRuntimeOptions['shadow'];
}

/** Opens APIs over runtimes on `backend`'s database; everything is closed after each test. */
export function useApiHarness(backend: { current: Backend }): {
  open(options?: ApiHarnessOptions): Promise<ApiHarness>;
  defer(cleanup: () => Promise<unknown>): void;
} {
  const runtimes = useTestRuntimes();
  const open = async (options: ApiHarnessOptions = {}): Promise<ApiHarness> => {
    const opened = await runtimes.open({
      db: options.db ?? backend.current.db!,
      stage: options.stage,
      env: options.env,
      transitions: options.transitions,
      shadow: options.shadow,
      lease: false,
    });
    const { rt } = opened;
    const app = buildApi({
      graph: rt.graph,
      tasks: rt.tasks,
      runtime: rt,
      adminToken: options.adminToken,
      statusToken: options.statusToken,
      statusHistory: options.statusHistory,
      logger: options.logger,
    });
    const url = await app.listen({ port: 0, host: '127.0.0.1' });
    runtimes.defer(() => app.close());
    const call = (method: string, path: string, requestOptions: RequestOptions = {}) =>
      request(url, method, path, requestOptions);
    const sides = async () => {
      await rt.mirror.settled();
      return { memory: await dumpSide(rt, 'memory'), postgres: await dumpSide(rt, 'postgres') };
    };
    return {
      ...opened,
      app,
      url,
      call,
      sides,
      async refused(method, path, requestOptions, expected) {
        const before = await sides();
        const answer = await call(method, path, requestOptions);
        expect({ status: answer.status, field: answer.body?.field }, answer.text).toEqual({
          status: expected.status,
          field: expected.field ?? answer.body?.field,
        });
        expect(typeof answer.body?.error, answer.text).toBe('string');
        expect(await sides()).toEqual(before);
        return answer;
      },
    };
  };
  return { open, defer: runtimes.defer };
}

/** One request over real HTTP (global fetch). */
export async function request(
  base: string,
  method: string,
  path: string,
  options: RequestOptions = {},
): Promise<HttpAnswer> {
  const headers: Record<string, string> = { ...options.headers };
  if (options.body !== undefined) headers['content-type'] ??= 'application/json';
  if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`;
  const body =
    options.body === undefined
      ? undefined
      : typeof options.body === 'string'
        ? options.body
        : JSON.stringify(options.body);
  const response = await fetch(`${base}${path}`, { method, headers, body });
  const text = await response.text();
  const json = response.headers.get('content-type')?.includes('application/json') ? JSON.parse(text) : undefined;
  return { status: response.status, headers: response.headers, text, body: json };
}
