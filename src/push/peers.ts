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
import type { Clock } from '../clock.ts';
import type { FeedAnalyzer } from '../feeds/analyzer.ts';
import { endsCalendar } from '../feeds/fetch.ts';
import { headerText, type OutboundClient } from '../http/clients.ts';
import { assembleCalendar } from '../ical/serialize.ts';
import type { Logger } from '../log.ts';
import { createSingleFlight } from '../util/single-flight.ts';
import { eachInSlices } from '../util/yield.ts';
import { type PackedAnalysis, packedCount, unpackEntity } from '../work/feed-tasks.ts';
import { nightsRequestAt } from './plans.ts';

/** A peer as the connection map names it. */
/** A peer as the connection map names it; `zone` is its listing's (a peer's nights are counted as the
 * listing's own, so they can explain them: the same dates, the same window). */
export type Peer = {
  listing: string;
  name: string;
  url: string;
  notify: boolean;
  zone?: string;
  /** `peers[].headers`: sent on every read of the peer's feed (credentials). */
  headers?: Readonly<Record<string, string>>;
};

/** What is known of a peer's feed from its last read. */
export type PeerSnapshot = {
  /** Busy nights from the earliest date that is still today somewhere (UTC−12) at the read, sorted. */
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
  /** Makes the reads, each with a total deadline of `timeoutMs`. */
  client: OutboundClient;
  /** Reads the peer's calendar off the event loop. */
  analyzer: FeedAnalyzer;
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
  /** After a reload: forgets what it keeps of peers no longer in the map (a listing removed, a URL changed), in
   * slices of the event loop. */
  prune(peers: Iterable<Peer>): Promise<void>;
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
  properties: string;
  timezones: Map<string, string>;
  entities: Map<string, string>;
};

// One read's answer, before it becomes nights.
type Fetched =
  | { kind: 'unchanged' }
  | { kind: 'failed'; reason: string }
  | { kind: 'calendar'; body: Buffer; via: PeerSnapshot['via']; etag?: string; lastModified?: string };

// An answer as the client gave it.
type Answer = { status: number; headers: Record<string, string | string[] | undefined>; body: Buffer };

// A peer's copy for enhanced GET holds at most this many entities; a bigger peer is read in full.
const maxCopyEntities = 25_000;

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

/** Creates the peer reader. */
export function createPeerReader(options: PeerReaderOptions): PeerReader {
  const { clock, logger, client, analyzer } = options;
  const snapshots = new Map<string, PeerSnapshot>();
  // Peers whose last answer offered enhanced GET, and their calendars as of their last token.
  const offersEnhanced = new Set<string>();
  const copies = new LRUCache<string, EnhancedCopy>({
    maxSize: options.copyBytes ?? defaultCopyBytes,
    sizeCalculation: (c) => Math.max(1, c.bytes),
  });
  // Concurrent reads of one peer share one request.
  const running = createSingleFlight<PeerRead>();

  /** A GET of the peer's configured URL (total deadline, byte cap), or why there is no answer. */
  async function get(peer: Peer, headers: Record<string, string>): Promise<Answer | { reason: string }> {
    const result = await client.request(peer.url, {
      method: 'GET',
      headers: { 'user-agent': options.userAgent, accept: 'text/calendar', ...peer.headers, ...headers },
      deadlineMs: options.timeoutMs,
      maxBodyBytes: options.maxBodyBytes,
    });
    if (result.kind === 'failed') return { reason: result.error.code === 'UPSTREAM_TIMEOUT' ? 'timeout' : result.error.code };
    if (result.kind === 'too-large') return { reason: 'too-large' };
    return result;
  }

  async function conditional(peer: Peer, previous: PeerSnapshot | undefined): Promise<Fetched> {
    const headers: Record<string, string> = {};
    if (previous?.etag) headers['if-none-match'] = previous.etag;
    if (previous?.lastModified) headers['if-modified-since'] = previous.lastModified;
    const res = await get(peer, headers);
    if ('reason' in res) return { kind: 'failed', reason: res.reason };
    if (advertisesEnhancedGet(res.headers.link)) offersEnhanced.add(key(peer));
    if (res.status === 304 && previous) return { kind: 'unchanged' };
    if (res.status < 200 || res.status > 299) return { kind: 'failed', reason: `status ${res.status}` };
    if (!endsCalendar(res.body)) return { kind: 'failed', reason: 'not a complete calendar' };
    const etag = headerText(res.headers.etag);
    const lastModified = headerText(res.headers['last-modified']);
    return { kind: 'calendar', body: res.body, via: 'conditional', ...(etag ? { etag } : {}), ...(lastModified ? { lastModified } : {}) };
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
      if ('reason' in res) return { kind: 'failed', reason: res.reason };
      const offers = advertisesEnhancedGet(res.headers.link);
      if (res.status === 409 && copy && !restarted) {
        // The peer no longer knows our token: discard our copy and read the whole feed.
        copies.delete(key(peer));
        copy = undefined;
        restarted = true;
        delta = false;
        logger.info({ listing: peer.listing, peer: peer.name }, 'peer sync token refused (409): reading in full');
        continue;
      }
      if (res.status === 304 && copy) {
        const token = headerText(res.headers['sync-token']);
        if (token) copy.token = token;
        return page === 0 && previous ? { kind: 'unchanged' } : whole(copy, delta);
      }
      if (res.status < 200 || res.status > 299) return { kind: 'failed', reason: `status ${res.status}` };
      if (!endsCalendar(res.body)) return { kind: 'failed', reason: 'not a complete calendar' };
      const applied = (headerText(res.headers['preference-applied']) ?? '').toLowerCase();
      const token = headerText(res.headers['sync-token']);
      if (!applied.includes('subscribe-enhanced-get') || !token) {
        // The peer answered a plain GET after all: that is the whole feed, and nothing to resume from.
        copies.delete(key(peer));
        if (!offers) offersEnhanced.delete(key(peer));
        return { kind: 'calendar', body: res.body, via: 'conditional' };
      }
      const outcome = await analyzer.analyze(`peer\u0000${key(peer)}`, res.body, { maxEntities: maxCopyEntities, deleted: true });
      if (outcome.kind !== 'done' || !outcome.packed.complete || outcome.packed.offsets === undefined) {
        // Too big or too costly to keep a copy of: read it whole from now on.
        copies.delete(key(peer));
        offersEnhanced.delete(key(peer));
        return outcome.kind === 'done' && outcome.packed.complete
          ? { kind: 'calendar', body: res.body, via: 'conditional' }
          : { kind: 'failed', reason: outcome.kind === 'done' ? 'not a complete calendar' : outcome.kind };
      }
      // Without a token the answer (or its first page) is the whole feed: it replaces the copy.
      copy = merge(copy, outcome.packed, token);
      // `limit=` applied means the peer cut the answer: the token resumes after its last entity.
      const cut = /(^|[\s,;])limit=/.test(applied);
      const fetched = cut ? undefined : whole(copy, delta);
      copy.bytes = fetched ? fetched.body.length * 2 : copy.bytes + res.body.length * 2;
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
    let nights: string[] | undefined;
    if (fetched.kind === 'calendar') {
      const outcome = await analyzer.analyze(`peer\u0000${key(peer)}\u0000whole`, fetched.body,
        { maxEntities: 0, nights: nightsRequestAt(now, peer.zone) });
      if (outcome.kind === 'done' && outcome.packed.complete && outcome.packed.nights) {
        const { busy, unreadable, busySafe } = outcome.packed.nights;
        nights = busy;
        logger.debug({ listing: peer.listing, peer: peer.name, via: fetched.via, bytes: fetched.body.length,
          nights: busy.length, unreadable, busySafe }, 'peer read');
      } else {
        fetched = { kind: 'failed', reason: outcome.kind === 'done' ? 'not a complete calendar' : outcome.kind };
      }
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
    if (fetched.kind !== 'calendar' || !nights) return { outcome: 'failed', snapshot: previous };
    const busy = new Set(nights);
    const changed = !previous || nights.join() !== previous.nights.join();
    const freed: Record<string, number> = {};
    for (const [night, at] of Object.entries(previous?.freed ?? {})) if (now - at < freedMemoryMs) freed[night] = at;
    const from = nightsRequestAt(now, peer.zone).today;
    for (const night of previous?.nights ?? []) if (!busy.has(night) && night >= from) freed[night] = now;
    for (const night of nights) delete freed[night];
    const snapshot: PeerSnapshot = {
      nights,
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
    read: (peer) => running(key(peer), () => readOnce(peer)),
    snapshot: (peer) => snapshots.get(key(peer)),
    async prune(live) {
      const keep = new Set<string>();
      await eachInSlices(live, (peer) => {
        keep.add(key(peer));
      });
      // Keys listed first: entries deleted while iterating would be skipped or seen twice.
      await eachInSlices([...snapshots.keys()], (id) => {
        if (!keep.has(id)) snapshots.delete(id);
      });
      for (const id of [...offersEnhanced]) if (!keep.has(id)) offersEnhanced.delete(id);
      for (const id of [...copies.keys()]) if (!keep.has(id)) copies.delete(id);
    },
  };
}

/** Applies an analysed enhanced answer to a copy (a delta) or makes a new copy of it (no copy yet: a full
 * answer). The answer's frame replaces the copy's; entities it carries replace theirs; tombstones remove theirs. */
function merge(copy: EnhancedCopy | undefined, packed: PackedAnalysis, token: string): EnhancedCopy {
  const next: EnhancedCopy = copy ?? { token, bytes: 0, properties: '', timezones: new Map(), entities: new Map() };
  next.token = token;
  next.properties = packed.frame.properties;
  for (const [tzid, text] of packed.frame.timezones) next.timezones.set(tzid, text);
  const deleted = new Set(packed.deleted ?? []);
  for (let i = 0; i < packedCount(packed); i += 1) {
    const entity = unpackEntity(packed, i);
    if (deleted.has(entity.id)) next.entities.delete(entity.id);
    else next.entities.set(entity.id, entity.text());
  }
  return next;
}

/** The peer's whole calendar as the copy holds it. */
function whole(copy: EnhancedCopy, delta: boolean): Fetched & { kind: 'calendar' } {
  const text = assembleCalendar(copy.properties, [...copy.timezones.values(), ...copy.entities.values()]);
  return { kind: 'calendar', body: Buffer.from(text, 'utf8'), via: delta ? 'enhanced-delta' : 'enhanced-full' };
}
