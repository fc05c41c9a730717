/**
 * Keeps secrets out of errors and logs: the DATABASE_URL password must never reach a
 * log line, a metric or an error message.
 */

/** The URL with its password (user-info or ?password=) replaced by "***"; anything not a postgres URL is hidden whole. */
export function redactUrl(url: string): string {
  const parsed = parsePostgresUrl(url);
  if (!parsed) return '<unparseable connection string>';
  if (parsed.password) parsed.password = '***';
  if (parsed.searchParams.has('password')) parsed.searchParams.set('password', '***');
  return parsed.toString();
}

/** Secrets found in a connection string: its passwords, raw and URL-decoded; the whole string if it cannot be parsed. */
export function secretsOf(url: string): string[] {
  const parsed = parsePostgresUrl(url);
  if (!parsed) return [url];
  const passwords = [parsed.password, parsed.searchParams.get('password') ?? ''].filter(Boolean);
  return [...new Set(passwords.flatMap((password) => [password, safeDecode(password), encodeURIComponent(password)]))];
}

function parsePostgresUrl(url: string): URL | undefined {
  try {
    const parsed = new URL(url);
    return parsed.protocol === 'postgres:' || parsed.protocol === 'postgresql:' ? parsed : undefined;
  } catch {
    return undefined;
  }
}

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

export function redactText(text: string, secrets: readonly string[]): string {
  let result = text;
  for (const secret of secrets) if (secret) result = result.split(secret).join('***');
  return result;
}

/** Returns `error` with every secret removed from its message, stack and detail. */
export function redactError(error: unknown, secrets: readonly string[]): unknown {
  if (!(error instanceof Error) || secrets.length === 0) return error;
  error.message = redactText(error.message, secrets);
  if (error.stack) error.stack = redactText(error.stack, secrets);
  const withDetail = error as Error & { detail?: unknown };
  if (typeof withDetail.detail === 'string') withDetail.detail = redactText(withDetail.detail, secrets);
  return error;
}
