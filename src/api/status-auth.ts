import { createHmac } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { bearerToken, tokenCheck, type TokenRefusals } from './admin-auth.js';
import { ApiError } from './errors.js';

/** Holds the page's credential; sent only to /status and below. */
const COOKIE_NAME = 'dualwrite_status';
/** A shift's length: afterwards the page asks for its token again. */
const COOKIE_MAX_AGE_SECONDS = 12 * 60 * 60;

const REFUSALS: TokenRefusals = {
  disabled: 'the status page is disabled: neither a status token nor an admin token is configured',
  missing:
    'the status page needs a token: open /status?token=<status or admin token>, or send Authorization: Bearer <token>',
  wrong:
    'the token is wrong, or the page was opened with a token that has since changed: open /status?token=<token> again',
};

/**
 * The status page's check of every request (an onRequest hook), open to `tokens` (the status
 * token and the admin token; unset ones are left out).
 *
 * A browser cannot send a bearer header when a person opens a link, so GET /status?token=
 * trades a valid token for an HttpOnly, SameSite=Strict cookie and redirects to /status
 * without it (out of the address bar and history); the cookie holds an HMAC of the token,
 * not the token, so it opens nothing but this page. Every other request needs that cookie
 * or `Authorization: Bearer <token>`. The request log redacts the token in the query
 * string (buildApi's serializer).
 */
export function statusPageAuthentication(
  tokens: readonly (string | undefined)[],
): (request: FastifyRequest, reply: FastifyReply) => Promise<FastifyReply | undefined> {
  const checkBearer = tokenCheck(tokens, REFUSALS);
  const checkCookie = tokenCheck(
    tokens.map((token) => token && cookieValue(token)),
    REFUSALS,
  );
  const refuse = (reply: FastifyReply, refusal: string) => {
    reply.header('www-authenticate', 'Bearer realm="dualwrite-status"');
    return new ApiError(401, refusal);
  };
  return async (request, reply) => {
    const offered = pageTokenOffered(request);
    if (offered !== undefined) {
      const refused = checkBearer(offered);
      if (refused) throw refuse(reply, refused);
      return reply
        .header('set-cookie', sessionCookie(cookieValue(offered), request.protocol === 'https'))
        .header('cache-control', 'no-store')
        .header('referrer-policy', 'no-referrer')
        .redirect('/status', 303);
    }
    const bearer = bearerToken(request.headers.authorization);
    const refused =
      bearer !== undefined ? checkBearer(bearer) : checkCookie(cookie(request.headers.cookie, COOKIE_NAME));
    if (refused) throw refuse(reply, refused);
    reply
      .header('cache-control', 'no-store')
      .header('referrer-policy', 'no-referrer')
      .header('x-content-type-options', 'nosniff');
  };
}

/** The token a person offers in GET /status?token=, to trade for the page's cookie. */
function pageTokenOffered(request: FastifyRequest): string | undefined {
  if (request.method !== 'GET' || request.url.split('?')[0] !== '/status') return undefined;
  const { token } = request.query as { token?: unknown };
  return typeof token === 'string' ? token : undefined;
}

/** What the page's cookie holds for `token`: a value that stands for it on this page only, and cannot be used as a bearer token. */
function cookieValue(token: string): string {
  return createHmac('sha256', token).update('dualwrite status page').digest('base64url');
}

function sessionCookie(value: string, secure: boolean): string {
  return `${COOKIE_NAME}=${value}; Path=/status; Max-Age=${COOKIE_MAX_AGE_SECONDS}; HttpOnly; SameSite=Strict${secure ? '; Secure' : ''}`;
}

/** The value of cookie `name` in a Cookie header, or undefined. */
function cookie(header: string | undefined, name: string): string | undefined {
  for (const pair of (header ?? '').split(';')) {
    const separator = pair.indexOf('=');
    if (separator > 0 && pair.slice(0, separator).trim() === name) return pair.slice(separator + 1).trim();
  }
  return undefined;
}
