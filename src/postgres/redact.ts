/**
 * Keeps secrets out of errors and logs: the DATABASE_URL password must never reach a
 * log line, a metric or an error message.
 */

/** The URL with its password replaced by "***" (unparseable input is hidden whole). */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return '<unparseable connection string>';
  }
}

/** Secrets found in a connection string: its password, raw and URL-decoded. */
export function secretsOf(url: string): string[] {
  try {
    const password = new URL(url).password;
    return password ? [...new Set([password, decodeURIComponent(password)])] : [];
  } catch {
    return [url];
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
