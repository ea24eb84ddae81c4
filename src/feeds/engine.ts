// The feed engine: reads a feed from the upstream, folds complete answers into its versioned
// history, and keeps that history and a small per-feed state in the store (SPEC "Feed paths",
// "Guarantees"). Reads of one feed are applied one at a time; concurrent GETs share one fetch.
import { createHash } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import type { Clock } from '../clock.ts';
import type { IcalpushError } from '../errors.ts';
import type { Logger } from '../log.ts';
import { redactUrl } from '../redact.ts';
import type { Store, StoreNamespace } from '../store/store.ts';
import type { FeedMetrics } from './feed-metrics.ts';
import type { CalendarFetch, FeedFetch, FeedFetcher, NotCalendarReason, UpstreamAnswer } from './fetch.ts';
import { type ComponentMemo, splitReusing } from '../ical/reuse.ts';
import { applySnapshot, type FeedHistory, pruneTombstones, type SnapshotResult } from './history.ts';

/** A feed as the engine keys it: the upstream target, and the credentials that select its content. */
export type FeedKey = {
  /** Store key: the target, plus a hash of the Authorization header when there is one. */
  key: string;
  /** Path and query on the upstream. */
  target: string;
  listing: string;
};

/** The small per-feed record beside the history: what HEAD, status and maxAge need. */
export type FeedState = {
  target: string;
  listing: string;
  lineage: string;
  version: number;
  entities: number;
  tag: string;
  changedAt: number;
  lastReadAt: number;
  /** Size of the last calendar body read: the Content-Length a HEAD announces. */
  bytes: number;
  /** The last read that failed or was not a calendar, and why. */
  lastError?: { at: number; reason: string };
  /** A sudden drop seen since `since` and not applied yet (SPEC "Guarantees"). */
  hold?: { since: number; entities: number };
  /** Entities re-keyed by content on the last read that re-keyed any. */
  rekeyed?: number;
  /** When the history was last written; it is rewritten well before its store TTL runs out. */
  savedAt: number;
};

/** What a feed read came to, for the code that answers the request. */
export type FeedRead =
  | {
    kind: 'calendar';
    answer: UpstreamAnswer;
    /** The semantic ETag value of this answer's content (of the held answer, when held). */
    tag: string;
    changedAt: number;
    /** The last good history: what enhanced GET answers from; absent when the store failed. */
    history: FeedHistory | undefined;
    /** True when this answer is a drop being held: the history is the snapshot before it. */
    held: boolean;
  }
  | { kind: 'not-calendar'; answer: UpstreamAnswer; reason: NotCalendarReason }
  | { kind: 'failed'; error: IcalpushError }
  | { kind: 'too-large' };

/** Options for createFeedEngine. */
export type FeedEngineOptions = {
  store: Store;
  fetcher: FeedFetcher;
  clock: Clock;
  logger: Logger;
  metrics: FeedMetrics;
  /** How long tombstones are kept (SPEC: default 30 days). */
  retentionMs: number;
  /** Feeds with a snapshot; reads of others are answered but not versioned. */
  maxFeeds: number;
  /** How long a sudden drop must persist before it is applied, and what share of entities is one. */
  hold: { spanMs: number; fraction: number };
  /** Told after each applied change of a feed (push decides from it); errors are logged, never thrown. */
  onChange?: (feed: FeedKey, change: FeedChange) => void | Promise<void>;
};

/** One applied change of a feed: the history before (absent on the first read) and after. */
export type FeedChange = { before: FeedHistory | undefined; after: FeedHistory };

/** The engine the HTTP layer and the status endpoint use. */
export type FeedEngine = {
  /** Reads the feed from the upstream (shared with concurrent reads) and applies the answer. */
  read(feed: FeedKey, headers: Record<string, string | string[]>): Promise<FeedRead>;
  /** The stored state of a feed without touching the upstream (HEAD, maxAge). */
  state(key: string): Promise<FeedState | undefined>;
  /** The last good history of a feed without touching the upstream. */
  history(key: string): Promise<FeedHistory | undefined>;
  /** The last calendar answer read for a feed, if still in memory (maxAge answers). */
  lastAnswer(key: string): UpstreamAnswer | undefined;
  /** Every known feed's state, for /_icalpush/status. */
  states(): Promise<FeedState[]>;
};

/** The store key of a feed read with these request headers. */
export function feedKey(
  target: string,
  listing: string,
  headers: Record<string, string | string[] | undefined>,
): FeedKey {
  const authorization = headers.authorization;
  // Feeds behind HTTP auth can differ per account: each account gets its own snapshot and tokens.
  // The hash keeps the credential itself out of the store and the tokens.
  const key = authorization === undefined
    ? target
    : `${target} auth:${createHash('sha256').update(String(authorization)).digest('base64url').slice(0, 16)}`;
  return { key, target, listing };
}

// The in-memory history cache is bounded by an estimate of its size: parsed components cost about
// this much per entity (measured on Airbnb-like events, rounded up).
const bytesPerEntity = 4_096;
const historyCacheBytes = 128 * 1024 * 1024;
const answerCacheBytes = 32 * 1024 * 1024;
// The last read's components by text, per feed: about the size of the feed's text.
const memoCacheBytes = 64 * 1024 * 1024;
// lastReadAt alone is persisted at most this often; everything else is written when it changes.
const readStampIntervalMs = 10_000;
// Counting the store's feeds is a scan: when the cap is reached, recount at most this often.
const recountIntervalMs = 60_000;

/** Creates the feed engine. */
export function createFeedEngine(options: FeedEngineOptions): FeedEngine {
  const { store, fetcher, clock, logger, metrics, retentionMs, maxFeeds, hold } = options;
  const histories: StoreNamespace = store.namespace('feed_history');
  const statesNs: StoreNamespace = store.namespace('feed_state');
  // Stored entries outlive retention so tokens stay usable that long; a feed nobody reads for twice
  // that is forgotten (a later read starts a new lineage, and old tokens get 409).
  const ttlMs = retentionMs * 2;

  const historyCache = new LRUCache<string, FeedHistory>({
    maxSize: historyCacheBytes,
    sizeCalculation: (h) => Math.max(1, Object.keys(h.entities).length * bytesPerEntity),
  });
  const stateCache = new LRUCache<string, FeedState>({ max: Math.min(maxFeeds, 100_000) });
  // The sequence of the newest fetch applied per feed. Fetches of one feed that do not share (another
  // Host or Accept-Language) may answer out of order; the older answer must not undo the newer one.
  const appliedSequence = new LRUCache<string, number>({ max: Math.min(maxFeeds, 100_000) });
  const answerCache = new LRUCache<string, UpstreamAnswer>({
    maxSize: answerCacheBytes,
    sizeCalculation: (a) => Math.max(1, a.body.length),
  });
  const memos = new LRUCache<string, ComponentMemo>({ maxSize: memoCacheBytes });
  // Bounded by concurrency: an entry lives while a read of that fetch is being applied.
  const applying = new WeakMap<FeedFetch, Promise<FeedRead>>();
  // One apply per feed at a time; an entry lives while one is queued or running.
  const queues = new Map<string, Promise<unknown>>();
  const persistedReadAt = new Map<string, number>();
  let feedCount: number | undefined;
  let countedAt = Number.NEGATIVE_INFINITY;
  let capWarnedAt = Number.NEGATIVE_INFINITY;

  async function loadHistory(key: string): Promise<FeedHistory | undefined> {
    const cached = historyCache.get(key);
    if (cached) return cached;
    const stored = await histories.get<FeedHistory>(key);
    if (stored) historyCache.set(key, stored);
    return stored;
  }

  async function loadState(key: string): Promise<FeedState | undefined> {
    const cached = stateCache.get(key);
    if (cached) return cached;
    const stored = await statesNs.get<FeedState>(key);
    if (stored) stateCache.set(key, stored);
    return stored;
  }

  async function saveState(key: string, state: FeedState, force: boolean): Promise<void> {
    stateCache.set(key, state);
    const last = persistedReadAt.get(key) ?? Number.NEGATIVE_INFINITY;
    if (!force && state.lastReadAt - last < readStampIntervalMs) return;
    await statesNs.set(key, state, ttlMs);
    persistedReadAt.set(key, state.lastReadAt);
    // Bounded like the state cache: the throttle is an optimisation, losing an entry costs one write.
    if (persistedReadAt.size > stateCache.max) persistedReadAt.clear();
  }

  /** True when one more feed may get a snapshot. */
  async function hasRoom(): Promise<boolean> {
    const now = clock.now();
    if (feedCount === undefined || (feedCount >= maxFeeds && now - countedAt > recountIntervalMs)) {
      let count = 0;
      for await (const _ of statesNs.entries()) count += 1;
      feedCount = count;
      countedAt = now;
    }
    return feedCount < maxFeeds;
  }

  function stateOf(
    feed: FeedKey,
    history: FeedHistory,
    previous: FeedState | undefined,
    now: number,
    bytes: number,
  ): FeedState {
    return {
      ...previous,
      target: feed.target,
      listing: feed.listing,
      lineage: history.lineage,
      version: history.version,
      entities: Object.keys(history.entities).length,
      tag: history.tag,
      changedAt: history.changedAt,
      lastReadAt: now,
      bytes,
      savedAt: previous?.savedAt ?? now,
    };
  }

  async function recordError(feed: FeedKey, reason: string): Promise<void> {
    const now = clock.now();
    try {
      const previous = await loadState(feed.key);
      if (!previous) return;
      await saveState(feed.key, { ...previous, lastError: { at: now, reason } }, true);
    } catch (err) {
      logger.error({ err, feed: redactUrl(feed.target) }, 'feed state not saved');
    }
  }

  /** True when `result` removes most of a snapshot's entities at once (SPEC "Guarantees"). */
  function isDrop(previous: FeedHistory, result: SnapshotResult): boolean {
    const before = Object.keys(previous.entities).length;
    if (hold.spanMs === 0 || before === 0 || result.removed.length === 0) return false;
    const after = Object.keys(result.history.entities).length;
    return after === 0 || result.removed.length > hold.fraction * before;
  }

  async function apply(feed: FeedKey, answer: CalendarFetch): Promise<FeedRead> {
    const now = clock.now();
    const calendarRead = (h: FeedHistory | undefined, tag: string, changedAt: number, held = false): FeedRead =>
      ({ kind: 'calendar', answer, tag, changedAt, history: h, held });
    if (answer.sequence < (appliedSequence.get(feed.key) ?? 0)) {
      // Asked for before an answer already applied: older content. Its caller still gets these bytes,
      // with an ETag of their own, and the snapshot stays as the newer answer left it.
      metrics.read('superseded');
      logger.debug({ feed: redactUrl(feed.target), listing: feed.listing }, 'older feed answer not applied');
      return calendarRead(undefined, applySnapshot(undefined, answer.calendar, now).history.tag, answer.fetchedAt);
    }
    appliedSequence.set(feed.key, answer.sequence);
    const history = await loadHistory(feed.key);
    const previous = await loadState(feed.key);

    // Same bytes apart from DTSTAMP lines as the read that made this history: nothing to do.
    if (history && answer.fingerprint === history.fingerprint) {
      metrics.read('unchanged');
      // The content is the snapshot's again: a drop being held did not persist.
      const state = stateOf(feed, history, previous, now, answer.body.length);
      delete state.hold;
      // An unchanged feed is rewritten now and then, so its store TTL never runs out while it is read.
      const stale = previous !== undefined && now - previous.savedAt > retentionMs / 2;
      if (stale) {
        await histories.set(feed.key, history, ttlMs);
        state.savedAt = now;
      }
      await saveState(feed.key, state, previous?.hold !== undefined || stale);
      return calendarRead(history, history.tag, history.changedAt);
    }
    const split = splitReusing(answer.decoded.text, memos.get(feed.key));
    memos.set(feed.key, split.memo, { size: Math.max(1, answer.body.length) });
    const calendar = split.calendar;
    if (!calendar.complete) {
      metrics.read('not_calendar');
      await recordError(feed, 'incomplete');
      return { kind: 'not-calendar', answer, reason: 'incomplete' };
    }
    if (!history && !(await hasRoom())) {
      if (now - capWarnedAt > recountIntervalMs) {
        capWarnedAt = now;
        logger.warn({ feed: redactUrl(feed.target), maxFeeds }, 'feed cap reached: answer passed through unversioned');
      }
      const fresh = applySnapshot(undefined, calendar, now).history;
      metrics.read('changed');
      return calendarRead(undefined, fresh.tag, now);
    }

    const result = applySnapshot(history, calendar, now, answer.fingerprint);
    if (result.rekeyed > 0) metrics.rekeyed(result.rekeyed);
    if (history && result.changed && isDrop(history, result)) {
      const since = previous?.hold?.since ?? now;
      if (now - since < hold.spanMs) {
        metrics.read('held');
        if (!previous?.hold) {
          logger.warn(
            { feed: redactUrl(feed.target), listing: feed.listing, before: Object.keys(history.entities).length,
              after: Object.keys(result.history.entities).length, holdMs: hold.spanMs },
            'feed drop held',
          );
        }
        const entities = Object.keys(result.history.entities).length;
        const state = { ...stateOf(feed, history, previous, now, answer.body.length), hold: { since, entities } };
        await saveState(feed.key, state, !previous?.hold);
        return calendarRead(history, result.history.tag, now, true);
      }
      logger.warn({ feed: redactUrl(feed.target), listing: feed.listing, heldMs: now - since }, 'feed drop confirmed');
    } else if (previous?.hold) {
      logger.info({ feed: redactUrl(feed.target), listing: feed.listing }, 'held feed drop discarded');
    }

    const next = pruneTombstones(result.history, now, retentionMs);
    const stale = previous !== undefined && now - previous.savedAt > retentionMs / 2;
    const state: FeedState = {
      ...stateOf(feed, next, previous, now, answer.body.length),
      ...(result.rekeyed > 0 ? { rekeyed: result.rekeyed } : {}),
    };
    delete state.hold;
    const write = result.changed || next !== result.history || stale || !history;
    if (write) {
      await histories.set(feed.key, next, ttlMs);
      state.savedAt = now;
      if (!previous) feedCount = (feedCount ?? 0) + 1;
    }
    historyCache.set(feed.key, next);
    await saveState(feed.key, state, write || previous?.hold !== undefined || !previous);
    if (result.changed) {
      metrics.read('changed');
      if (options.onChange) {
        // Push work must never hold up the answer, nor fail it.
        const change: FeedChange = { before: history, after: next };
        void Promise.resolve()
          .then(() => options.onChange?.(feed, change))
          .catch((err: unknown) => logger.error({ err, feed: redactUrl(feed.target) }, 'feed change handler failed'));
      }
      logger.info(
        { feed: redactUrl(feed.target), listing: feed.listing, version: next.version, added: result.added.length,
          modified: result.modified.length, removed: result.removed.length, rekeyed: result.rekeyed },
        'feed changed',
      );
    } else {
      metrics.read('unchanged');
    }
    return calendarRead(next, next.tag, next.changedAt);
  }

  /** Runs `task` after every earlier task of the same feed. */
  function serialized<T>(key: string, task: () => Promise<T>): Promise<T> {
    const before = queues.get(key) ?? Promise.resolve();
    const run = before.then(task, task);
    const tail = run.then(() => undefined, () => undefined);
    queues.set(key, tail);
    void tail.then(() => {
      if (queues.get(key) === tail) queues.delete(key);
    });
    return run;
  }

  async function settle(feed: FeedKey, fetched: FeedFetch): Promise<FeedRead> {
    if (fetched.kind === 'failed') {
      metrics.read('failed');
      await recordError(feed, fetched.error.code);
      return { kind: 'failed', error: fetched.error };
    }
    if (fetched.kind === 'too-large') {
      metrics.read('too_large');
      await recordError(feed, 'too-large');
      return { kind: 'too-large' };
    }
    if (fetched.kind === 'not-calendar') {
      metrics.read('not_calendar');
      await recordError(feed, fetched.reason === 'status' ? `status ${fetched.status}` : fetched.reason);
      return { kind: 'not-calendar', answer: fetched, reason: fetched.reason };
    }
    // Only what a maxAge answer sends: the parsed forms would triple the entry's real size.
    const { status, headers, body, fetchedAt, sequence } = fetched;
    const cached = answerCache.get(feed.key);
    // A maxAge answer is the newest one asked for, whichever finished last.
    if (!cached || cached.sequence < sequence) {
      answerCache.set(feed.key, { status, headers, body, fetchedAt, sequence });
    }
    try {
      return await serialized(feed.key, () => apply(feed, fetched));
    } catch (err) {
      // The store failed: the client still gets the upstream's answer, unversioned; nothing is lost
      // because nothing was written.
      metrics.read('store_error');
      logger.error({ err, feed: redactUrl(feed.target) }, 'feed snapshot not applied');
      const fresh = applySnapshot(undefined, fetched.calendar, clock.now()).history;
      return { kind: 'calendar', answer: fetched, tag: fresh.tag, changedAt: fetched.fetchedAt, history: undefined, held: false };
    }
  }

  return {
    async read(feed, headers) {
      const fetched = await fetcher.fetch(feed.target, headers);
      let settling = applying.get(fetched);
      if (!settling) {
        settling = settle(feed, fetched);
        applying.set(fetched, settling);
      }
      return settling;
    },
    state: loadState,
    history: loadHistory,
    lastAnswer: (key) => answerCache.get(key),
    async states() {
      const out: FeedState[] = [];
      for await (const [key, state] of statesNs.entries<FeedState>()) out.push(stateCache.get(key) ?? state);
      return out;
    },
  };
}
