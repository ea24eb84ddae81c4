// Reads the peers' feeds of a listing (SPEC "Push"): a conditional GET to the configured URL only,
// turned into the peer's busy nights. Inbound HEADs use it to see whether a peer changed, and
// classification uses it to tell an imported change from a primary one (iPP §3.3).
import { type Dispatcher, request } from 'undici';
import type { Clock } from '../clock.ts';
import { declaredLength, endsCalendar, readCapped } from '../feeds/fetch.ts';
import { decodeFeed } from '../ical/decode.ts';
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
};

/** Reads peers; keeps each one's last snapshot in memory (bounded by the connection map). */
export type PeerReader = {
  read(peer: Peer): Promise<PeerRead>;
  /** The last snapshot of a peer, if it was ever read. */
  snapshot(peer: Peer): PeerSnapshot | undefined;
};

// A freed night explains our own cancellation for this long after the peer's read saw it go.
const freedMemoryMs = 24 * 60 * 60 * 1000;

const key = (peer: Peer) => `${peer.listing}\u0000${peer.url}`;

/** Creates the peer reader. */
export function createPeerReader(options: PeerReaderOptions): PeerReader {
  const { clock, logger, dispatcher } = options;
  const snapshots = new Map<string, PeerSnapshot>();
  // Concurrent reads of one peer share one request.
  const running = new Map<string, Promise<PeerRead>>();

  async function readOnce(peer: Peer): Promise<PeerRead> {
    const previous = snapshots.get(key(peer));
    const now = clock.now();
    const headers: Record<string, string> = { 'user-agent': options.userAgent, accept: 'text/calendar' };
    if (previous?.etag) headers['if-none-match'] = previous.etag;
    if (previous?.lastModified) headers['if-modified-since'] = previous.lastModified;
    const fail = (reason: string): PeerRead => {
      const snapshot = previous ? { ...previous, lastError: { at: now, reason } } : undefined;
      if (snapshot) snapshots.set(key(peer), snapshot);
      logger.warn({ listing: peer.listing, peer: peer.name, reason }, 'peer read failed');
      return { outcome: 'failed', snapshot };
    };
    try {
      const res = await request(peer.url, {
        method: 'GET',
        headers,
        dispatcher,
        headersTimeout: options.timeoutMs,
        bodyTimeout: options.timeoutMs,
      });
      if (res.statusCode === 304 && previous) {
        await res.body.dump();
        const snapshot = { ...previous, readAt: now };
        delete snapshot.lastError;
        snapshots.set(key(peer), snapshot);
        return { outcome: 'unchanged', snapshot };
      }
      if (res.statusCode < 200 || res.statusCode > 299) {
        await res.body.dump();
        return fail(`status ${res.statusCode}`);
      }
      const body = await readCapped(res.body, declaredLength(res.headers), options.maxBodyBytes);
      if (body === undefined) return fail('too-large');
      if (!endsCalendar(body)) return fail('not a complete calendar');
      const text = decodeFeed(body).text;
      const { nights, unreadable } = await busyNights(text, { today: dateOf(now) });
      logger.debug({ listing: peer.listing, peer: peer.name, bytes: text.length, nights: nights.size, unreadable }, 'peer read');
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
        ...(typeof res.headers.etag === 'string' ? { etag: res.headers.etag } : {}),
        ...(typeof res.headers['last-modified'] === 'string' ? { lastModified: res.headers['last-modified'] } : {}),
      };
      snapshots.set(key(peer), snapshot);
      return { outcome: changed ? 'changed' : 'unchanged', snapshot };
    } catch (err) {
      return fail((err as { code?: string }).code ?? 'network error');
    }
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
