import { createHash, timingSafeEqual } from 'node:crypto';

/** What a token check answers when it refuses a request. */
export interface TokenRefusals {
  /** No token is configured, so every request is refused. */
  readonly disabled: string;
  /** The request presents no token. */
  readonly missing: string;
  /** The token presented is none of the accepted ones. */
  readonly wrong: string;
}

/** A refusal, or undefined when the request may pass. */
export type TokenCheck = (presented: string | undefined) => string | undefined;

/**
 * Checks a presented token against the accepted ones (absent or empty ones are left out)
 * and returns why the request is refused, or undefined when it may pass. Compares sha256
 * digests with timingSafeEqual, against every accepted token, so neither a token's
 * characters, nor its length, nor which token matched leak through timing. With no token
 * accepted every request is refused.
 */
export function tokenCheck(accepted: readonly (string | undefined)[], refusals: TokenRefusals): TokenCheck {
  const expected = accepted.filter((token): token is string => Boolean(token)).map(digest);
  return (presented) => {
    if (expected.length === 0) return refusals.disabled;
    if (presented === undefined) return refusals.missing;
    const given = digest(presented);
    let matched = false;
    for (const token of expected) matched = timingSafeEqual(given, token) || matched;
    return matched ? undefined : refusals.wrong;
  };
}

/** The token of an `Authorization: Bearer <token>` header, or undefined when there is none. */
export function bearerToken(authorization: string | undefined): string | undefined {
  return /^Bearer +(\S+) *$/i.exec(authorization ?? '')?.[1];
}

/** The admin routes' check of an authorization header: the admin token only. */
export function adminTokenCheck(
  adminToken: string | undefined,
): (authorization: string | undefined) => string | undefined {
  const check = tokenCheck([adminToken], {
    disabled: 'admin routes are disabled: no admin token is configured',
    missing: 'admin routes need Authorization: Bearer <admin token>',
    wrong: 'the admin token is wrong',
  });
  return (authorization) => check(bearerToken(authorization));
}

function digest(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}
