/**
 * Keeps secrets out of errors and logs: the DATABASE_URL password must never reach a
 * log line, a metric or an error message.
 */

/** The URL with its password (user-info or ?password=) replaced by "***"; anything not a postgres or redis URL is hidden whole. */
export function redactUrl(url: string): string {
  const parsed = parseServiceUrl(url);
  if (!parsed) return '<unparseable connection string>';
  if (parsed.password) parsed.password = '***';
  if (parsed.searchParams.has('password')) parsed.searchParams.set('password', '***');
  return parsed.toString();
}

/**
 * Why a connection string would be misread, if it would: an unencoded "#" ends the URL
 * and an unencoded "@" in the password moves the host, so part of the password would be
 * taken for a host (and looked up in DNS, and printed). The reason shows the URL with
 * everything between "user:" and its last "@" hidden, whatever the parser would make of it.
 */
export function malformedUrlReason(url: string): string | undefined {
  const scheme = url.indexOf('://');
  // An "@" in the query (?user=a@b) is not the host's.
  const query = url.indexOf('?', scheme + 3);
  const lastAt = url.lastIndexOf('@', query >= 0 ? query : url.length);
  const authorityEnd = lastAt > scheme ? lastAt : scheme + 3;
  const tail = url.slice(authorityEnd);
  const userInfo = url.slice(scheme + 3, Math.max(scheme + 3, authorityEnd));
  const hidden = `${url.slice(0, scheme + 3)}${userInfo.includes(':') ? `${userInfo.slice(0, userInfo.indexOf(':'))}:***` : userInfo}${tail}`;
  if (userInfo.includes('#') || tail.includes('#'))
    return `contains "#", which ends a URL: percent-encode it as %23 (${hidden})`;
  if (userInfo.split('@').length > 1)
    return `has more than one "@" before the host: percent-encode "@" in the user or password as %40 (${hidden})`;
  if (/[/?]/.test(userInfo))
    return `has "/" or "?" in the user or password: percent-encode them (%2F, %3F) (${hidden})`;
  return undefined;
}

/** Secrets found in a connection string: its passwords, raw and URL-decoded; the whole string if it cannot be parsed. */
export function secretsOf(url: string): string[] {
  const parsed = parseServiceUrl(url);
  if (!parsed) return [url];
  const passwords = [parsed.password, parsed.searchParams.get('password') ?? ''].filter(Boolean);
  return [...new Set(passwords.flatMap((password) => [password, safeDecode(password), encodeURIComponent(password)]))];
}

function parseServiceUrl(url: string): URL | undefined {
  try {
    const parsed = new URL(url);
    return ['postgres:', 'postgresql:', 'redis:', 'rediss:'].includes(parsed.protocol) ? parsed : undefined;
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

/** Connection strings inside free text (an error message), up to the next space or quote. */
const CONNECTION_STRINGS = /\b(?:postgres(?:ql)?|rediss?):\/\/[^\s'"<>`]+/gi;

/** `text` with every postgres or redis URL in it redacted (redactUrl), wherever it came from: for messages that leave the process. */
export function redactConnectionStrings(text: string): string {
  return text.replace(CONNECTION_STRINGS, (url) => redactUrl(url));
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
