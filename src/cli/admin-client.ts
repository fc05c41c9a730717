import { adminApiConfig } from '../runtime/config.js';
import { CliError, EXIT } from './exit-codes.js';
import type { AdminOptions } from './options.js';

/**
 * Talks to a running process's admin API (src/api/admin-routes.ts) over HTTP, with the
 * bearer token from DUALWRITE_ADMIN_TOKEN. Any answer but a 2xx becomes a CliError with the
 * exit code it calls for (src/cli/exit-codes.ts) and a message that says what to do next;
 * the token appears in none of them.
 */
export class AdminClient {
  /** The admin API's base URL, as given (it holds no secret: config.ts refuses credentials in it). */
  readonly url: string;
  private readonly token: string | undefined;

  constructor(url: string, token: string | undefined) {
    this.url = url.replace(/\/+$/, '');
    this.token = token;
  }

  /** The client for a command's `--url`, else DUALWRITE_URL, with DUALWRITE_ADMIN_TOKEN. */
  static fromOptions(options: AdminOptions): AdminClient {
    const config = adminApiConfig();
    return new AdminClient(options.url ?? config.adminUrl, config.adminToken);
  }

  get<T>(path: string): Promise<AdminAnswer<T>> {
    return this.request<T>('GET', path);
  }

  post<T>(path: string, body?: object): Promise<AdminAnswer<T>> {
    return this.request<T>('POST', path, body);
  }

  private async request<T>(method: string, path: string, body?: object): Promise<AdminAnswer<T>> {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (this.token !== undefined) headers.authorization = `Bearer ${this.token}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    let response: Response;
    try {
      response = await fetch(`${this.url}${path}`, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (error) {
      throw new CliError(
        EXIT.unreachable,
        `cannot reach the admin API at ${this.url}: ${connectionProblem(error)} (is dualwrite serve running there? --url or DUALWRITE_URL says where)`,
      );
    }
    const text = await response.text();
    const json = response.headers.get('content-type')?.includes('application/json') ? parseJson(text) : undefined;
    if (response.ok) {
      if (json === undefined)
        throw new CliError(
          EXIT.unreachable,
          `${this.url} is not a dualwrite admin API: ${method} ${path} answered ${response.status} without JSON`,
        );
      return { status: response.status, body: json as T };
    }
    throw this.refusal(method, path, response.status, (json as { error?: unknown } | undefined)?.error);
  }

  /**
   * What a 5xx says: which call failed on which process, and the cause the API sent. A
   * process of an older version answers a bare "internal error": then its log has the cause.
   */
  private failure(method: string, path: string, status: number, said: string): string {
    const cause =
      said === 'internal error'
        ? 'internal error (this process does not say more: its log has the cause, logged as "request failed")'
        : said;
    return `${method} ${path} failed on the process at ${this.url} (${status}): ${cause}`;
  }

  /** The CliError for a non-2xx answer; `error` is the API's own explanation, when it sent one. */
  private refusal(method: string, path: string, status: number, error: unknown): CliError {
    const said = typeof error === 'string' ? error : `${method} ${path} answered ${status}`;
    switch (status) {
      case 401:
        return new CliError(
          EXIT.unreachable,
          this.token === undefined
            ? `the admin API at ${this.url} needs a token: set DUALWRITE_ADMIN_TOKEN to the process's admin token`
            : `the admin API at ${this.url} refused the token in DUALWRITE_ADMIN_TOKEN: ${said}`,
        );
      case 404:
        return new CliError(EXIT.unreachable, `no dualwrite admin API at ${this.url}: ${method} ${path} answered 404`);
      case 400:
        return new CliError(EXIT.usage, `the admin API refused the request: ${said}`);
      case 503:
        return new CliError(EXIT.unreachable, `the process at ${this.url} cannot reach a dependency: ${said}`);
      default:
        return new CliError(EXIT.failed, status >= 500 ? this.failure(method, path, status, said) : said);
    }
  }
}

/** A 2xx answer of the admin API, its JSON body typed by the caller. */
export interface AdminAnswer<T> {
  readonly status: number;
  readonly body: T;
}

/** Why fetch could not connect, in words: fetch's own error only says "fetch failed". */
function connectionProblem(error: unknown): string {
  const cause = (error as { cause?: { code?: string; message?: string; errors?: { code?: string }[] } }).cause;
  const code = cause?.code ?? cause?.errors?.[0]?.code;
  if (code === 'ECONNREFUSED') return 'connection refused';
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return 'host not found';
  return code ?? cause?.message ?? (error instanceof Error ? error.message : String(error));
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
