// Reads the `Prefer` request header (RFC 7240) for the preferences feed paths honour:
// `subscribe-enhanced-get` (draft -13), `return=minimal` (the early draft's ETag variant) and `limit=n`.

/** The preferences a feed request stated. */
export type FeedPreferences = { enhanced: boolean; minimal: boolean; limit?: number };

// A limit beyond this is no limit; it keeps `Number()` in safe territory.
const maxLimit = 1_000_000;

/**
 * Parses every Prefer header of a request. Unknown preferences and parameters are ignored and, per
 * RFC 7240 §2, only the first instance of a repeated preference counts; never throws.
 */
export function parsePrefer(header: string | string[] | undefined): FeedPreferences {
  const seen = new Map<string, string>();
  for (const value of header === undefined ? [] : Array.isArray(header) ? header : [header]) {
    for (const preference of splitUnquoted(value, ',')) {
      // Parameters after ';' qualify a preference; none of ours take any.
      const [head = ''] = splitUnquoted(preference, ';');
      const eq = head.indexOf('=');
      const name = (eq === -1 ? head : head.slice(0, eq)).trim().toLowerCase();
      if (name === '' || seen.has(name)) continue;
      const raw = eq === -1 ? '' : head.slice(eq + 1).trim();
      seen.set(name, raw.length >= 2 && raw.startsWith('"') && raw.endsWith('"') ? raw.slice(1, -1) : raw);
    }
  }
  const limitText = seen.get('limit');
  const limit = limitText !== undefined && /^[1-9][0-9]{0,6}$/.test(limitText) ? Math.min(Number(limitText), maxLimit) : undefined;
  return {
    enhanced: seen.has('subscribe-enhanced-get'),
    minimal: seen.get('return')?.toLowerCase() === 'minimal',
    ...(limit === undefined ? {} : { limit }),
  };
}

function splitUnquoted(text: string, separator: string): string[] {
  const parts: string[] = [];
  let quoted = false;
  let start = 0;
  for (let i = 0; i < text.length; i += 1) {
    const c = text[i];
    if (c === '\\' && quoted) i += 1;
    else if (c === '"') quoted = !quoted;
    else if (c === separator && !quoted) {
      parts.push(text.slice(start, i));
      start = i + 1;
    }
  }
  parts.push(text.slice(start));
  return parts;
}
