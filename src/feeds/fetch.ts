// Reads a feed from the upstream for a plain GET: one shared upstream request per feed URL at a time,
// a byte cap on the body, and a verdict on whether the answer is a complete calendar (SPEC "Feed paths").
import type { IncomingHttpHeaders } from 'node:http';
import { type Clock, systemClock } from '../clock.ts';
import type { IcalpushError } from '../errors.ts';
import { createOutboundClient, type OutboundClient, type UpstreamPool } from '../http/clients.ts';
import { forwardedResponseHeaders } from '../http/forwarded-headers.ts';
import { createSingleFlight } from '../util/single-flight.ts';
import { conditionalHeaders, type Validators } from './upstream-validators.ts';

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
 * An answer that looks like a calendar: a 2xx of a calendar media type with a body. Whether it is a
 * complete one is settled by the byte search (`endsCalendar`) or, when that cannot vouch for it, by the
 * analysis off the event loop.
 */
export type CalendarFetch = UpstreamAnswer & {
  readonly kind: 'calendar';
  /** The body has BEGIN:VCALENDAR and, after it, an END:VCALENDAR line. */
  readonly endsCalendar: boolean;
};

/**
 * What one feed fetch came to. Outcomes are shared by every caller that joined the same upstream
 * request, so they are frozen and the body, decoded text and split calendar must be treated as read-only.
 */
export type FeedFetch =
  | CalendarFetch
  | (UpstreamAnswer & { readonly kind: 'not-calendar'; readonly reason: NotCalendarReason })
  | { readonly kind: 'too-large' }
  | { readonly kind: 'failed'; readonly error: IcalpushError }
  /** A conditional read's 304: the body the validators came with is still current. */
  | (UpstreamAnswer & { readonly kind: 'not-modified'; readonly validators: Validators });

/** Options for createFeedFetcher. */
export type FeedFetcherOptions = {
  /** The undici pool to the upstream. */
  upstream: UpstreamPool;
  /** Makes the requests, with their total deadline; by default one of the fetcher's own. */
  client?: OutboundClient;
  /** Largest body read; past it the request is aborted and the fetch is `too-large`. */
  maxBodyBytes: number;
  /** Total deadline of one read, headers and body (SPEC "Guarantees"); default the pool's timeout. */
  deadlineMs?: number;
  clock?: Clock;
  /** More headers that change what the upstream answers (the credentials of `listings.<id>.headers`):
   * fetches that differ in them never share, so a client without them never gets what they unlock. A function
   * is read at each fetch, for a map that a reload replaces. */
  keyHeaders?: readonly string[] | (() => readonly string[]);
};

/** Reads feeds from the upstream. */
export type FeedFetcher = {
  /**
   * Fetches `target` (path + query) with the request headers to forward (hop-by-hop already removed,
   * as forwardedRequestHeaders gives them). Never rejects: failures are a `failed` outcome.
   */
  fetch(target: string, headers: Record<string, string | string[]>): Promise<FeedFetch>;
  /**
   * The same, conditional on the upstream's own `validators` (If-None-Match / If-Modified-Since): the
   * sidecar's own reads. A 304 is `not-modified`; a fetch of the same feed already under way is joined
   * instead (its answer is as fresh). Never shared with a plain fetch started later, whose caller needs a body.
   */
  fetchIfChanged(target: string, headers: Record<string, string | string[]>,
    validators: Validators): Promise<FeedFetch>;
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
// upstream, and a compressed body could not be parsed. Asking for gzip and inflating would cut the
// upstream link ~90%, but make a platform that restamps every answer compress every read
// (`npm run bench -- compression`); the sidecar compresses for its clients instead.
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
  const client = options.client ?? createOutboundClient({ clock, connectTimeoutMs: upstream.timeoutMs });
  const deadlineMs = options.deadlineMs ?? upstream.timeoutMs;
  // An entry lives only while its upstream request does, and that request has a total deadline, so a
  // body that trickles frees every waiter when it fires.
  const running = createSingleFlight<FeedFetch>();
  const extraKeyHeaders = options.keyHeaders;
  let sharedFor: { extra: readonly string[]; names: string[] } | undefined;
  /** The header names that split a shared fetch, recomputed only when the extra names change. */
  const sharedBy = (): string[] => {
    const extra = typeof extraKeyHeaders === 'function' ? extraKeyHeaders() : extraKeyHeaders ?? [];
    if (sharedFor?.extra !== extra) {
      sharedFor = { extra, names: [...new Set([...keyHeaders, ...extra.map((name) => name.toLowerCase())])] };
    }
    return sharedFor.names;
  };
  let started = 0;

  async function fetchOnce(target: string, headers: Record<string, string | string[]>,
    validators?: Validators): Promise<FeedFetch> {
    started += 1;
    const sequence = started;
    const result = await client.request(target, {
      via: upstream.pool,
      method: 'GET',
      headers: { ...upstreamRequestHeaders(headers), ...(validators ? conditionalHeaders(validators) : {}) },
      deadlineMs,
      maxBodyBytes,
    });
    if (result.kind === 'failed') return Object.freeze({ kind: 'failed', error: result.error });
    if (result.kind === 'too-large') return Object.freeze({ kind: 'too-large' });
    const answer = {
      status: result.status,
      headers: Object.freeze(forwardedResponseHeaders(result.headers as IncomingHttpHeaders)),
      body: result.body,
      fetchedAt: clock.now(),
      sequence,
    };
    // Only a read that asked can be answered "not modified"; an unasked 304 is an answer like any other
    // that is not a calendar, passed through and never applied.
    if (validators && answer.status === 304) return Object.freeze({ kind: 'not-modified', ...answer, validators });
    return judge(answer);
  }

  return {
    // SPEC "GET (plain)": concurrent GETs of the same URL share one upstream fetch.
    fetch: (target, headers) => running(singleFlightKey(target, headers, sharedBy()), () => fetchOnce(target, headers)),
    fetchIfChanged(target, headers, validators) {
      const key = singleFlightKey(target, headers, sharedBy());
      if (running.has(key)) return running(key, () => fetchOnce(target, headers));
      return running(`${key} if`, () => fetchOnce(target, headers, validators));
    },
    inflight: () => running.size,
  };
}

/** Classifies a read answer; anything but a calendar keeps its bytes for passthrough. */
function judge(answer: UpstreamAnswer): FeedFetch {
  const notCalendar = (reason: NotCalendarReason): FeedFetch =>
    Object.freeze({ kind: 'not-calendar', reason, ...answer });
  // 206 is a slice of the feed, never the whole of it.
  if (answer.status < 200 || answer.status > 299 || answer.status === 206) return notCalendar('status');
  if (!calendarTypes.has(mediaType(answer.headers['content-type']))) return notCalendar('content-type');
  if (answer.body.length === 0) return notCalendar('empty');
  // SPEC: no END:VCALENDAR (a truncated or spliced export) never changes the snapshot. The byte search
  // settles the common case; an end it cannot vouch for (lower case, odd line ends) the analysis settles.
  const ends = endsCalendar(answer.body);
  if (!ends && !mentionsEnd(answer.body)) return notCalendar('incomplete');
  return Object.freeze({ kind: 'calendar', ...answer, endsCalendar: ends });
}

const beginCalendar = Buffer.from('BEGIN:VCALENDAR', 'latin1');
const endCalendar = Buffer.from('END:VCALENDAR', 'latin1');

// Where an END:VCALENDAR in another case would be: at the end, after the last event.
const tailBytes = 64 * 1024;

/** True when the body has an END:VCALENDAR in any case (in its last 64 KiB) or in upper case anywhere. */
function mentionsEnd(body: Buffer): boolean {
  if (body.indexOf(endCalendar) !== -1) return true;
  const tail = body.subarray(Math.max(0, body.length - tailBytes)).toString('latin1').toUpperCase();
  return tail.includes('END:VCALENDAR');
}

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

/** The lower-case media type of a Content-Type value, parameters dropped. */
function mediaType(value: string | string[] | undefined): string {
  // RFC 9110 §8.3: without Content-Type a recipient may assume application/octet-stream.
  if (value === undefined) return 'application/octet-stream';
  const text = Array.isArray(value) ? (value[0] ?? '') : value;
  return (text.split(';')[0] ?? '').trim().toLowerCase();
}

/** The target plus every answer-changing header, case-insensitively; JSON keeps the parts apart. */
function singleFlightKey(target: string, headers: Record<string, string | string[]>, names: readonly string[]): string {
  const values: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(headers)) {
    const lower = name.toLowerCase();
    if (names.includes(lower)) values[lower] = value;
  }
  return JSON.stringify([target, ...names.map((name) => values[name] ?? null)]);
}
