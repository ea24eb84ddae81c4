// Path patterns of the config: `/calendar/{listing}.ics`, `/ical/{listing}/{secret}.ics`,
// `/bookings/{listing}/**`. `{listing}` captures one path segment (or part of one), `{secret}`
// matches like it but marks a credential to redact (SPEC "Admin"), `*` matches within one
// segment, `**` matches the rest of the path. Matching is on the path only, never the query.

/** A piece of a matched path: its text, and what the pattern says that text is. */
export type PathPiece = {
  kind: 'literal' | 'listing' | 'secret' | 'wildcard';
  /** The path's own text for this piece (not decoded); all pieces joined give the path back. */
  text: string;
};

/** A compiled pattern. */
export type PathPattern = {
  readonly source: string;
  /** True when the pattern has a `{secret}`, which expand() cannot fill. */
  readonly hasSecret: boolean;
  /** The captured listing id (percent-decoded) when `path` matches, otherwise null. */
  match(path: string): { listing: string } | null;
  /** `path` cut into the pattern's pieces when it matches, otherwise null: the redactor's view. */
  pieces(path: string): PathPiece[] | null;
  /**
   * The path of `listing` under this pattern; only for patterns without wildcards. Undefined when
   * the pattern has a `{secret}`: no listing id says what the secret is.
   */
  expand(listing: string): string | undefined;
};

/** Why a pattern was refused. */
export type PathPatternError = { error: string };

/** True when compilePathPattern refused the pattern. */
export function isPathPatternError(
  value: PathPattern | PathPatternError,
): value is PathPatternError {
  return 'error' in value;
}

const regexSpecial = /[.+?^${}()|[\]\\]/g;

type Token = { kind: 'literal'; text: string } | { kind: 'listing' | 'secret' | 'wildcard'; regex: string };

/** Compiles `source`, or says why it cannot be used. */
export function compilePathPattern(source: string): PathPattern | PathPatternError {
  if (!source.startsWith('/')) return { error: 'must start with /' };
  if (source.includes('?') || source.includes('#'))
    return { error: 'must be a path without query' };
  const captures = source.split('{listing}').length - 1;
  if (captures !== 1) {
    return { error: captures === 0 ? 'must contain {listing}' : 'must contain {listing} once' };
  }
  if (/[{}]/.test(source.replace('{listing}', '').replaceAll('{secret}', '')))
    return { error: 'only {listing} and {secret} may be in braces' };
  if (/\*\*./.test(source)) return { error: '** may only end the pattern' };
  if (/\*{3,}/.test(source)) return { error: 'use * or **' };

  // Every placeholder and wildcard is a regex group, so a match can be cut back into pieces.
  const tokens: Token[] = [];
  const literal = (char: string) => {
    const last = tokens.at(-1);
    if (last?.kind === 'literal') last.text += char;
    else tokens.push({ kind: 'literal', text: char });
  };
  for (let i = 0; i < source.length;) {
    if (source.startsWith('{listing}', i)) {
      tokens.push({ kind: 'listing', regex: '([^/]+)' });
      i += '{listing}'.length;
    } else if (source.startsWith('{secret}', i)) {
      tokens.push({ kind: 'secret', regex: '([^/]+)' });
      i += '{secret}'.length;
    } else if (source.startsWith('**', i)) {
      tokens.push({ kind: 'wildcard', regex: '(.*)' });
      i += 2;
    } else if (source[i] === '*') {
      tokens.push({ kind: 'wildcard', regex: '([^/]*)' });
      i += 1;
    } else {
      literal(source[i] ?? '');
      i += 1;
    }
  }
  const regex = tokens.map((t) => (t.kind === 'literal' ? t.text.replace(regexSpecial, '\\$&') : t.regex)).join('');
  const compiled = new RegExp(`^${regex}$`);
  const groups = tokens.filter((t) => t.kind !== 'literal');
  const listingGroup = groups.findIndex((t) => t.kind === 'listing') + 1;
  const hasSecret = groups.some((t) => t.kind === 'secret');
  return {
    source,
    hasSecret,
    match(path) {
      const m = compiled.exec(path);
      const captured = m?.[listingGroup];
      if (captured === undefined) return null;
      try {
        const listing = decodeURIComponent(captured);
        return listing.includes('/') ? null : { listing };
      } catch {
        return null;
      }
    },
    pieces(path) {
      const m = compiled.exec(path);
      if (!m) return null;
      let group = 0;
      return tokens.map((t) => (t.kind === 'literal'
        ? { kind: 'literal', text: t.text }
        : { kind: t.kind, text: m[(group += 1)] ?? '' }));
    },
    expand(listing) {
      return hasSecret ? undefined : source.replace('{listing}', encodeURIComponent(listing));
    },
  };
}
