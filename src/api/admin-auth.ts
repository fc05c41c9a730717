import { createHash, timingSafeEqual } from 'node:crypto';

/**
 * Checks `Authorization: Bearer <token>` against the configured admin token and returns
 * why a request is refused, or undefined when it may pass. Compares sha256 digests with
 * timingSafeEqual, so neither the token's characters nor its length leak through timing.
 * Without a configured token (absent or empty) every request is refused.
 */
export function adminTokenCheck(adminToken: string | undefined): (authorization: string | undefined) => string | undefined {
  const expected = adminToken ? digest(adminToken) : undefined;
  return (authorization) => {
    if (!expected) return 'admin routes are disabled: no admin token is configured';
    const presented = /^Bearer +(\S+) *$/i.exec(authorization ?? '')?.[1];
    if (presented === undefined) return 'admin routes need Authorization: Bearer <admin token>';
    if (!timingSafeEqual(digest(presented), expected)) return 'the admin token is wrong';
    return undefined;
  };
}

function digest(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}
