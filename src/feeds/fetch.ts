// Reads a feed from the upstream for a plain GET: one shared upstream request per feed URL at a time,
// a byte cap on the body, and a verdict on whether the answer is a complete calendar (SPEC "Feed paths").
import type { IncomingHttpHeaders } from 'node:http';
import { type Clock, systemClock } from '../clock.ts';
import type { IcalpushError } from '../errors.ts';
import { forwardedResponseHeaders } from '../http/forwarded-headers.ts';
import { toUpstreamError, type UpstreamPool } from '../http/clients.ts';
import { type DecodedFeed, decodeFeed } from '../ical/decode.ts';
import { type SplitCalendar, splitCalendar } from '../ical/split.ts';
import { fingerprint } from './fingerprint.ts';

/** Why an upstream answer is not a complete calendar; the caller relays it unchanged (SPEC "GET (plain)"). */
export type NotCalendarReason = 'status' | 'content-type' | 'incomplete' | 'empty';

/** The upstream's answer as read: status, end-to-end headers (hop-by-hop removed) and the body bytes. */
export type UpstreamAnswer = {
  readonly status: number;
  readonly headers: Readonly<Record<string, string | string[]>>;
  readonly body: Buffer;
  /** Clock time at which the whole body had been read. */
  readonly fetchedAt: number;
  /** Rises with every upstream request this fetcher starts: a larger one was asked for later. */
  readonly sequence: number;
};

/**
 * A complete calendar answer. `decoded` and `calendar` are computed on first use: a re-read whose
 * `fingerprint` shows no change never pays for them.
 */
export type CalendarFetch = UpstreamAnswer & {
  readonly kind: 'calendar';
  /** The body's DTSTAMP-blind hash (fingerprint.ts). */
  readonly fingerprint: string;
  readonly decoded: DecodedFeed;
  readonly calendar: SplitCalendar;
};

/**
 * What one feed fetch came to. Outcomes are shared by every caller that joined the same upstream
 * request, so they are frozen and the body, decoded text and split calendar must be treated as read-only.
 */
export type FeedFetch =
  | CalendarFetch
  | (UpstreamAnswer & { readonly kind: 'not-calendar'; readonly reason: NotCalendarReason })
  | { readonly kind: 'too-large' }
  | { readonly kind: 'failed'; readonly error: IcalpushError };

/** Options for createFeedFetcher. */
export type FeedFetcherOptions = {
  /** The undici pool to the upstream; its connect, header and body timeouts apply. */
  upstream: UpstreamPool;
  /** Largest body read; past it the request is aborted and the fetch is `too-large`. */
  maxBodyBytes: number;
  clock?: Clock;
};

/** Reads feeds from the upstream. */
export type FeedFetcher = {
  /**
   * Fetches `target` (path + query) with the request headers to forward (hop-by-hop already removed,
   * as forwardedRequestHeaders gives them). Never rejects: failures are a `failed` outcome.
   */
  fetch(target: string, headers: Record<string, string | string[]>): Promise<FeedFetch>;
  /** Upstream fetches currently in flight (one per distinct target and credentials). */
  inflight(): number;
};

// Media types platforms really serve .ics as: Airbnb and Booking.com send text/calendar, others
// application/ics, text/x-vcalendar (vCalendar-era exporters), application/octet-stream (downloads)
// or text/plain. The body must still be a complete VCALENDAR, so a lenient list costs nothing.
const calendarTypes: ReadonlySet<string> = new Set([
  'text/calendar',
  'application/ics',
  'text/x-vcalendar',
  'application/octet-stream',
  'text/plain',
]);

// Request headers that change what the upstream answers for the same URL: the tenant (virtual
// hosts), the credentials and the language. Fetches that differ in any of them never share.
const keyHeaders = ['host', 'authorization', 'cookie', 'accept-language'] as const;

// The sidecar needs the full, unencoded representation to compute its own ETag and 304s
// (SPEC "GET (plain)"): the client's conditional and range headers are answered by us, not the
// upstream, and a compressed body could not be parsed.
const droppedRequestHeaders: ReadonlySet<string> = new Set([
  'if-none-match',
  'if-modified-since',
  'if-match',
  'if-unmodified-since',
  'if-range',
  'range',
  'accept-encoding',
]);

/** Creates a fetcher that reads feeds through `options.upstream`. */
export function createFeedFetcher(options: FeedFetcherOptions): FeedFetcher {
  const { upstream, maxBodyBytes } = options;
  const clock = options.clock ?? systemClock;
  // Bounded by request concurrency: an entry lives only while its upstream request does.
  const running = new Map<string, Promise<FeedFetch>>();
  let started = 0;

  async function fetchOnce(target: string, headers: Record<string, string | string[]>): Promise<FeedFetch> {
    started += 1;
    const sequence = started;
    try {
      const res = await upstream.pool.request({
        path: target,
        method: 'GET',
        headers: upstreamRequestHeaders(headers),
      });
      const body = await readCapped(res.body, declaredLength(res.headers), maxBodyBytes);
      if (body === undefined) return Object.freeze({ kind: 'too-large' });
      return judge({
        status: res.statusCode,
        headers: Object.freeze(forwardedResponseHeaders(res.headers as IncomingHttpHeaders)),
        body,
        fetchedAt: clock.now(),
        sequence,
      });
    } catch (err) {
      return Object.freeze({ kind: 'failed', error: toUpstreamError(err) });
    }
  }

  return {
    fetch(target, headers) {
      // SPEC "GET (plain)": concurrent GETs of the same URL share one upstream fetch.
      const key = singleFlightKey(target, headers);
      const shared = running.get(key);
      if (shared) return shared;
      const fetching = fetchOnce(target, headers).finally(() => running.delete(key));
      running.set(key, fetching);
      return fetching;
    },
    inflight: () => running.size,
  };
}

/** Classifies a read answer; anything but a complete calendar keeps its bytes for passthrough. */
function judge(answer: UpstreamAnswer): FeedFetch {
  const notCalendar = (reason: NotCalendarReason): FeedFetch =>
    Object.freeze({ kind: 'not-calendar', reason, ...answer });
  // 206 is a slice of the feed, never the whole of it.
  if (answer.status < 200 || answer.status > 299 || answer.status === 206) return notCalendar('status');
  if (!calendarTypes.has(mediaType(answer.headers['content-type']))) return notCalendar('content-type');
  if (answer.body.length === 0) return notCalendar('empty');
  let decoded: DecodedFeed | undefined;
  let calendar: SplitCalendar | undefined;
  const decode = () => (decoded ??= decodeFeed(answer.body));
  const split = () => (calendar ??= splitCalendar(decode().text));
  // SPEC: no END:VCALENDAR (a truncated or spliced export) never changes the snapshot. The byte
  // search settles the common case; anything it cannot vouch for gets the full split.
  if (!endsCalendar(answer.body) && !split().complete) return notCalendar('incomplete');
  return Object.freeze({
    kind: 'calendar',
    ...answer,
    fingerprint: fingerprint(answer.body),
    get decoded() {
      return decode();
    },
    get calendar() {
      return split();
    },
  });
}

const beginCalendar = Buffer.from('BEGIN:VCALENDAR', 'latin1');
const endCalendar = Buffer.from('END:VCALENDAR', 'latin1');

/** True when the body has a BEGIN:VCALENDAR line and, after it, an END:VCALENDAR line. */
export function endsCalendar(body: Buffer): boolean {
  const begin = body.indexOf(beginCalendar);
  const end = body.lastIndexOf(endCalendar);
  if (begin === -1 || end <= begin) return false;
  const before = body[end - 1];
  const after = body[end + endCalendar.length];
  return (before === 0x0a || before === 0x0d) && (after === undefined || after === 0x0a || after === 0x0d);
}

/** The forwarded request headers minus the ones the sidecar answers itself, asking for identity coding. */
function upstreamRequestHeaders(headers: Record<string, string | string[]>): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (!droppedRequestHeaders.has(name.toLowerCase())) out[name] = value;
  }
  out['accept-encoding'] = 'identity';
  return out;
}

/** Reads `body` to a Buffer, or destroys it and gives undefined once it is past `maxBytes`. */
export async function readCapped(
  body: AsyncIterable<Buffer> & { destroy(err?: Error): unknown; once(event: 'error', listener: () => void): unknown },
  declared: number | undefined,
  maxBytes: number,
): Promise<Buffer | undefined> {
  // Destroying the body aborts the undici request, which closes that connection instead of
  // leaving it busy draining a body nobody reads.
  // undici reports the abort as an 'error' on the body; with no reader left it would be unhandled.
  body.once('error', () => {});
  if (declared !== undefined && declared > maxBytes) {
    body.destroy();
    return undefined;
  }
  const chunks: Buffer[] = [];
  let length = 0;
  for await (const chunk of body) {
    length += chunk.length;
    if (length > maxBytes) {
      body.destroy();
      return undefined;
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, length);
}

/** The Content-Length the upstream declared, when it is a plain number. */
export function declaredLength(headers: Record<string, string | string[] | undefined>): number | undefined {
  const value = headers['content-length'];
  return typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : undefined;
}

/** The lower-case media type of a Content-Type value, parameters dropped. */
function mediaType(value: string | string[] | undefined): string {
  // RFC 9110 §8.3: without Content-Type a recipient may assume application/octet-stream.
  if (value === undefined) return 'application/octet-stream';
  const text = Array.isArray(value) ? (value[0] ?? '') : value;
  return (text.split(';')[0] ?? '').trim().toLowerCase();
}

/** The target plus every answer-changing header, case-insensitively; JSON keeps the parts apart. */
function singleFlightKey(target: string, headers: Record<string, string | string[]>): string {
  const values: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(headers)) {
    const lower = name.toLowerCase();
    if ((keyHeaders as readonly string[]).includes(lower)) values[lower] = value;
  }
  return JSON.stringify([target, ...keyHeaders.map((name) => values[name] ?? null)]);
}
