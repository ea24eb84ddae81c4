// The upstream's own validators of a feed answer (RFC 9110 §8.8: ETag, Last-Modified), kept per feed so the
// sidecar's own reads (watch, re-reads, operator notify) can be conditional: a 304 costs the platform a
// header, not an export (SPEC "Push": the watch must not cost the platform more than its polling).

/** Validators the upstream sent with a 200, as sent back on a conditional read. */
export type Validators = { readonly etag?: string; readonly lastModified?: string };

/** Validators of one answer and the content tag of the body they came with: a 304 to them confirms that body. */
export type StoredValidators = Validators & { readonly tag: string };

// RFC 9110 §8.8.2.2: a Last-Modified less than a second before the answer's Date may name a second in which
// the feed changed again; as a validator it could hide that change. Such a date is not used.
const lastModifiedMarginMs = 1_000;

const first = (value: string | readonly string[] | undefined): string | undefined =>
  (typeof value === 'string' ? value : value?.[0])?.trim() || undefined;

/** The validators of an upstream answer's headers (lower-case names) fetched at `fetchedAt`; undefined when it
 * has none usable. A weak ETag is fine for If-None-Match (RFC 9110 §13.1.2: weak comparison). */
export function validatorsOf(headers: Readonly<Record<string, string | readonly string[]>>,
  fetchedAt: number): Validators | undefined {
  const etag = first(headers.etag);
  const lastModified = first(headers['last-modified']);
  const modifiedAt = lastModified === undefined ? Number.NaN : Date.parse(lastModified);
  const dated = Date.parse(first(headers.date) ?? '');
  const answeredAt = Number.isNaN(dated) ? fetchedAt : dated;
  const usableDate = !Number.isNaN(modifiedAt) && answeredAt - modifiedAt >= lastModifiedMarginMs;
  if (etag === undefined && !usableDate) return undefined;
  return { ...(etag === undefined ? {} : { etag }), ...(usableDate && lastModified ? { lastModified } : {}) };
}

/** The request headers of a conditional read with `validators`. */
export function conditionalHeaders(validators: Validators): Record<string, string> {
  return {
    ...(validators.etag === undefined ? {} : { 'if-none-match': validators.etag }),
    ...(validators.lastModified === undefined ? {} : { 'if-modified-since': validators.lastModified }),
  };
}

/** True when `a` and `b` are the same validators. */
export function sameValidators(a: Validators | undefined, b: Validators | undefined): boolean {
  return a?.etag === b?.etag && a?.lastModified === b?.lastModified;
}
