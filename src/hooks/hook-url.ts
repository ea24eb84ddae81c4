// Reads an X-ICALHOOKS-URL header value into one hook URL, or says why it is not one
// (SPEC "iCal Hooks": http/https only, at most 2048 characters, no userinfo).

/** Longest hook URL accepted, raw and normalized (SPEC "iCal Hooks"). */
export const maxHookUrlLength = 2048;

/** Why a header value is not a usable hook URL. */
export type HookUrlProblem = 'malformed' | 'scheme' | 'too-long' | 'userinfo';

/** The outcome of parseHookHeader. */
export type HookUrlParse =
  | { ok: true; url: URL }
  | { ok: false; reason: HookUrlProblem; host?: string }
  | { ok: 'absent' };

// Control characters (CR/LF above all: header injection) and any whitespace inside the value.
// `new URL` silently drops tabs and newlines, so this check runs on the raw text; a space is
// how Node joins repeated headers (`a, b`), which would otherwise parse as one URL.
// eslint-disable-next-line no-control-regex
const forbiddenCharacters = /[\u0000-\u001f\u007f-\u009f\s]/u;

/**
 * Parses the header as Node hands it over. Several values (a string array, or one value
 * holding two URLs) are refused as `malformed` rather than guessing which was meant; an
 * empty value counts as absent. The URL's fragment is dropped (it never goes on the wire).
 */
export function parseHookHeader(header: string | string[] | undefined): HookUrlParse {
  if (Array.isArray(header)) {
    if (header.length === 0) return { ok: 'absent' };
    if (header.length > 1) return { ok: false, reason: 'malformed' };
    return parseHookHeader(header[0]);
  }
  if (typeof header !== 'string') return { ok: 'absent' };
  const value = header.trim();
  if (value === '') return { ok: 'absent' };
  if (forbiddenCharacters.test(value)) return { ok: false, reason: 'malformed' };
  if (value.length > maxHookUrlLength) return { ok: false, reason: 'too-long' };
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return { ok: false, reason: 'malformed' };
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return { ok: false, reason: 'scheme', host: url.host };
  if (url.username !== '' || url.password !== '') return { ok: false, reason: 'userinfo', host: url.host };
  if (url.hostname === '') return { ok: false, reason: 'malformed' };
  url.hash = '';
  // Normalizing can lengthen (percent-encoding non-ASCII), so the stored form is checked too.
  if (url.href.length > maxHookUrlLength) return { ok: false, reason: 'too-long', host: url.host };
  return { ok: true, url };
}
