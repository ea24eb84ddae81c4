// Sync-Token values (draft §6: a URI, here an opaque `data:` URI) that carry a delta position and a
// short hash of the feed key, never the key itself: feed queries often hold the listing's secret.
import { createHash } from 'node:crypto';

/**
 * What a token carries: the feed it belongs to, the lineage of that feed's history (so a token
 * from a history that was lost and rebuilt is unknown, not silently wrong) and the position
 * (see SyncPosition in history.ts).
 */
export type TokenFields = { feed: string; lineage: string; version: number; after?: string; initial?: boolean };

/** A decoded token, or why it cannot be used; every failure is a 409 for the caller (draft §4.3). */
export type DecodedToken =
  | { ok: true; lineage: string; version: number; after?: string; initial?: boolean }
  | { ok: false; reason: 'malformed' | 'other-feed' };

// `v1.<feed hash>.<lineage>.[i]<version>[.<after as base64url>]` (`i`: a paged first sync): only
// characters that need no escaping in a data URI or a quoted header value, whatever the UID holds.
const tokenPattern = /^v1\.([A-Za-z0-9_-]{16})\.([A-Za-z0-9_-]{8})\.(i?)(0|[1-9]\d{0,14})(?:\.([A-Za-z0-9_-]+))?$/;

/** The quoted `"data:,…"` header value for a position in a feed. */
export function encodeToken(fields: TokenFields): string {
  const after = fields.after === undefined ? '' : `.${Buffer.from(fields.after, 'utf8').toString('base64url')}`;
  const initial = fields.initial ? 'i' : '';
  return `"data:,v1.${feedHash(fields.feed)}.${fields.lineage}.${initial}${fields.version}${after}"`;
}

/** Reads a Sync-Token header value, quoted or not, and checks it belongs to `feed`. */
export function decodeToken(header: string, feed: string): DecodedToken {
  const trimmed = header.trim();
  const unquoted = trimmed.length >= 2 && trimmed.startsWith('"') && trimmed.endsWith('"') ? trimmed.slice(1, -1) : trimmed;
  if (!unquoted.startsWith('data:,')) return { ok: false, reason: 'malformed' };
  const match = tokenPattern.exec(unquoted.slice('data:,'.length));
  if (!match) return { ok: false, reason: 'malformed' };
  const [, hash, lineage = '', initialText, versionText, afterText] = match;
  const version = Number(versionText);
  if (!Number.isSafeInteger(version)) return { ok: false, reason: 'malformed' };
  let after: string | undefined;
  if (afterText !== undefined) {
    after = Buffer.from(afterText, 'base64url').toString('utf8');
    // Only the exact encoding we mint is accepted, so a token never decodes to a mangled id.
    if (after === '' || Buffer.from(after, 'utf8').toString('base64url') !== afterText) {
      return { ok: false, reason: 'malformed' };
    }
  }
  if (hash !== feedHash(feed)) return { ok: false, reason: 'other-feed' };
  return {
    ok: true,
    lineage,
    version,
    ...(after === undefined ? {} : { after }),
    ...(initialText === 'i' ? { initial: true } : {}),
  };
}

// 96 bits of sha256 tell feeds apart without making the key (and its secret) recoverable.
function feedHash(feed: string): string {
  return createHash('sha256').update(feed).digest('base64url').slice(0, 16);
}
