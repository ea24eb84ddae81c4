// Path patterns of the config: `/calendar/{listing}.ics`, `/bookings/{listing}/**`.
// `{listing}` captures one path segment (or part of one), `*` matches within one segment,
// `**` matches the rest of the path. Matching is on the path only, never the query.

/** A compiled pattern. */
export type PathPattern = {
  readonly source: string;
  /** The captured listing id (percent-decoded) when `path` matches, otherwise null. */
  match(path: string): { listing: string } | null;
  /** The path of `listing` under this pattern; only for patterns without wildcards. */
  expand(listing: string): string;
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

/** Compiles `source`, or says why it cannot be used. */
export function compilePathPattern(source: string): PathPattern | PathPatternError {
  if (!source.startsWith('/')) return { error: 'must start with /' };
  if (source.includes('?') || source.includes('#'))
    return { error: 'must be a path without query' };
  const captures = source.split('{listing}').length - 1;
  if (captures !== 1) {
    return { error: captures === 0 ? 'must contain {listing}' : 'must contain {listing} once' };
  }
  if (/[{}]/.test(source.replace('{listing}', '')))
    return { error: 'only {listing} may be in braces' };
  if (/\*\*./.test(source)) return { error: '** may only end the pattern' };
  if (/\*{3,}/.test(source)) return { error: 'use * or **' };

  let regex = '^';
  for (let i = 0; i < source.length;) {
    if (source.startsWith('{listing}', i)) {
      regex += '([^/]+)';
      i += '{listing}'.length;
    } else if (source.startsWith('**', i)) {
      regex += '.*';
      i += 2;
    } else if (source[i] === '*') {
      regex += '[^/]*';
      i += 1;
    } else {
      regex += (source[i] ?? '').replace(regexSpecial, '\\$&');
      i += 1;
    }
  }
  const compiled = new RegExp(`${regex}$`);
  return {
    source,
    match(path) {
      const m = compiled.exec(path);
      if (!m || m[1] === undefined) return null;
      try {
        const listing = decodeURIComponent(m[1]);
        return listing.includes('/') ? null : { listing };
      } catch {
        return null;
      }
    },
    expand(listing) {
      return source.replace('{listing}', encodeURIComponent(listing));
    },
  };
}
