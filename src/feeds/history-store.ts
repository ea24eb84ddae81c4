// Keeps feed histories in the store as a small head and pages of entities and tombstones, so that no
// store write serializes a whole 20,000-event feed on the event loop, and a read that changed one event
// rewrites one page. The head names its pages; pages are written first under new keys and the head last,
// so a crash at any point leaves the previous head and its pages intact (orphans expire by TTL).
import { randomBytes } from 'node:crypto';
import type { FrameSummary } from '../ical/analyze.ts';
import type { Logger } from '../log.ts';
import type { Store, StoreNamespace } from '../store/store.ts';
import { fnv1a } from '../util/fnv.ts';
import { createSlice, eachInSlices } from '../util/yield.ts';
import { type FeedHistory, type HistoryEntity, type HistoryTombstone, loadedTombstone, withTombstoneZones } from './history.ts';

/** The stored format; a head of another format is not read (the feed starts a new lineage). */
const format = 2;
// Entities (and tombstones) a page holds about at most: a page is ~100-300 KB of JSON, under a
// millisecond to write.
const targetPerPage = 400;
const maxPageBits = 8;

type StoredHead = {
  format: typeof format;
  lineage: string;
  version: number;
  frame: FrameSummary;
  floor: number;
  frameVersion: number;
  tag: string;
  changedAt: number;
  tags: [string, number][];
  fingerprint?: string;
  /** The tombstones' VTIMEZONEs as [TZID, text]; absent (heads written before them, or none) is none. */
  zones?: [tzid: string, text: string][];
  /** log2 of the page count, each page's key suffix, and when (ms) each was written. */
  bits: number;
  pages: string[];
  written?: number[];
};

type StoredPage = {
  e: [id: string, hash: string, version: number, text: string, content: string, stub: string][];
  t: [id: string, version: number, removedAt: number, text: string][];
};

/** Where a feed's pages are, as last read or written, and the history (lineage, version) they hold. */
type Layout = { lineage: string; version: number; bits: number; pages: string[]; written: number[] };

/** What a save came to: written, or another writer's head was there first (nothing written over it). */
export type HistorySave = 'saved' | 'conflict';

/** Loads and saves histories. */
export type HistoryStore = {
  load(key: string): Promise<FeedHistory | undefined>;
  /**
   * Writes `next` over the head last loaded or saved here, compare-and-set on that head's stamp: when
   * another writer (another replica) saved since, nothing is written and the answer is 'conflict' — the
   * caller re-reads, never overwrites, so a feed's history never forks (SPEC "Several replicas").
   * `previous` (the history `next` was made from) lets only the pages that changed be written.
   */
  save(key: string, next: FeedHistory, previous: FeedHistory | undefined, ttlMs: number,
    options?: { all?: boolean; now?: number }): Promise<HistorySave>;
  /** Whether the head in the store is still the one `history` was loaded from or saved as, another, or none (one
   * round trip). */
  compare(key: string, history: FeedHistory): Promise<'current' | 'changed' | 'absent'>;
  /** `to` (made from `from` without being saved: the same content) stands for the head `from` was read from. */
  carry(from: FeedHistory, to: FeedHistory): void;
  /**
   * Writes `history` back when the store has lost it (a Redis restarted empty): only when the store holds no
   * head for the feed, so a history another replica wrote meanwhile is never overwritten. The history as
   * written (under a new lineage), or undefined when nothing was.
   */
  restore(key: string, history: FeedHistory, ttlMs: number): Promise<FeedHistory | undefined>;
  /** Forgets a feed's history, head and pages. */
  remove(key: string): Promise<void>;
};

/** Creates the history store over `store`. */
export function createHistoryStore(store: Store, logger: Logger): HistoryStore {
  const heads: StoreNamespace = store.namespace('feed_history');
  const pages: StoreNamespace = store.namespace('feed_pages');
  // By feed, not by history object: a history re-made with the same content (a new fingerprint) still
  // names the same pages. Bounded like the engine's state cache; a miss costs one full rewrite.
  // What each history object was read from or written as: the head's stamp and its pages. A save expects the
  // stamp of the very history it was made from, so a history loaded late (an older head, read while this process
  // saved a newer one) can never be written over the newer one.
  const origins = new WeakMap<FeedHistory, { stamp: string; layout: Layout }>();

  /** One read of a feed's head and pages; 'page-gone' when a page went under a head that changed meanwhile. */
  async function loadOnce(key: string): Promise<FeedHistory | undefined | 'page-gone'> {
    const stamped = await heads.getStamped<StoredHead>(key);
    const head = stamped?.value;
    if (!head || head.format !== format || !Array.isArray(head.pages)) return undefined;
    const entities = new Map<string, HistoryEntity>();
    const tombstones = new Map<string, HistoryTombstone>();
    const slice = createSlice();
    for (const suffix of head.pages) {
      // Stores that answer at once resolve by microtask: a 25,000-entity history is let go page by page.
      if (slice.due()) await slice.pause();
      const page = await pages.get<StoredPage>(pageKey(key, suffix));
      if (!page) {
        if ((await heads.getStamped<StoredHead>(key))?.stamp !== stamped?.stamp) return 'page-gone';
        // The head outlived a page (a store restored in part): the history cannot be trusted whole.
        logger.warn({ pages: head.pages.length, version: head.version }, 'feed history page missing: history dropped');
        return undefined;
      }
      for (const [id, hash, version, text, content, stub] of page.e) {
        entities.set(id, { hash, version, text, content, stub });
      }
      // A tombstone's TZID is read from its text, so pages keep the layout they always had.
      for (const [id, version, removedAt, text] of page.t) {
        tombstones.set(id, loadedTombstone(version, removedAt, text));
      }
    }
    const history: FeedHistory = {
      lineage: head.lineage,
      version: head.version,
      frame: head.frame,
      entities,
      tombstones,
      zones: new Map(Array.isArray(head.zones) ? head.zones : []),
      floor: head.floor,
      frameVersion: head.frameVersion,
      tag: head.tag,
      changedAt: head.changedAt,
      tags: head.tags,
      ...(head.fingerprint === undefined ? {} : { fingerprint: head.fingerprint }),
    };
    const loaded = withTombstoneZones(history);
    origins.set(loaded, { stamp: stamped?.stamp ?? '', layout: { lineage: head.lineage, version: head.version,
      bits: head.bits, pages: head.pages, written: head.written ?? head.pages.map(() => 0) } });
    return loaded;
  }

  return {
    async load(key) {
      // A page can go while it is read: another replica saved a newer head and deleted what it superseded. Then
      // the newer head is read instead; a page missing under an unchanged head is a store that lost it.
      for (let attempt = 1; ; attempt += 1) {
        const loaded = await loadOnce(key);
        if (loaded !== 'page-gone') return loaded;
        if (attempt >= 3) return undefined;
      }
    },

    async compare(key, history) {
      const stamped = await heads.getStamped<StoredHead>(key);
      if (stamped === undefined) return 'absent';
      return origins.get(history)?.stamp === stamped.stamp ? 'current' : 'changed';
    },

    carry(from, to) {
      const record = origins.get(from);
      if (record !== undefined && from !== to) origins.set(to, record);
    },

    async restore(key, history, ttlMs) {
      if (await heads.getStamped(key) !== undefined) return undefined;
      // A lineage of its own: tokens minted before the loss (by any replica, from any version) get 409 and a
      // full re-sync, never a delta or a 304 from a history that may differ from the one that minted them.
      const restored: FeedHistory = { ...history, lineage: randomBytes(6).toString('base64url') };
      return await this.save(key, restored, undefined, ttlMs, { all: true }) === 'saved' ? restored : undefined;
    },

    async remove(key) {
      const head = await heads.get<StoredHead>(key);
      await heads.delete(key);
      for (const suffix of Array.isArray(head?.pages) ? head.pages : []) {
        await pages.delete(pageKey(key, suffix)).catch(() => false);
      }
    },

    async save(key, next, previous, ttlMs, options = {}) {
      const now = options.now ?? Date.now();
      // The head this save writes over: the one `previous` was read from or written as. A history of unknown
      // origin proves nothing about the head: a conflict, and the caller re-reads. A first save expects none.
      const record = previous === undefined ? undefined : origins.get(previous);
      if (previous !== undefined && record === undefined) return 'conflict';
      const expected = record?.stamp;
      const bits = pageBits(next.entities.size + next.tombstones.size);
      const before = record?.layout;
      const rewriteAll = options.all === true || !before || before.bits !== bits || !previous
        || before.version !== previous.version || before.lineage !== previous.lineage;
      const slice = createSlice();
      const dirty = new Set<number>();
      if (rewriteAll) {
        for (let p = 0; p < 2 ** bits; p += 1) dirty.add(p);
      } else {
        // A page nothing changed in is rewritten before its TTL runs out, with the head that names it.
        before.written.forEach((at, p) => {
          if (now - at > ttlMs / 2) dirty.add(p);
        });
        // Every entity is looked at: sliced, so a 25,000-event feed's save never holds the loop long.
        const changedIn = async <V>(current: ReadonlyMap<string, V>, earlier: ReadonlyMap<string, V>) => {
          await eachInSlices(current, ([id, value]) => {
            if (earlier.get(id) !== value) dirty.add(pageOf(id, bits));
          }, slice);
          await eachInSlices(earlier.keys(), (id) => {
            if (!current.has(id)) dirty.add(pageOf(id, bits));
          }, slice);
        };
        await changedIn(next.entities, previous.entities);
        await changedIn(next.tombstones, previous.tombstones);
      }
      const suffixes = rewriteAll ? Array.from({ length: 2 ** bits }, () => '') : [...before.pages];
      const written = rewriteAll ? suffixes.map(() => now) : [...before.written];
      // A write of its own in every suffix: a rewrite at the same version (tombstones pruned) never
      // overwrites a page the current head names, so a crash in between leaves that head whole.
      const nonce = randomBytes(3).toString('base64url');
      const groups = new Map<number, StoredPage>();
      for (const p of dirty) groups.set(p, { e: [], t: [] });
      await eachInSlices(next.entities, ([id, e]) => {
        groups.get(pageOf(id, bits))?.e.push([id, e.hash, e.version, e.text, e.content, e.stub]);
      }, slice);
      await eachInSlices(next.tombstones, ([id, t]) => {
        groups.get(pageOf(id, bits))?.t.push([id, t.version, t.removedAt, t.text]);
      }, slice);
      // Pages first, each under a new key; one write at a time, so none holds the event loop long.
      for (const [p, page] of groups) {
        const suffix = `${p}.${next.version}.${nonce}`;
        await pages.set(pageKey(key, suffix), page, ttlMs);
        suffixes[p] = suffix;
        written[p] = now;
        // A store that answers at once (memory) resolves by microtask: the loop must be let go explicitly.
        if (slice.due()) await slice.pause();
      }
      const head: StoredHead = {
        format,
        lineage: next.lineage,
        version: next.version,
        frame: next.frame,
        floor: next.floor,
        frameVersion: next.frameVersion,
        tag: next.tag,
        changedAt: next.changedAt,
        tags: [...next.tags],
        ...(next.fingerprint === undefined ? {} : { fingerprint: next.fingerprint }),
        ...(next.zones.size === 0 ? {} : { zones: [...next.zones] }),
        bits,
        pages: suffixes,
        written,
      };
      const stamp = await heads.setIfStamp(key, expected, head, ttlMs);
      if (stamp === undefined) {
        // Another writer's head is there: the pages written for this one are nobody's.
        for (const [p] of groups) {
          const suffix = suffixes[p] as string;
          if (suffix !== before?.pages[p]) await pages.delete(pageKey(key, suffix)).catch(() => false);
        }
        return 'conflict';
      }
      origins.set(next, { stamp, layout: { lineage: next.lineage, version: next.version, bits, pages: suffixes,
        written } });
      // The superseded pages: nothing names them now. A failed delete only leaves them to their TTL.
      const stale = before ? before.pages.filter((suffix) => !suffixes.includes(suffix)) : [];
      for (const suffix of stale) await pages.delete(pageKey(key, suffix)).catch(() => false);
      return 'saved';
    },
  };
}

function pageKey(feed: string, suffix: string): string {
  return `${feed}\u0000${suffix}`;
}

function pageBits(items: number): number {
  let bits = 0;
  while (bits < maxPageBits && items / 2 ** bits > targetPerPage) bits += 1;
  return bits;
}

// A stable spread of ids over the pages, cheap enough to run for every entity of a read.
function pageOf(id: string, bits: number): number {
  return bits === 0 ? 0 : fnv1a(id) >>> (32 - bits);
}
