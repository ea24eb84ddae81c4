// Reads the peers' feeds of a listing (SPEC "Push"): the configured URL only, turned into the peer's
// busy nights. Inbound HEADs use it to see whether a peer changed, and classification uses it to tell
// an imported change from a primary one (iPP §3.3).
//
// A read is a conditional GET (If-None-Match / If-Modified-Since) until the peer advertises enhanced
// GET with `Link: <…>; rel="subscribe-enhanced-get"` (either spelling); from then on it is an enhanced
// GET (`Prefer: subscribe-enhanced-get` + the last `Sync-Token`) of the same configured URL, never of
// the Link's target (poll targets come only from the config, iPP §4.1). The peer's entities are kept
// to apply deltas and STATUS:DELETED tombstones to; a 409 drops them and reads the whole feed again.
// A copy always matches its token (an answer is merged whole or not at all), so a failed read keeps it.
import LinkHeader from 'http-link-header';
import { LRUCache } from 'lru-cache';
import { type Dispatcher, request } from 'undici';
import type { Clock } from '../clock.ts';
import { declaredLength, endsCalendar, readCapped } from '../feeds/fetch.ts';
import { decodeFeed } from '../ical/decode.ts';
import { groupEntities } from '../ical/entities.ts';
import { serializeCalendar } from '../ical/serialize.ts';
import { type Component, type ContentLine, propertyValue, splitCalendar } from '../ical/split.ts';
import type { Logger } from '../log.ts';
import { busyNights, dateOf } from './availability.ts';

/** A peer as the connection map names it. */
export type Peer = { listing: string; name: string; url: string; notify: boolean };

/** What is known of a peer's feed from its last read. */
export type PeerSnapshot = {
  /** Busy nights from the day of the read on, sorted. */
  nights: string[];
  /** Nights the peer stopped showing busy at recent reads, with when (ms): a cancellation there. */
  freed: Record<string, number>;
  readAt: number;
  changedAt: number;
  /** How the last successful read asked: conditional GET, or enhanced GET with a token (delta) or without. */
  via: 'conditional' | 'enhanced-full' | 'enhanced-delta';
  etag?: string;
  lastModified?: string;
  lastError?: { at: number; reason: string };
};

/** What one read of a peer came to. */
export type PeerRead = { outcome: 'changed' | 'unchanged' | 'failed'; snapshot: PeerSnapshot | undefined };

/** Options for createPeerReader. */
export type PeerReaderOptions = {
  clock: Clock;
  logger: Logger;
  dispatcher: Dispatcher;
  userAgent: string;
  timeoutMs: number;
  maxBodyBytes: number;
  /** Bound on the peers' calendars kept for enhanced GET, all together; 64 MiB by default. */
  copyBytes?: number;
};

/** Reads peers; keeps each one's last snapshot in memory (bounded by the connection map). */
export type PeerReader = {
  read(peer: Peer): Promise<PeerRead>;
  /** The last snapshot of a peer, if it was ever read. */
  snapshot(peer: Peer): PeerSnapshot | undefined;
};

// A freed night explains our own cancellation for this long after the peer's read saw it go.
const freedMemoryMs = 24 * 60 * 60 * 1000;
// A peer that pages its enhanced answers on its own is followed for at most this many pages per read.
const maxPages = 100;
const enhancedRelations: ReadonlySet<string> = new Set(['subscribe-enhanced-get', 'subscribe-enhanced_get']);
// Peers' calendars kept for enhanced GET, all together, counted as twice their text: past it the least
// recently read peer is read in full next time.
const defaultCopyBytes = 64 * 1024 * 1024;

// What enhanced GET needs between reads: the token and the peer's calendar as of that token.
type EnhancedCopy = {
  token: string;
  /** About what the copy holds in memory: twice the text of the calendar it makes. */
  bytes: number;
  properties: ContentLine[];
  timezones: Map<string, Component>;
  entities: Map<string, Component[]>;
};

// One read's answer, before it becomes nights.
type Fetched =
  | { kind: 'unchanged' }
  | { kind: 'failed'; reason: string }
  | { kind: 'calendar'; text: string; via: PeerSnapshot['via']; etag?: string; lastModified?: string };

const key = (peer: Peer) => `${peer.listing}\u0000${peer.url}`;

/** True when a `Link` header value offers enhanced GET (RFC 8288; the relation may be one of several). */
export function advertisesEnhancedGet(value: string | string[] | undefined): boolean {
  if (value === undefined) return false;
  try {
    const refs = (Array.isArray(value) ? value : [value]).flatMap((v) => LinkHeader.parse(v).refs);
    return refs.some((ref) => ref.rel.toLowerCase().split(/\s+/).some((rel) => enhancedRelations.has(rel)));
  } catch {
    // A Link header we cannot parse offers nothing.
    return false;
  }
}

const headerText = (value: string | string[] | undefined) => (Array.isArray(value) ? value.join(', ') : value);

/** Creates the peer reader. */
export function createPeerReader(options: PeerReaderOptions): PeerReader {
  const { clock, logger, dispatcher } = options;
  const snapshots = new Map<string, PeerSnapshot>();
  // Peers whose last answer offered enhanced GET, and their calendars as of their last token.
  const offersEnhanced = new Set<string>();
  const copies = new LRUCache<string, EnhancedCopy>({
    maxSize: options.copyBytes ?? defaultCopyBytes,
    sizeCalculation: (c) => Math.max(1, c.bytes),
  });
  // Concurrent reads of one peer share one request.
  const running = new Map<string, Promise<PeerRead>>();

  async function get(peer: Peer, headers: Record<string, string>) {
    return request(peer.url, {
      method: 'GET',
      headers: { 'user-agent': options.userAgent, accept: 'text/calendar', ...headers },
      dispatcher,
      headersTimeout: options.timeoutMs,
      bodyTimeout: options.timeoutMs,
    });
  }

  /** Reads the body of a 2xx as a complete calendar text, or says why not. */
  async function calendarText(res: Dispatcher.ResponseData): Promise<string | { reason: string }> {
    const body = await readCapped(res.body, declaredLength(res.headers), options.maxBodyBytes);
    if (body === undefined) return { reason: 'too-large' };
    if (!endsCalendar(body)) return { reason: 'not a complete calendar' };
    return decodeFeed(body).text;
  }

  async function conditional(peer: Peer, previous: PeerSnapshot | undefined): Promise<Fetched> {
    const headers: Record<string, string> = {};
    if (previous?.etag) headers['if-none-match'] = previous.etag;
    if (previous?.lastModified) headers['if-modified-since'] = previous.lastModified;
    const res = await get(peer, headers);
    if (advertisesEnhancedGet(res.headers.link)) offersEnhanced.add(key(peer));
    if (res.statusCode === 304 && previous) {
      await res.body.dump();
      return { kind: 'unchanged' };
    }
    if (res.statusCode < 200 || res.statusCode > 299) {
      await res.body.dump();
      return { kind: 'failed', reason: `status ${res.statusCode}` };
    }
    const text = await calendarText(res);
    if (typeof text !== 'string') return { kind: 'failed', ...text };
    const etag = headerText(res.headers.etag);
    const lastModified = headerText(res.headers['last-modified']);
    return { kind: 'calendar', text, via: 'conditional', ...(etag ? { etag } : {}), ...(lastModified ? { lastModified } : {}) };
  }

  /** Enhanced GET: pages until the answer is whole; a 409 starts over once without a token. */
  async function enhanced(peer: Peer, previous: PeerSnapshot | undefined): Promise<Fetched> {
    let copy = copies.get(key(peer));
    let restarted = false;
    let delta = copy !== undefined;
    for (let page = 0; page < maxPages; page++) {
      const headers: Record<string, string> = { prefer: 'subscribe-enhanced-get' };
      if (copy) headers['sync-token'] = copy.token;
      const res = await get(peer, headers);
      const offers = advertisesEnhancedGet(res.headers.link);
      if (res.statusCode === 409 && copy && !restarted) {
        // The peer no longer knows our token: discard our copy and read the whole feed.
        await res.body.dump();
        copies.delete(key(peer));
        copy = undefined;
        restarted = true;
        delta = false;
        logger.info({ listing: peer.listing, peer: peer.name }, 'peer sync token refused (409): reading in full');
        continue;
      }
      if (res.statusCode === 304 && copy) {
        await res.body.dump();
        const token = headerText(res.headers['sync-token']);
        if (token) copy.token = token;
        return page === 0 && previous ? { kind: 'unchanged' } : whole(copy, delta);
      }
      if (res.statusCode < 200 || res.statusCode > 299) {
        await res.body.dump();
        return { kind: 'failed', reason: `status ${res.statusCode}` };
      }
      const text = await calendarText(res);
      if (typeof text !== 'string') return { kind: 'failed', ...text };
      const applied = (headerText(res.headers['preference-applied']) ?? '').toLowerCase();
      const token = headerText(res.headers['sync-token']);
      if (!applied.includes('subscribe-enhanced-get') || !token) {
        // The peer answered a plain GET after all: that is the whole feed, and nothing to resume from.
        copies.delete(key(peer));
        if (!offers) offersEnhanced.delete(key(peer));
        return { kind: 'calendar', text, via: 'conditional' };
      }
      // Without a token the answer (or its first page) is the whole feed: it replaces the copy.
      copy = merge(copy, text, token);
      // `limit=` applied means the peer cut the answer: the token resumes after its last entity.
      const cut = /(^|[\s,;])limit=/.test(applied);
      const fetched = cut ? undefined : whole(copy, delta);
      copy.bytes = fetched ? fetched.text.length * 2 : copy.bytes + text.length * 2;
      copies.set(key(peer), copy);
      if (fetched) return fetched;
    }
    return { kind: 'failed', reason: `more than ${maxPages} pages` };
  }

  async function readOnce(peer: Peer): Promise<PeerRead> {
    const previous = snapshots.get(key(peer));
    const now = clock.now();
    let fetched: Fetched;
    try {
      fetched = offersEnhanced.has(key(peer)) ? await enhanced(peer, previous) : await conditional(peer, previous);
    } catch (err) {
      fetched = { kind: 'failed', reason: (err as { code?: string }).code ?? 'network error' };
    }
    if (fetched.kind === 'failed') {
      const snapshot = previous ? { ...previous, lastError: { at: now, reason: fetched.reason } } : undefined;
      if (snapshot) snapshots.set(key(peer), snapshot);
      logger.warn({ listing: peer.listing, peer: peer.name, reason: fetched.reason }, 'peer read failed');
      return { outcome: 'failed', snapshot };
    }
    if (fetched.kind === 'unchanged' && previous) {
      const { lastError: _cleared, ...rest } = previous;
      const snapshot = { ...rest, readAt: now };
      snapshots.set(key(peer), snapshot);
      return { outcome: 'unchanged', snapshot };
    }
    if (fetched.kind !== 'calendar') return { outcome: 'failed', snapshot: previous };
    const { nights, unreadable } = await busyNights(fetched.text, { today: dateOf(now) });
    logger.debug({ listing: peer.listing, peer: peer.name, via: fetched.via, bytes: fetched.text.length,
      nights: nights.size, unreadable }, 'peer read');
    const sorted = [...nights].sort();
    const changed = !previous || sorted.join() !== previous.nights.join();
    const freed: Record<string, number> = {};
    for (const [night, at] of Object.entries(previous?.freed ?? {})) if (now - at < freedMemoryMs) freed[night] = at;
    for (const night of previous?.nights ?? []) if (!nights.has(night) && night >= dateOf(now)) freed[night] = now;
    for (const night of sorted) delete freed[night];
    const snapshot: PeerSnapshot = {
      nights: sorted,
      freed,
      readAt: now,
      changedAt: changed ? now : (previous?.changedAt ?? now),
      via: fetched.via,
      ...(fetched.etag ? { etag: fetched.etag } : {}),
      ...(fetched.lastModified ? { lastModified: fetched.lastModified } : {}),
    };
    snapshots.set(key(peer), snapshot);
    return { outcome: changed ? 'changed' : 'unchanged', snapshot };
  }

  return {
    read(peer) {
      const shared = running.get(key(peer));
      if (shared) return shared;
      const reading = readOnce(peer).finally(() => running.delete(key(peer)));
      running.set(key(peer), reading);
      return reading;
    },
    snapshot: (peer) => snapshots.get(key(peer)),
  };
}

/** Applies an enhanced answer to a copy (a delta) or makes a new copy of it (no copy yet: a full answer).
 * The answer's frame replaces the copy's; entities it carries replace theirs; tombstones remove theirs. */
function merge(copy: EnhancedCopy | undefined, text: string, token: string): EnhancedCopy {
  const split = splitCalendar(text);
  const next: EnhancedCopy = copy ?? { token, bytes: 0, properties: [], timezones: new Map(), entities: new Map() };
  next.token = token;
  if (split.properties.length > 0) next.properties = split.properties;
  for (const timezone of split.timezones) next.timezones.set(propertyValue(timezone, 'TZID') ?? '', timezone);
  for (const entity of groupEntities(split.components)) {
    const deleted = entity.components.some((c) => propertyValue(c, 'STATUS')?.trim().toUpperCase() === 'DELETED');
    if (deleted) next.entities.delete(entity.id);
    else next.entities.set(entity.id, entity.components);
  }
  return next;
}

/** The peer's whole calendar as the copy holds it. */
function whole(copy: EnhancedCopy, delta: boolean): Fetched & { kind: 'calendar' } {
  const text = serializeCalendar({
    properties: copy.properties,
    timezones: [...copy.timezones.values()],
    components: [...copy.entities.values()].flat(),
  });
  return { kind: 'calendar', text, via: delta ? 'enhanced-delta' : 'enhanced-full' };
}
