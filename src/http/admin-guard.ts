// Who may use the non-health admin endpoints (SPEC "Admin"): the holder of `admin.token` when
// one is set, otherwise only loopback clients. Only the socket address counts, never a header. The token
// comes as `Authorization: Bearer <token>`, or, from a browser on the console, as the password of Basic
// credentials.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { BlockList, isIPv4, isIPv6 } from 'node:net';
import { IcalpushError } from '../errors.ts';

// BlockList also matches IPv4-mapped IPv6 (::ffff:127.0.0.1) against the IPv4 rule.
const loopback = new BlockList();
loopback.addSubnet('127.0.0.0', 8, 'ipv4');
loopback.addAddress('::1', 'ipv6');

/** True for 127.0.0.0/8, ::1 and ::ffff:127.x; false for anything else, unparsable included. */
export function isLoopback(address: string | undefined): boolean {
  if (address === undefined) return false;
  if (isIPv4(address)) return loopback.check(address, 'ipv4');
  if (isIPv6(address)) return loopback.check(address, 'ipv6');
  return false;
}

/** Decides one admin request: undefined to serve it, or the error to refuse it with. */
export type AdminGuard = (req: IncomingMessage) => IcalpushError | undefined;

// Comparing SHA-256 digests gives timingSafeEqual the equal-length buffers it needs, so
// neither the token's bytes nor its length leak through response timing.
function digest(value: string): Buffer {
  return createHash('sha256').update(value, 'utf8').digest();
}

const bearer = /^bearer +/i;
const basic = /^basic +/i;

// The token a request presents: a bearer token, or the password of Basic credentials (what a browser sends
// to the console after its login prompt; the user name is not checked). Undefined for neither.
function presentedToken(header: string): string | undefined {
  const asBearer = bearer.exec(header);
  if (asBearer) return header.slice(asBearer[0].length);
  const asBasic = basic.exec(header);
  if (!asBasic) return undefined;
  const decoded = Buffer.from(header.slice(asBasic[0].length).trim(), 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  return colon === -1 ? undefined : decoded.slice(colon + 1);
}

/** Creates the guard for `token` (undefined: loopback clients only). */
export function createAdminGuard(token: string | undefined): AdminGuard {
  if (token === undefined) {
    return (req) =>
      isLoopback(req.socket.remoteAddress)
        ? undefined
        : new IcalpushError('ADMIN_FORBIDDEN', 'admin endpoints answer loopback clients only');
  }
  const expected = digest(token);
  return (req) => {
    const header = req.headers.authorization;
    const token = header === undefined ? undefined : presentedToken(header);
    if (token === undefined) {
      return new IcalpushError('ADMIN_UNAUTHORIZED', 'missing bearer token');
    }
    const presented = digest(token);
    return timingSafeEqual(presented, expected)
      ? undefined
      : new IcalpushError('ADMIN_UNAUTHORIZED', 'wrong bearer token');
  };
}
