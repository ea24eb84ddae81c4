// Redaction of URLs and request targets for status, logs and `icalpush check` (SPEC "Admin":
// secrets never appear there). Calendar feeds carry their credential in the URL itself: in the
// userinfo, in a query value (Airbnb `?s=…`, Booking.com `?t=…`), as a bare query (`?abc123`),
// or as a path segment (VRBO `/icalendar/<token>.ics`, Google `/private-<token>/basic.ics`).
import { compilePathPattern, isPathPatternError, type PathPattern, type PathPiece } from './http/path-pattern.ts';

/** Turns a URL or request target into one safe to show; never throws. */
export type Redactor = (urlOrTarget: string) => string;

/** What replaces every secret. */
export const redactedMarker = '[REDACTED]';

/**
 * Builds a redactor that knows the config's `feeds` patterns. It hides the userinfo, every query
 * value (a parameter without `=` entirely), the fragment, the `{secret}` parts of a path that a
 * feeds pattern matches, and, on any other path, every segment that looks like a token.
 */
export function createRedactor(feedPatterns: readonly string[]): Redactor {
  const patterns = feedPatterns.flatMap((source) => {
    const compiled = compilePathPattern(source);
    return isPathPatternError(compiled) ? [] : [compiled];
  });
  return (urlOrTarget) => redact(urlOrTarget, patterns);
}

/**
 * The redactor for code that has no config: userinfo, query values and token-like path
 * segments. A `{secret}` that looks like a plain word is only found by createRedactor.
 */
export const redactUrl: Redactor = createRedactor([]);

// RFC 3986 §3: scheme "://" authority, then path, query and fragment.
const absoluteUrl = /^([A-Za-z][A-Za-z0-9+.-]*:\/\/)([^/?#]*)(.*)$/s;

function redact(input: string, patterns: readonly PathPattern[]): string {
  if (input.startsWith('/')) return redactTarget(input, patterns);
  const absolute = absoluteUrl.exec(input);
  if (absolute) {
    const [, scheme = '', authority = '', rest = ''] = absolute;
    // The last `@` ends the userinfo (RFC 3986 §3.2.1): a password may itself contain `@`.
    const at = authority.lastIndexOf('@');
    const host = at === -1 ? authority : `${redactedMarker}@${authority.slice(at + 1)}`;
    return `${scheme}${host}${redactTarget(rest, patterns)}`;
  }
  // Not a URL (`*`, a typo, half a URL): whatever looks like userinfo goes, and the query.
  const q = input.indexOf('?');
  const head = (q === -1 ? input : input.slice(0, q)).replace(/[^/?#@]*@/g, `${redactedMarker}@`);
  return q === -1 ? redactPathHeuristic(head) : `${redactPathHeuristic(head)}?${redactedMarker}`;
}

/** Path, query and fragment of a URL (the path may be empty: `https://host?x`). */
function redactTarget(target: string, patterns: readonly PathPattern[]): string {
  const hash = target.indexOf('#');
  const beforeHash = hash === -1 ? target : target.slice(0, hash);
  // A fragment never reaches a server, but OAuth-style links put tokens there.
  let fragment = '';
  if (hash !== -1) fragment = hash === target.length - 1 ? '#' : `#${redactedMarker}`;
  const q = beforeHash.indexOf('?');
  const path = q === -1 ? beforeHash : beforeHash.slice(0, q);
  const query = q === -1 ? '' : `?${redactQuery(beforeHash.slice(q + 1))}`;
  return `${redactPath(path, patterns)}${query}${fragment}`;
}

/** `a=1&a=2&flag` → `a=[REDACTED]&a=[REDACTED]&[REDACTED]`: names stay, they help the reader. */
function redactQuery(query: string): string {
  if (query === '') return '';
  return query
    .split('&')
    .map((pair) => {
      if (pair === '') return pair;
      const eq = pair.indexOf('=');
      // A bare parameter is the secret itself often enough (`/ical/x.ics?abc123secret`).
      return eq === -1 ? redactedMarker : `${pair.slice(0, eq)}=${redactedMarker}`;
    })
    .join('&');
}

function redactPath(path: string, patterns: readonly PathPattern[]): string {
  for (const pattern of patterns) {
    const pieces = pattern.pieces(path);
    if (pieces) return pieces.map(redactPiece).join('');
  }
  return redactPathHeuristic(path);
}

// The operator named this path's parts: the literal text and the listing id are shown (status
// shows the id anyway), a `{secret}` is hidden, and a wildcard's text is judged like any path.
function redactPiece(piece: PathPiece): string {
  if (piece.kind === 'secret') return redactedMarker;
  if (piece.kind === 'wildcard') return redactPathHeuristic(piece.text);
  return piece.text;
}

function redactPathHeuristic(path: string): string {
  return path.split('/').map(redactSegment).join('/');
}

// `3f2a9c7e1b8d4a6f0e5d.ics` keeps its `.ics`: the extension is what tells a reader what it is.
const extension = /^(.+)(\.[A-Za-z0-9]{1,10})$/s;

function redactSegment(segment: string): string {
  const parts = extension.exec(segment);
  if (parts && isTokenLike(parts[1] ?? '')) return `${redactedMarker}${parts[2] ?? ''}`;
  return isTokenLike(segment) ? redactedMarker : segment;
}

/**
 * True for what a generated credential looks like and an id or a word does not: at least 16
 * URL-safe characters mixing letters and digits (hex, base64url, UUIDs), or anything of 32 or
 * more. `12345678` (an Airbnb listing number) and `beach-house` stay readable.
 */
export function isTokenLike(text: string): boolean {
  if (text.length >= 32) return true;
  return text.length >= 16 && /^[A-Za-z0-9_-]+$/.test(text) && /[A-Za-z]/.test(text) && /\d/.test(text);
}
