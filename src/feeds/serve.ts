// Answers requests on feed paths (SPEC "Feed paths: what each method gets"): plain GET with the
// semantic ETag, enhanced GET with sync tokens and deltas, the return=minimal variant, HEAD from the
// snapshot, OPTIONS, and the Link header on all of them; every answer body in the coding the client
// accepts (SPEC "Compression"). Other methods are the passthrough's.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { pipeline } from 'node:stream/promises';
import { LRUCache } from 'lru-cache';
import type { Clock } from '../clock.ts';
import { IcalpushError } from '../errors.ts';
import { type ContentCoding, negotiateEncoding } from '../http/compress.ts';
import { forwardedRequestHeaders } from '../http/forwarded-headers.ts';
import type { PassthroughDecoration } from '../http/proxy.ts';
import type { TrustedProxies } from '../http/trust-proxy.ts';
import { sendError } from '../http/respond.ts';
import { type FeedEngine, feedKey, type FeedKey, type FeedRead } from './engine.ts';
import { type Body, bodyLength, createEncodedBodies, digestOf, type EncodedBody } from './encoded-bodies.ts';
import type { FeedAnswer, FeedMetrics, FeedVariant } from './feed-metrics.ts';
import { calendarPieces, calendarText, changesSince, currentTextsInSlices, type FeedHistory, isTokenUsable, type SyncPosition, versionOfTag } from './history.ts';
import { yieldToLoop } from '../util/yield.ts';
import { parsePrefer } from './prefer.ts';
import { decodeToken, encodeToken } from './sync-token.ts';

/** The feed route the router matched. */
export type FeedRoute = { path: string; listing: string; pattern: string };

/** What the handler did: `passthrough` hands the request to the passthrough, with what it adds. */
export type FeedOutcome =
  | { kind: 'answered'; errorCode?: string }
  | { kind: 'passthrough'; decoration?: PassthroughDecoration };

/** Answers one request on a feed path. */
export type FeedHandler = (req: IncomingMessage, res: ServerResponse, route: FeedRoute) => Promise<FeedOutcome>;

/** Options for createFeedHandler. */
export type FeedHandlerOptions = {
  engine: FeedEngine;
  metrics: FeedMetrics;
  clock: Clock;
  /** Base of the absolute URLs in Link; default: a trusted proxy's X-Forwarded-Proto/-Host, else Host. */
  publicBaseUrl?: string | undefined;
  /** Clients whose X-Forwarded-Proto/-Host are believed (`trustProxy`); default: none. */
  trustedProxies?: TrustedProxies;
  /** `maxAge` (ms) of each feed pattern, by pattern source. */
  maxAge: ReadonlyMap<string, number>;
  /** After a HEAD is answered: it is an inbound iPP notification for the listing (SPEC "HEAD"). */
  onHead?: (route: FeedRoute) => void;
  /** A GET carried X-ICALHOOKS-URL: register it for the feed (with the content tag it got, if any); never
   * changes the answer. */
  onHookHeader?: (feed: FeedKey, value: string | string[], seen: string | undefined) => void;
};

// SPEC: always on enhanced answers; sent on every feed answer, because any of them varies by these (and
// by Accept-Encoding, SPEC "Compression").
const varyOn = ['Prefer', 'Sync-Token', 'If-None-Match', 'Accept-Encoding'];
const relations = 'subscribe-enhanced-get subscribe-enhanced_get';
const calendarType = 'text/calendar; charset=utf-8';
const allow = 'GET, HEAD, OPTIONS';
// Upstream headers that describe the upstream's own representation: the sidecar sets its own.
const replacedHeaders = new Set(['etag', 'last-modified', 'content-length', 'content-encoding', 'vary', 'link']);
// Full enhanced answers are rebuilt only when the version moves.
const fullBodyCacheBytes = 32 * 1024 * 1024;
const maxCachedFullBodyBytes = 4 * 1024 * 1024;
// Which representation each feed's last encoded plain answer was, for HEAD: feeds are bounded by
// snapshots.maxFeeds, this by a count of its own.
const maxPlainRecords = 10_000;

/** The upstream's Vary with ours added (each name once). */
function mergeVary(upstream: string | string[] | undefined, ours: readonly string[]): string {
  const names = (Array.isArray(upstream) ? upstream.join(',') : upstream ?? '').split(',').map((n) => n.trim())
    .filter((n) => n !== '');
  if (names.includes('*')) return '*';
  const seen = new Set(names.map((n) => n.toLowerCase()));
  return [...names, ...ours.filter((n) => !seen.has(n.toLowerCase()))].join(', ');
}

/** The upstream's Link values with ours after them (RFC 8288 allows any number). */
function mergedLink(upstream: string | string[] | undefined, ours: Record<string, string>): Record<string, string> {
  const theirs = (Array.isArray(upstream) ? upstream : upstream === undefined ? [] : [upstream]).filter((v) => v !== '');
  if (ours.link === undefined) return theirs.length > 0 ? { link: theirs.join(', ') } : {};
  return { link: [...theirs, ours.link].join(', ') };
}

/** True for a text/calendar Content-Type. */
function isCalendarType(value: string | string[] | undefined): boolean {
  const type = (Array.isArray(value) ? value[0] : value)?.split(';')[0]?.trim().toLowerCase();
  return type === 'text/calendar';
}

/** Creates the feed handler. */
export function createFeedHandler(options: FeedHandlerOptions): FeedHandler {
  const { engine, metrics, clock } = options;
  const base = options.publicBaseUrl?.replace(/\/+$/, '');
  const fullBodies = new LRUCache<string, Buffer>({
    maxSize: fullBodyCacheBytes,
    sizeCalculation: (b) => Math.max(1, b.length),
  });
  const encodedBodies = createEncodedBodies({ onCompress: (coding) => metrics.compressed(coding) });
  const lastPlain = new LRUCache<string, PlainRecord>({ max: maxPlainRecords });

  function linkHeader(req: IncomingMessage, target: string): Record<string, string> {
    let origin = base;
    if (origin === undefined) {
      // The proxy in front says what the client asked for; nobody else is believed.
      const trusted = options.trustedProxies?.(req.socket.remoteAddress) === true;
      const first = (value: string | string[] | undefined) =>
        (Array.isArray(value) ? value.join(',') : value ?? '').split(',')[0]?.trim() || undefined;
      const host = (trusted ? first(req.headers['x-forwarded-host']) : undefined) ?? req.headers.host;
      // A Host that is not a plain authority never ends up in a header we send.
      if (host === undefined || !/^[A-Za-z0-9.:[\]_-]+$/.test(host)) return {};
      const forwarded = trusted ? first(req.headers['x-forwarded-proto'])?.toLowerCase() : undefined;
      const encrypted = (req.socket as { encrypted?: boolean }).encrypted === true;
      const proto = forwarded === 'https' || forwarded === 'http' ? forwarded : encrypted ? 'https' : 'http';
      origin = `${proto}://${host}`;
    }
    return { link: `<${origin}${escapeForLink(target)}>; rel="${relations}"` };
  }

  async function fullBody(key: string, history: FeedHistory): Promise<Body> {
    const cacheKey = `${key}\u0000${history.lineage}\u0000${history.version}`;
    const cached = fullBodies.get(cacheKey);
    if (cached) return cached;
    const pieces = await calendarPieces(history, await currentTextsInSlices(history));
    // A big feed's full answer is rebuilt when asked for, and sent piece by piece, never joined: kept or
    // joined, it would double what the feed costs in memory.
    if (bodyLength(pieces) > maxCachedFullBodyBytes) return pieces;
    const body = Buffer.concat(pieces);
    fullBodies.set(cacheKey, body);
    return body;
  }

  /** An answer from a fresh snapshot without reading the upstream (maxAge), when there is one. */
  async function freshRead(feed: FeedKey, maxAgeMs: number): Promise<FeedRead | undefined> {
    const state = await engine.state(feed.key);
    if (!state || state.hold || clock.now() - state.lastReadAt >= maxAgeMs) return undefined;
    const [history, answer] = [await engine.history(feed.key), engine.lastAnswer(feed.key)];
    if (!history || !answer || history.tag !== state.tag || answer.tag !== history.tag) return undefined;
    return { kind: 'calendar', answer, tag: history.tag, changedAt: history.changedAt, history, held: false };
  }

  return async (req, res, route) => {
    const method = req.method ?? 'GET';
    if (method === 'OPTIONS') {
      // SPEC "OPTIONS": the upstream's answer (Allow, DAV, CORS…): CalDAV and CardDAV clients probe the
      // server's capabilities on the very paths that are feeds. Answered here only when it fails.
      const link = linkHeader(req, targetOf(req));
      return { kind: 'passthrough', decoration: {
        headers: (status, headers) => (status < 400
          ? { ...mergedLink(headers.link, link), vary: mergeVary(headers.vary, varyOn) } : {}),
        onFailure(local) {
          local.writeHead(204, { allow, ...link, vary: varyOn.join(', ') });
          local.end();
          metrics.answer('options', 'full');
          return true;
        },
      } };
    }
    if (method !== 'GET' && method !== 'HEAD') return { kind: 'passthrough' };

    const target = targetOf(req);
    const feed = feedKey(target, route.listing, req.headers);
    const common = { ...linkHeader(req, target), vary: varyOn.join(', ') };

    if (method === 'HEAD') {
      // SPEC: answered at once from the snapshot, never waiting on the upstream.
      const state = await engine.state(feed.key).catch(() => undefined);
      if (!state || state.gone || state.notCalendar) {
        // No usable snapshot (never read, not a calendar, 404/410 upstream): the upstream's answer, so a
        // HEAD never claims a calendar that is not there. Still an inbound notification.
        options.onHead?.(route);
        return { kind: 'passthrough', decoration: {
          headers: (status, headers) => (status < 300 && isCalendarType(headers['content-type'])
            ? { ...mergedLink(headers.link, common), vary: mergeVary(headers.vary, varyOn) } : {}),
        } };
      }
      // A HEAD answer without a length closes the connection; the last read's size is what a GET
      // would most likely send (RFC 9110 §9.3.2 lets it be omitted, not made up otherwise).
      const headers: Record<string, string> = { 'content-type': calendarType, ...common,
        'content-length': String(state?.bytes ?? 0) };
      if (state) Object.assign(headers, validators(state.tag, state.changedAt));
      // RFC 9110 §9.3.2: what a GET would send. The coding and its length are only known once the last
      // read's bytes were encoded for a GET; until then the HEAD describes the identity body.
      const coding = negotiateEncoding(req.headers['accept-encoding']);
      const last = lastPlain.get(feed.key);
      const kept = coding !== 'identity' && state && last?.tag === state.tag && last.identityBytes === state.bytes
        ? encodedBodies.kept(last.key, coding) : undefined;
      if (kept && coding !== 'identity') {
        headers['content-encoding'] = coding;
        headers['content-length'] = String(kept.encoded.length);
      }
      const notModified = state !== undefined && matchesAny(req.headers['if-none-match'], state.tag);
      res.writeHead(notModified ? 304 : 200, headers);
      res.end();
      metrics.answer('head', notModified ? 'not_modified' : 'full');
      options.onHead?.(route);
      return { kind: 'answered' };
    }

    const prefs = parsePrefer(req.headers.prefer);
    const variant: FeedVariant = prefs.enhanced ? 'enhanced' : prefs.minimal && req.headers['if-none-match'] ? 'minimal' : 'plain';
    const maxAgeMs = options.maxAge.get(route.pattern) ?? 0;
    const anonymous = req.headers.authorization === undefined && req.headers.cookie === undefined;
    const read = (maxAgeMs > 0 && anonymous ? await freshRead(feed, maxAgeMs).catch(() => undefined) : undefined)
      ?? await engine.read(feed, forwardedRequestHeaders(req, options.trustedProxies ?? (() => false)));
    const hookHeader = req.headers['x-icalhooks-url'];
    if (hookHeader !== undefined) options.onHookHeader?.(feed, hookHeader, read.kind === 'calendar' ? read.tag : undefined);

    if (read.kind === 'failed' || read.kind === 'too-large') {
      const error = read.kind === 'failed' ? read.error : new IcalpushError('UPSTREAM_TOO_LARGE', 'feed body over the byte cap');
      sendError(res, error, common);
      metrics.answer(variant, 'error');
      return { kind: 'answered', errorCode: error.code };
    }
    if (read.kind === 'not-calendar') {
      // SPEC: not a complete calendar: the upstream's answer as it is, and the snapshot untouched.
      res.writeHead(read.answer.status, { ...read.answer.headers, 'content-length': String(read.answer.body.length) });
      await writeBody(res, read.answer.body);
      metrics.answer(variant, 'passthrough');
      return { kind: 'answered' };
    }

    const coding = negotiateEncoding(req.headers['accept-encoding']);
    const send: Send = async (status, headers, content, answer) => {
      const out = content === undefined ? undefined : await encode(content, content.identity ? 'identity' : coding);
      const entity: Record<string, string> = {};
      if (out && out.coding !== 'identity') entity['content-encoding'] = out.coding;
      // A streamed encoding has no length until it ends: it goes out chunked.
      if (out && 'body' in out) entity['content-length'] = String(bodyLength(out.body));
      res.writeHead(status, { ...common, ...headers, ...entity });
      if (out && 'stream' in out) await writeStream(res, out);
      else await writeBody(res, out?.body);
      metrics.answer(variant, answer, read.answer.body.length - (out?.identityBytes ?? 0));
      return { kind: 'answered' } as const;
    };
    const history = read.history;

    if (variant === 'enhanced' && history) {
      const applied = 'subscribe-enhanced-get';
      const tokenHeader = req.headers['sync-token'];
      const token = (position: SyncPosition) => {
        engine.noteClient(feed.key);
        return encodeToken({ feed: feed.key, lineage: history.lineage, ...position });
      };
      if (tokenHeader === undefined) {
        if (matchesAny(req.headers['if-none-match'], history.tag)) {
          return send(304, { 'sync-token': token({ version: history.version }), 'preference-applied': applied,
            ...validators(history.tag, history.changedAt) }, undefined, 'not_modified');
        }
        if (prefs.limit !== undefined) {
          // A paged first sync: the live entities in id order; its token resumes them, then the changes.
          const page = changesSince(history, { version: history.version, initial: true }, prefs.limit);
          if (page.truncated) {
            return send(200, { 'content-type': calendarType, 'sync-token': token(page.next),
              'preference-applied': `${applied}, limit=${prefs.limit}` },
            { key: representation(feed.key, history, 'page', prefs.limit), body: () => calendarBody(history, page.entities, page.timezones) },
            'full');
          }
        }
        return send(200, { 'content-type': calendarType, 'sync-token': token({ version: history.version }),
          'preference-applied': applied, ...validators(history.tag, history.changedAt) },
        { key: representation(feed.key, history, 'full'), body: () => fullBody(feed.key, history) }, 'full');
      }
      const decoded = decodeToken(Array.isArray(tokenHeader) ? tokenHeader.join(',') : tokenHeader, feed.key);
      if (!decoded.ok || !isTokenUsable(history, decoded)) {
        // Draft §4.3: the client discards its copy and starts over without a token.
        sendError(res, new IcalpushError('SYNC_TOKEN_INVALID', 'sync token not usable'), common);
        metrics.answer(variant, 'conflict');
        return { kind: 'answered', errorCode: 'SYNC_TOKEN_INVALID' };
      }
      const position: SyncPosition = {
        version: decoded.version,
        ...(decoded.after === undefined ? {} : { after: decoded.after }),
        ...(decoded.initial ? { initial: true } : {}),
      };
      const changes = changesSince(history, position, prefs.limit);
      const frameChanged = history.frameVersion > position.version;
      if (changes.entities.length === 0 && changes.tombstones.length === 0 && !frameChanged) {
        return send(304, { 'sync-token': token(changes.next), 'preference-applied': applied }, undefined, 'not_modified');
      }
      const preferenceApplied = changes.truncated ? `${applied}, limit=${prefs.limit}` : applied;
      // A delta depends on the client's position: many clients polling after one change share it.
      return send(200, { 'content-type': calendarType, 'sync-token': token(changes.next),
        'preference-applied': preferenceApplied }, {
        key: representation(feed.key, history, 'delta', position.version, position.after, position.initial, prefs.limit),
        body: () => calendarBody(history, [...changes.entities, ...changes.tombstones], changes.timezones),
      }, 'delta');
    }
    if (variant === 'enhanced') {
      // No history to answer from (feed cap): a token cannot be checked, so it is refused; without one the
      // client gets the plain answer, which is not upgraded. With the store unreachable (SPEC "Several
      // replicas": GETs pass through, unversioned) the token is not refused for it: the client gets the full
      // feed without a new token, and its own token still works once the store answers.
      if (req.headers['sync-token'] !== undefined && !(read.kind === 'calendar' && read.unversioned === 'store')) {
        sendError(res, new IcalpushError('SYNC_TOKEN_INVALID', 'no history for this feed'), common);
        metrics.answer(variant, 'conflict');
        return { kind: 'answered', errorCode: 'SYNC_TOKEN_INVALID' };
      }
    }

    if (variant === 'minimal' && history) {
      const held = parseEntityTags(req.headers['if-none-match']);
      if (held.includes(history.tag) || held.includes('*')) {
        return send(304, validators(history.tag, history.changedAt), undefined, 'not_modified');
      }
      const version = held.map((tag) => versionOfTag(history, tag)).find((v) => v !== undefined);
      if (version !== undefined) {
        const changes = changesSince(history, { version });
        return send(200, { 'content-type': calendarType, 'preference-applied': 'return=minimal',
          ...validators(history.tag, history.changedAt) }, {
          key: representation(feed.key, history, 'minimal', version),
          body: () => calendarBody(history, [...changes.entities, ...changes.tombstones], changes.timezones),
        }, 'delta');
      }
      // An ETag the history does not know: the full feed, without Preference-Applied.
    }

    return plain(req, read, send, feed.key, coding);
  };

  /** `content` in `coding`: a kept encoding of its representation before the body is even built. */
  async function encode(content: Content, coding: ContentCoding): Promise<EncodedBody> {
    const key = typeof content.key === 'function' ? await content.key() : content.key;
    if (coding !== 'identity' && key !== undefined) {
      const kept = encodedBodies.kept(key, coding);
      if (kept) return { coding, body: kept.encoded, identityBytes: kept.identityBytes };
    }
    const body = typeof content.body === 'function' ? await content.body() : content.body;
    return encodedBodies.encode(key, body, coding);
  }

  /** The plain GET: the upstream's status and bytes with the semantic ETag, or a 304. */
  function plain(req: IncomingMessage, read: Extract<FeedRead, { kind: 'calendar' }>, send: Send, feedKey: string,
    coding: ContentCoding): Promise<FeedOutcome> {
    const answer = read.answer;
    const headers = validators(read.tag, read.changedAt);
    const kept: Record<string, string> = {};
    for (const name of ['cache-control', 'expires', 'content-location']) {
      const value = answer.headers[name];
      if (typeof value === 'string') kept[name] = value;
    }
    const inm = req.headers['if-none-match'];
    const ims = req.headers['if-modified-since'];
    // RFC 9110 §13.2.2: If-None-Match wins over If-Modified-Since.
    const notModified = inm !== undefined
      ? matchesAny(inm, read.tag)
      : ims !== undefined && Math.floor(read.changedAt / 1000) * 1000 <= Date.parse(ims);
    if (notModified) return send(304, { ...kept, ...headers }, undefined, 'not_modified');
    // RFC 9111 §5.2.2.6: an upstream that says no-transform gets its bytes sent as they are.
    const identity = hasNoTransform(answer.headers['cache-control']) || coding === 'identity';
    const upstream: Record<string, string | string[]> = {};
    for (const [name, value] of Object.entries(answer.headers)) {
      if (replacedHeaders.has(name) || name === 'accept-ranges') continue;
      // A digest of the identity bytes would not match a coded body.
      if (!identity && (name === 'content-md5' || name === 'content-digest')) continue;
      upstream[name] = value;
    }
    // The upstream's own Vary and Link still hold: ours are added to them.
    const joined = { vary: mergeVary(answer.headers.vary, varyOn),
      ...mergedLink(answer.headers.link, linkHeader(req, targetOf(req))) };
    // The representation is these very bytes (SPEC: decompressed, a plain GET's body is the upstream's),
    // named by their hash: an upstream that restamps DTSTAMP gives a new one per read, a steady one none.
    const key = async () => {
      const named = `${feedKey}\u0000plain\u0000${await digestOf(answer.body)}`;
      lastPlain.set(feedKey, { tag: read.tag, key: named, identityBytes: answer.body.length });
      return named;
    };
    return send(answer.status, { ...upstream, ...joined, ...headers },
      { body: answer.body, ...(identity ? { identity } : { key }) }, 'full');
  }
}

/** Which representation a feed's last encoded plain answer was (HEAD answers with its coding). */
type PlainRecord = { tag: string; key: string; identityBytes: number };

/**
 * What an answer sends: its body (or how to build it, skipped when a kept encoding serves) and the name
 * of its representation, everything its bytes depend on but the coding; without a name it is not kept.
 */
type Content = {
  body: Body | (() => Body | Promise<Body>);
  key?: string | (() => Promise<string>);
  /** Sent unencoded whatever the client accepts. */
  identity?: boolean;
};

type Send = (
  status: number,
  headers: Record<string, string | string[]>,
  content: Content | undefined,
  answer: FeedAnswer,
) => Promise<FeedOutcome>;

/** The name of an enhanced or minimal representation: the history's version and all the request adds. */
function representation(feedKey: string, history: FeedHistory, ...request: unknown[]): string {
  // The floor too: pruning tombstones changes which a delta may carry without a new version.
  return JSON.stringify([feedKey, history.lineage, history.version, history.floor, ...request]);
}

function hasNoTransform(value: string | string[] | undefined): boolean {
  if (value === undefined) return false;
  return (Array.isArray(value) ? value.join(',') : value).split(',').some((d) => d.trim().toLowerCase() === 'no-transform');
}

// Larger bodies are handed to the socket a piece at a time: writing 12 MB at once held the loop 20 ms.
const writePieceBytes = 1024 * 1024;

/** Ends `res` with `body`, a piece at a time when it is large, following the socket's backpressure. */
async function writeBody(res: ServerResponse, body: Body | undefined): Promise<void> {
  if (!body || (!Array.isArray(body) && body.length <= writePieceBytes)) {
    res.end(body);
    return;
  }
  const pieces = Array.isArray(body) ? body : [body];
  for (const piece of pieces.flatMap((p) => split(p, writePieceBytes))) {
    if (res.destroyed) break;
    if (!res.write(piece)) {
      await new Promise<void>((resolve) => {
        const done = () => {
          res.off('drain', done);
          res.off('close', done);
          resolve();
        };
        res.once('drain', done);
        res.once('close', done);
      });
    } else {
      await yieldToLoop();
    }
  }
  res.end();
}

function split(buffer: Buffer, size: number): Buffer[] {
  if (buffer.length <= size) return [buffer];
  const out: Buffer[] = [];
  for (let at = 0; at < buffer.length; at += size) out.push(buffer.subarray(at, at + size));
  return out;
}

/** Sends a streamed encoding with the socket's backpressure; a client gone or a failure mid-body ends it. */
async function writeStream(res: ServerResponse, out: Extract<EncodedBody, { stream: unknown }>): Promise<void> {
  // A failure mid-body leaves the response destroyed: the client sees a cut-off chunked body, never a
  // short one that looks whole.
  await pipeline(out.stream, res).catch(() => undefined);
}

/** A calendar with the history's frame, the VTIMEZONEs its tombstones need, and these entity texts (a
 * delta or a page). */
function calendarBody(history: FeedHistory, texts: string[], timezones: string[]): Buffer {
  return Buffer.from(calendarText(history, texts, timezones), 'utf8');
}

/** The semantic validators: a weak ETag (bytes differ, content does not; RFC 9110 §8.8.1: one tag for every
 * content coding of the representation) and Last-Modified. */
function validators(tag: string, changedAt: number): Record<string, string> {
  return { etag: `W/"${tag}"`, 'last-modified': new Date(changedAt).toUTCString() };
}

/** The opaque tags of an If-None-Match value (`*` kept as is); weak and strong compare equal. */
function parseEntityTags(header: string | string[] | undefined): string[] {
  if (header === undefined) return [];
  const text = Array.isArray(header) ? header.join(',') : header;
  if (text.trim() === '*') return ['*'];
  return [...text.matchAll(/(?:W\/)?"([^"]*)"/g)].map((m) => m[1] ?? '');
}

/** RFC 9110 §13.1.2 weak comparison of If-None-Match against the current tag. */
function matchesAny(header: string | string[] | undefined, tag: string): boolean {
  const tags = parseEntityTags(header);
  return tags.includes('*') || tags.includes(tag);
}

/** The request target (path and query): src/app.ts answers every target that is not origin-form. */
function targetOf(req: IncomingMessage): string {
  return req.url ?? '/';
}

// The target is the client's own (already encoded) request target; only what would end the
// <URI-Reference> of a Link value, or is not a URI character at all, is percent-encoded.
function escapeForLink(target: string): string {
  return target.replace(/[<>"\s\\^`{|}\u0080-\uffff]/g, (c) => encodeURIComponent(c));
}
