// The feed engine: reads a feed from the upstream, has the answer analysed off the event loop, folds
// complete answers into the feed's versioned history and keeps that history and a small per-feed state
// in the store (SPEC "Feed paths", "Guarantees"). Reads of one feed are applied one at a time; concurrent
// GETs share one fetch. A change is journaled before the snapshot that holds it (write-ahead), then
// handed to the change processor (hooks, push); nothing here ever makes a client's answer a 500.
import { createHash } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import type { Clock } from '../clock.ts';
import { briefError, hasCode, IcalpushError } from '../errors.ts';
import type { Logger } from '../log.ts';
import { redactUrl } from '../redact.ts';
import type { Store, StoreNamespace } from '../store/store.ts';
import { createKeyedQueue } from '../util/keyed-queue.ts';
import { createSlice } from '../util/yield.ts';
import type { AnalyzeOutcome, FeedAnalyzer } from './analyzer.ts';
import { dropFacts } from '../push/decide/drop-facts.ts';
import { type DropJudgement, judgeDrop } from '../push/decide/drop.ts';
import type { ChangeLog, FeedChange, StoredNights } from './change-log.ts';
import type { FeedMetrics } from './feed-metrics.ts';
import type { CalendarFetch, FeedFetch, FeedFetcher, NotCalendarReason, UpstreamAnswer } from './fetch.ts';
import { fingerprintAsync } from './fingerprint.ts';
import { sameValidators, type StoredValidators, type Validators, validatorsOf } from './upstream-validators.ts';
import { createHistoryStore } from './history-store.ts';
import {
  applyAnalysisInSlices, calendarBuffer, currentTextsInSlices, type FeedHistory, historyBytesInSlices,
  pruneTombstones,
} from './history.ts';

/** A feed as the engine keys it: the upstream target, and the credentials that select its content. */
export type FeedKey = {
  /** Store key: the target, plus a hash of the Authorization header when there is one. */
  key: string;
  /** Path and query on the upstream. */
  target: string;
  listing: string;
};

/** Why a calendar answer is passed through without a version (no Sync-Token, ETag of its own). */
export type UnversionedReason = 'too-many-entities' | 'feed-cap' | 'variant-cap' | 'too-complex' | 'busy' | 'store';

/** The small per-feed record beside the history: what HEAD, status, maxAge and push need. */
export type FeedState = {
  target: string;
  listing: string;
  lineage?: string;
  version?: number;
  entities: number;
  tag: string;
  changedAt: number;
  lastReadAt: number;
  /** Size of the last calendar body read: the Content-Length a HEAD announces. */
  bytes: number;
  /** The last read that failed or was not a calendar, and why. */
  lastError?: { at: number; reason: string };
  /** The upstream's last answer was 404/410: HEAD must not claim a calendar (SPEC "HEAD"). */
  gone?: boolean;
  /** The upstream's last answer was not a calendar (any status, type or body): HEAD passes through. */
  notCalendar?: boolean;
  /** A sudden drop seen since `since` and not applied yet (SPEC "Guarantees"). */
  hold?: { since: number; entities: number };
  /** Entities re-keyed by content on the last read that re-keyed any. */
  rekeyed?: number;
  /** When the history was last written; it is rewritten well before its store TTL runs out. */
  savedAt: number;
  /** The listing's busy nights as of the content in `tag` (own feeds of listings only). */
  nights?: StoredNights;
  /** Set while the feed is served without a version, and why. */
  unversioned?: UnversionedReason;
  /** The fingerprint of the last read: an unversioned feed's re-read is then cheap too. */
  fingerprint?: string;
  /** A read the analysis could not finish: not tried again for the same bytes for a while. */
  degraded?: { fingerprint: string; at: number };
  /** When a client last got a Sync-Token: such a feed is never evicted to make room. */
  tokenAt?: number;
  /** The upstream's ETag / Last-Modified of the last 200 applied, and the content they stand for: what the
   * sidecar's own reads send back (readIfChanged). Absent while a drop is held or the feed is unversioned. */
  validators?: StoredValidators;
};

/** What a feed read came to, for the code that answers the request. */
export type FeedRead =
  | {
    kind: 'calendar';
    answer: UpstreamAnswer;
    /** The semantic ETag value of this answer's content (of the held answer, when held). */
    tag: string;
    changedAt: number;
    /** The newest good history: what enhanced GET answers from; absent for an unversioned answer. */
    history: FeedHistory | undefined;
    /** True when this answer is a drop being held: the history is the snapshot before it. */
    held: boolean;
    /** Set when the answer has no history of its own, and why. */
    unversioned?: UnversionedReason;
  }
  | { kind: 'not-calendar'; answer: UpstreamAnswer; reason: NotCalendarReason }
  | { kind: 'failed'; error: IcalpushError }
  | { kind: 'too-large' };

/** A conditional read's 304, applied: the snapshot's content is still the upstream's. */
export type NotModifiedRead = {
  kind: 'not-modified';
  /** The snapshot's content tag, confirmed. */
  tag: string;
  changedAt: number;
  history: FeedHistory;
};

/** When a feed was last read with an answer that showed its content (a calendar or a 304); in memory, bounded. */
export type RecentRead = { readAt: number };

/** A calendar answer kept for maxAge, with the content tag the snapshot had for it. */
export type KeptAnswer = UpstreamAnswer & { readonly tag: string };

/** What to compute of a listing's own feed besides its snapshot. */
export type NightsRequest = { today: string; days: number; zone?: string };

/** Options for createFeedEngine. */
export type FeedEngineOptions = {
  store: Store;
  fetcher: FeedFetcher;
  analyzer: FeedAnalyzer;
  clock: Clock;
  logger: Logger;
  metrics: FeedMetrics;
  /** Removes secrets from a target for logs (SPEC "Admin"). */
  redact?: (target: string) => string;
  /** How long tombstones are kept (SPEC: default 30 days). */
  retentionMs: number;
  /** Feeds with a snapshot; reads of others are answered but not versioned. */
  maxFeeds: number;
  /** Query variants of one path with a snapshot (SPEC "Which URLs are feeds of their own"). */
  maxVariantsPerPath?: number;
  /** Entities of a versioned feed (and tombstones kept); a bigger feed is served unversioned. */
  maxEntitiesPerFeed?: number;
  /** How long a sudden drop must persist before it is applied, and what share of nights (events) is one. */
  hold: { spanMs: number; fraction: number };
  /** For a listing's own feed: when the sidecar last saw something change it (a trigger's 2xx, an operator
   * notify): a drop within a minute of it is a real cancellation (SPEC "Push"). */
  lastChangeSeen?: (feed: FeedKey) => number | undefined;
  /** For a listing's own feed: compute its busy nights from this date on. */
  nightsFor?: (feed: FeedKey) => NightsRequest | undefined;
  /** True for feeds that must keep their snapshot whatever junk fills the store (own feeds). */
  isProtected?: (feed: FeedKey) => boolean;
  /** The write-ahead journal; without one, changes are still processed but not journaled. */
  changeLog?: ChangeLog;
  /** Keep each feed's last answer for lastAnswer() (feeds with maxAge); default true. */
  keepAnswers?: boolean;
};

/** Handles one change of a feed (iCal Hooks, push); resolves once what it caused is durable. */
export type ChangeListener = (change: FeedChange) => Promise<void>;

/** A read that dropped most of a feed, held (SPEC "Guarantees"): told once per drop, when the hold starts. */
export type HeldDrop = {
  feed: { key: string; target: string; listing: string };
  at: number;
  judgement: DropJudgement & { verdict: 'hold' };
  spanMs: number;
  nights?: { before?: StoredNights; after: StoredNights };
};

/** Drops held as this process last saw them: within their span, or past it (not read again since the span
 * ran out, so the drop is neither applied nor discarded: SPEC "Guarantees"). */
export type HeldDropCounts = { withinSpan: number; pastSpan: number };

/** The engine the HTTP layer, push and the status endpoint use. */
export type FeedEngine = {
  /** Reads the feed from the upstream (shared with concurrent reads) and applies the answer. */
  read(feed: FeedKey, headers: Record<string, string | string[]>): Promise<FeedRead>;
  /**
   * The sidecar's own read (watch, re-reads, operator notify): as `read`, conditional on the upstream's own
   * validators of the snapshot when it sent any, so an unchanged feed costs the platform a 304. Never for a
   * client's GET: its body bytes must be the upstream's.
   */
  readIfChanged(feed: FeedKey, headers: Record<string, string | string[]>): Promise<FeedRead | NotModifiedRead>;
  /** The last read of `key` that showed its content (by anyone: a client's GET, the watch), if remembered. */
  lastRead(key: string): RecentRead | undefined;
  /** Stops the background work (reads owed since a store outage); reads still work. */
  close(): void;
  /** The stored state of a feed without touching the upstream (HEAD, maxAge). */
  state(key: string): Promise<FeedState | undefined>;
  /** The last good history of a feed without touching the upstream. */
  history(key: string): Promise<FeedHistory | undefined>;
  /** The last calendar answer read for a feed, if still in memory (maxAge answers). */
  lastAnswer(key: string): KeptAnswer | undefined;
  /** Every known feed's state, for /_icalpush/status. */
  states(): Promise<FeedState[]>;
  /** A client got a Sync-Token for this feed: it has clients and is kept. */
  noteClient(key: string): void;
  /** Calls `listener` with every change from now on (SPEC "Push": a feed `changed` event). A change
   * leaves the journal once every listener resolved; one that rejects is processed again on start. */
  onChange(listener: ChangeListener): void;
  /** Calls `listener` when a drop starts being held (push records it: a change that did not notify). */
  onHold(listener: (held: HeldDrop) => void): void;
  /** The drops this process last saw held, split by whether they are past `hold.spanMs` (the metric). */
  heldDrops(): HeldDropCounts;
  /** Processes the journaled changes left by a previous run (a crash) again. */
  recover(): Promise<number>;
  /** Resolves when every change handed to the processor so far is processed (tests, shutdown). */
  settled(): Promise<void>;
  /** Runs `task` once every change of feed `key` handed over so far is processed, before any later one:
   * what it reads of their effects (the decision log) is current, and nothing overwrites its own. */
  afterChanges<T>(key: string, task: () => Promise<T>): Promise<T>;
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

/** The ETag value of an answer the analysis could not read: its DTSTAMP-blind fingerprint. */
export function fingerprintTag(fingerprint: string): string {
  return `fp-${fingerprint.slice(0, 24)}`;
}

const historyCacheBytes = 128 * 1024 * 1024;
const answerCacheBytes = 32 * 1024 * 1024;
// lastReadAt alone is persisted at most this often; everything else is written when it changes.
const readStampIntervalMs = 10_000;
// The sidecar's own reads are whole at least this often, whatever the upstream's validators say (readIfChanged).
const wholeReadEveryMs = 60 * 60 * 1000;
// Counting the store's feeds is a scan: when the cap is reached, recount at most this often.
const recountIntervalMs = 60_000;
// Feeds read during a store outage that are read again once it answers, at most; and how often it is asked.
const maxUnsynced = 1_000;
const resyncRetryMs = 2_000;
// Applies of one read retried after losing the history's compare-and-set to another replica.
const maxApplyAttempts = 3;
// Bytes the analysis could not finish are not tried again this soon.
const degradedRetryMs = 60 * 60 * 1000;
// A feed read within this is still in use: it is not evicted to make room.
const recentlyReadMs = 60 * 60 * 1000;

/** Creates the feed engine. */
export function createFeedEngine(options: FeedEngineOptions): FeedEngine {
  const { store, fetcher, analyzer, clock, logger, metrics, retentionMs, maxFeeds, hold } = options;
  const redact = options.redact ?? redactUrl;
  const maxVariantsPerPath = options.maxVariantsPerPath ?? 16;
  const maxEntities = options.maxEntitiesPerFeed ?? 25_000;
  const histories = createHistoryStore(store, logger);
  const statesNs: StoreNamespace = store.namespace('feed_state');
  // Stored entries outlive retention so tokens stay usable that long; a feed nobody reads for twice
  // that is forgotten (a later read starts a new lineage, and old tokens get 409).
  const ttlMs = retentionMs * 2;

  const historyCache = new LRUCache<string, FeedHistory>({
    maxSize: historyCacheBytes,
    // Every set passes its size (historyBytesInSlices); this only covers one that would not.
    sizeCalculation: () => 1,
  });
  const stateCache = new LRUCache<string, FeedState>({ max: Math.min(maxFeeds, 100_000) });
  // The sequence of the newest fetch applied per feed. Fetches of one feed that do not share (another
  // Host or Accept-Language) may answer out of order; the older answer must not undo the newer one.
  const appliedSequence = new LRUCache<string, number>({ max: Math.min(maxFeeds, 100_000) });
  const recentReads = new LRUCache<string, RecentRead>({ max: Math.min(maxFeeds, 100_000) });
  // When each held drop began, by feed, as the states this process saved say (for heldDrops()).
  const holds = new LRUCache<string, number>({ max: Math.min(maxFeeds, 100_000) });
  // When each feed's last whole answer (a 200) was applied: conditional reads go on only while it is recent.
  const wholeReads = new LRUCache<string, number>({ max: Math.min(maxFeeds, 100_000) });
  const startedAt = clock.now();
  const answerCache = new LRUCache<string, KeptAnswer>({
    maxSize: answerCacheBytes,
    sizeCalculation: (a) => Math.max(1, a.body.length),
  });
  // Bounded by concurrency: an entry lives while a read of that fetch is being applied.
  const applying = new WeakMap<FeedFetch, Promise<FeedRead>>();
  const serialized = createKeyedQueue();
  // Changes of one feed are processed in the order they happened.
  const inOrder = createKeyedQueue();
  const persistedReadAt = new Map<string, number>();
  const processing = new Set<Promise<void>>();
  const listeners: ChangeListener[] = [];
  const holdListeners: ((held: HeldDrop) => void)[] = [];
  let census: { feeds: number; paths: Map<string, number>; at: number } | undefined;
  let capWarnedAt = Number.NEGATIVE_INFINITY;
  let storeDownWarnedAt = Number.NEGATIVE_INFINITY;
  let nothingToEvictAt = Number.NEGATIVE_INFINITY;

  async function loadHistory(key: string): Promise<FeedHistory | undefined> {
    let cached = historyCache.get(key);
    // Shared by several replicas: another may have written since; its head is what counts. A store that lost
    // the head (a Redis restarted empty) gets this one back, so the next change is still found against it.
    if (cached && store.shared) {
      const seen = await histories.compare(key, cached);
      const restored = seen === 'absent' ? await histories.restore(key, cached, ttlMs) : undefined;
      if (restored !== undefined) {
        logger.info({ version: restored.version }, 'feed history written back to the store, as a new lineage');
        historyCache.set(key, restored, { size: Math.max(1, await historyBytesInSlices(restored)) });
        cached = restored;
      } else if (seen !== 'current') {
        historyCache.delete(key);
        cached = undefined;
      }
    }
    if (cached) return cached;
    const stored = await histories.load(key);
    if (stored) historyCache.set(key, stored, { size: Math.max(1, await historyBytesInSlices(stored)) });
    return stored;
  }

  async function loadState(key: string): Promise<FeedState | undefined> {
    const cached = store.shared ? undefined : stateCache.get(key);
    if (cached) return cached;
    const stored = await statesNs.get<FeedState>(key);
    if (stored) stateCache.set(key, stored);
    return stored;
  }

  async function saveState(key: string, state: FeedState, force: boolean): Promise<void> {
    stateCache.set(key, state);
    if (state.hold) holds.set(key, state.hold.since);
    else holds.delete(key);
    const last = persistedReadAt.get(key) ?? Number.NEGATIVE_INFINITY;
    if (!force && state.lastReadAt - last < readStampIntervalMs) return;
    await statesNs.set(key, state, ttlMs);
    persistedReadAt.set(key, state.lastReadAt);
    // Bounded like the state cache: the throttle is an optimisation, losing an entry costs one write.
    if (persistedReadAt.size > stateCache.max) persistedReadAt.clear();
  }

  /** The feeds with a snapshot and their paths' variant counts, from a scan at most once a minute. */
  async function takeCensus(): Promise<NonNullable<typeof census>> {
    const now = clock.now();
    if (census && now - census.at < recountIntervalMs) return census;
    const paths = new Map<string, number>();
    let feeds = 0;
    for await (const [, state] of statesNs.entries<FeedState>()) {
      if (state?.version === undefined) continue;
      feeds += 1;
      const path = pathOf(state.target);
      paths.set(path, (paths.get(path) ?? 0) + 1);
    }
    census = { feeds, paths, at: now };
    return census;
  }

  /** Why `feed` may not get a snapshot of its own, if it may not. Makes room by evicting when it can. */
  async function roomFor(feed: FeedKey): Promise<UnversionedReason | undefined> {
    if (options.isProtected?.(feed)) return undefined;
    const counted = await takeCensus();
    if ((counted.paths.get(pathOf(feed.target)) ?? 0) >= maxVariantsPerPath) return 'variant-cap';
    if (counted.feeds < maxFeeds) return undefined;
    return (await evictOne()) ? undefined : 'feed-cap';
  }

  /** Forgets the least recently read feed that nobody relies on; false when every feed has clients. A scan
   * that found none is not repeated for a while: a flood of new URLs must not cost a scan each. */
  async function evictOne(): Promise<boolean> {
    const now = clock.now();
    if (now - nothingToEvictAt < recountIntervalMs) return false;
    let victim: [string, FeedState] | undefined;
    for await (const [key, stored] of statesNs.entries<FeedState>()) {
      const state = stateCache.get(key) ?? stored;
      const inUse = state?.tokenAt !== undefined || (state !== undefined && now - state.lastReadAt < recentlyReadMs);
      if (!state || state.version === undefined || inUse) continue;
      if (options.isProtected?.({ key, target: state.target, listing: state.listing })) continue;
      if (!victim || state.lastReadAt < victim[1].lastReadAt) victim = [key, state];
    }
    if (!victim) {
      nothingToEvictAt = now;
      return false;
    }
    const [key, state] = victim;
    // Behind any apply of that feed still under way, so its save cannot name pages removed here.
    await serialized(key, async () => {
      await statesNs.delete(key);
      await histories.remove(key);
      stateCache.delete(key);
      historyCache.delete(key);
      holds.delete(key);
    });
    if (census) {
      census.feeds -= 1;
      const path = pathOf(state.target);
      census.paths.set(path, Math.max(0, (census.paths.get(path) ?? 1) - 1));
    }
    logger.info({ feed: redact(state.target) }, 'feed snapshot evicted to make room');
    return true;
  }

  function counted(feed: FeedKey): void {
    if (!census) return;
    census.feeds += 1;
    const path = pathOf(feed.target);
    census.paths.set(path, (census.paths.get(path) ?? 0) + 1);
  }

  async function recordError(feed: FeedKey, reason: string, gone = false, notCalendar = false): Promise<void> {
    const now = clock.now();
    try {
      // In the feed's queue: a read-modify-write beside an apply would put its older state back.
      await serialized(feed.key, async () => {
        const previous = await loadState(feed.key);
        if (!previous) return;
        await saveState(feed.key, { ...previous, lastError: { at: now, reason }, ...(gone ? { gone } : {}),
          ...(notCalendar ? { notCalendar } : {}) }, true);
      });
    } catch (err) {
      logger.error({ err, feed: redact(feed.target) }, 'feed state not saved');
    }
  }

  /** Whether a read that changed a snapshot dropped most of it (SPEC "Guarantees", "Push": measured in
   * nights for a listing's own feed, in events otherwise). */
  function judge(feed: FeedKey, events: { before: number; after: number },
    nights: { before?: StoredNights | undefined; after?: StoredNights | undefined },
    holding: FeedState['hold']): DropJudgement {
    if (hold.spanMs === 0) return { verdict: 'apply', rule: 'no-drop' };
    // Only a drop that follows the trigger or notify is taken for its cancellation: one already held
    // before it (a broken export) is not made true by a booking made meanwhile.
    const seen = options.lastChangeSeen?.(feed);
    const follows = seen !== undefined && (holding === undefined || holding.since >= seen);
    return judgeDrop(dropFacts(events, nights, follows ? clock.now() - seen : undefined), hold.fraction);
  }

  // The nights an analysis made for `request`: the same request, so "today" is the one they were counted from.
  function nightsOf(request: NightsRequest | undefined, outcome: AnalyzeOutcome): StoredNights | undefined {
    if (!request || outcome.kind !== 'done' || !outcome.packed.nights) return undefined;
    return { today: request.today, days: request.days, ...(request.zone ? { zone: request.zone } : {}),
      at: clock.now(), ...outcome.packed.nights };
  }

  /** The nights of a history read before nights were asked for (a listing added to the map). */
  async function nightsOfHistory(feed: FeedKey, history: FeedHistory): Promise<StoredNights | undefined> {
    const request = options.nightsFor?.(feed);
    if (!request) return undefined;
    const body = await calendarBuffer(history, await currentTextsInSlices(history));
    const outcome = await analyzer.analyze(`${feed.key}\u0000before`, body, { maxEntities: 0, nights: request });
    return nightsOf(request, outcome);
  }

  /** Journals `change`, then (after the caller's snapshot write) processes it in the background. */
  async function journal(change: Omit<FeedChange, 'id'>): Promise<FeedChange> {
    return options.changeLog ? options.changeLog.record(change) : { id: '', ...change };
  }

  function process(change: FeedChange): void {
    // Push work must never hold up the answer, nor fail it.
    const run = inOrder(change.feed.key, async () => {
      const results = await Promise.allSettled(listeners.map((listener) => listener(change)));
      const failed = results.find((r) => r.status === 'rejected');
      if (failed) throw (failed as PromiseRejectedResult).reason;
      await options.changeLog?.done(change.id);
    })
      .catch((err: unknown) => logger.error({ err, feed: redact(change.feed.target) }, 'feed change processing failed'))
      .finally(() => processing.delete(run));
    processing.add(run);
  }

  const calendarRead = (answer: UpstreamAnswer, tag: string, changedAt: number, history: FeedHistory | undefined,
    extra: { held?: boolean; unversioned?: UnversionedReason } = {}): FeedRead =>
    ({ kind: 'calendar', answer, tag, changedAt, history, held: extra.held ?? false,
      ...(extra.unversioned ? { unversioned: extra.unversioned } : {}) });

  /** Serves an answer the analysis could not read: complete by the byte search, ETag of its fingerprint. */
  async function degraded(feed: FeedKey, answer: CalendarFetch, fingerprint: string, reason: UnversionedReason,
    history: FeedHistory | undefined): Promise<FeedRead> {
    if (!answer.endsCalendar) return { kind: 'not-calendar', answer, reason: 'incomplete' };
    metrics.read(reason === 'too-complex' ? 'too_complex' : 'busy');
    const previous = await loadState(feed.key);
    if (previous && reason === 'too-complex' && previous.degraded?.fingerprint !== fingerprint) {
      logger.warn({ feed: redact(feed.target), listing: feed.listing, bytes: answer.body.length },
        'feed too costly to read: served unversioned');
      await saveState(feed.key, { ...previous, degraded: { fingerprint, at: clock.now() } }, true);
    }
    return calendarRead(answer, fingerprintTag(fingerprint), answer.fetchedAt, history, { unversioned: reason });
  }

  async function apply(feed: FeedKey, answer: CalendarFetch, fingerprint: string, attempt = 0): Promise<FeedRead> {
    const now = clock.now();
    if (attempt > maxApplyAttempts) {
      // Replicas writing this feed in turn faster than it can be applied: served, unversioned, this once.
      throw new IcalpushError('STORE_UNAVAILABLE', `feed history changed under ${maxApplyAttempts} applies in a row`);
    }
    if (answer.sequence < (appliedSequence.get(feed.key) ?? 0)) {
      // Asked for before an answer already applied: older content. Its caller still gets these bytes with
      // their own ETag, and enhanced GET answers from the newest history, so a valid token is honoured.
      metrics.read('superseded');
      const newest = await loadHistory(feed.key);
      const outcome = await analyzer.analyze(feed.key, answer.body, { maxEntities: 0 });
      const tag = outcome.kind === 'done' ? outcome.packed.tag : fingerprintTag(fingerprint);
      return calendarRead(answer, tag, answer.fetchedAt, newest);
    }
    appliedSequence.set(feed.key, answer.sequence);
    const history = await loadHistory(feed.key);
    const previous = await loadState(feed.key);
    const stale = previous !== undefined && now - previous.savedAt > retentionMs / 2;

    // Same bytes apart from DTSTAMP lines as the read that made this history: nothing to do.
    if (history && fingerprint === history.fingerprint) {
      metrics.read('unchanged');
      // The content is the snapshot's again: a drop being held did not persist.
      const state = stateOf(feed, history, previous, now, answer.body.length);
      delete state.hold;
      withValidators(feed.key, state, answer, history.tag);
      const revalidated = !sameValidators(state.validators, previous?.validators)
        || state.validators?.tag !== previous?.validators?.tag;
      // A state behind its history (a crash between the two writes) holds the nights of the version before:
      // the next change would be classified against them and miss what this version booked or freed. Without
      // them, the next change counts its nights before from the history itself.
      const lagging = previous?.version !== history.version;
      if (lagging) delete state.nights;
      if (stale) {
        // An unchanged feed is rewritten now and then, so its store TTL never runs out while it is read.
        if (await histories.save(feed.key, history, history, ttlMs, { all: true, now }) === 'conflict') {
          // Another replica wrote this feed meanwhile: its history answers from now on.
          historyCache.delete(feed.key);
          return apply(feed, answer, fingerprint, attempt + 1);
        }
        state.savedAt = now;
      }
      await saveState(feed.key, state,
        previous?.hold !== undefined || previous?.gone === true || stale || lagging || revalidated);
      return calendarRead(answer, history.tag, history.changedAt, history);
    }
    if (!history && previous?.unversioned && previous.fingerprint === fingerprint && previous.unversioned !== 'busy') {
      metrics.read('unchanged');
      await saveState(feed.key, { ...previous, lastReadAt: now }, false);
      return calendarRead(answer, previous.tag, previous.changedAt, undefined, { unversioned: previous.unversioned });
    }
    if (previous?.degraded?.fingerprint === fingerprint && now - previous.degraded.at < degradedRetryMs) {
      return degraded(feed, answer, fingerprint, 'too-complex', history);
    }

    const refusal = history ? undefined : await roomFor(feed);
    const nightsRequest = options.nightsFor?.(feed);
    const outcome = await analyzer.analyze(feed.key, answer.body, {
      maxEntities: refusal ? 0 : maxEntities,
      ...(nightsRequest ? { nights: nightsRequest } : {}),
    });
    if (outcome.kind === 'too-complex' || outcome.kind === 'busy') {
      return degraded(feed, answer, fingerprint, outcome.kind, history);
    }
    if (outcome.kind === 'failed') {
      logger.error({ feed: redact(feed.target), reason: outcome.message }, 'feed analysis failed');
      return degraded(feed, answer, fingerprint, 'too-complex', history);
    }
    const { packed } = outcome;
    if (!packed.complete) {
      metrics.read('not_calendar');
      if (previous) await saveState(feed.key, { ...previous, lastError: { at: now, reason: 'incomplete' } }, true);
      return { kind: 'not-calendar', answer, reason: 'incomplete' };
    }
    const nights = nightsOf(nightsRequest, outcome);
    const tooMany = packed.count > maxEntities;
    const unversioned: UnversionedReason | undefined = refusal ?? (tooMany ? 'too-many-entities' : undefined);
    if (unversioned) {
      return applyUnversioned(feed, answer, { fingerprint, tag: packed.tag, count: packed.count }, unversioned,
        previous, nights, history);
    }

    const applyOptions = { fingerprint, maxTombstones: maxEntities };
    const result = await applyAnalysisInSlices(history, packed, now, applyOptions, createSlice());
    if (result.rekeyed > 0) metrics.rekeyed(result.rekeyed);
    const after = result.history.entities.size;
    // The nights of the content before this read, counted as this read counts (the same "today", the same
    // window): nights are counted when the content changes, so after quiet days the stored ones start at
    // an older date and end that much earlier, and a booking near the far end would fall outside both.
    // A state behind its history (a crash between their writes) holds the nights of the version before.
    const stored = previous?.version === history?.version ? previous?.nights : undefined;
    const currentNights = history && result.changed && nightsRequest && !countedAs(stored, nightsRequest)
      ? await nightsOfHistory(feed, history) ?? stored : stored;
    const judgement = history && result.changed
      ? judge(feed, { before: history.entities.size, after }, { before: currentNights, after: nights },
          previous?.hold)
      : undefined;
    if (history && judgement && judgement.verdict === 'hold') {
      const since = previous?.hold?.since ?? now;
      if (now - since < hold.spanMs) {
        metrics.read('held');
        if (!previous?.hold) {
          const { measure, lost, of } = judgement;
          logger.warn(
            { feed: redact(feed.target), listing: feed.listing, before: history.entities.size,
              after: result.history.entities.size, measure, lost, of, holdMs: hold.spanMs },
            'feed drop held',
          );
          const held: HeldDrop = { feed: { key: feed.key, target: feed.target, listing: feed.listing }, at: now,
            judgement, spanMs: hold.spanMs,
            ...(nights ? { nights: { ...(currentNights ? { before: currentNights } : {}), after: nights } } : {}) };
          for (const listener of holdListeners) {
            try {
              listener(held);
            } catch (err) {
              logger.error({ err, feed: redact(feed.target) }, 'feed drop listener failed');
            }
          }
        }
        const held: FeedState = { ...stateOf(feed, history, previous, now, answer.body.length),
          hold: { since, entities: after } };
        // A 304 would confirm the held body, which is not kept: while held, reads are whole.
        delete held.validators;
        await saveState(feed.key, held, !previous?.hold || previous.validators !== undefined);
        return calendarRead(answer, result.history.tag, now, history, { held: true });
      }
      logger.warn({ feed: redact(feed.target), listing: feed.listing, heldMs: now - since }, 'feed drop confirmed');
    } else if (judgement?.rule === 'cancellation-after-trigger') {
      const { measure, lost, of } = judgement;
      logger.info({ feed: redact(feed.target), listing: feed.listing, measure, lost, of },
        'feed drop applied at once: it follows a trigger or an operator notify');
    } else if (previous?.hold) {
      logger.info({ feed: redact(feed.target), listing: feed.listing }, 'held feed drop discarded');
    }

    const next = pruneTombstones(result.history, now, retentionMs);
    const state: FeedState = {
      ...stateOf(feed, next, previous, now, answer.body.length),
      ...(result.rekeyed > 0 ? { rekeyed: result.rekeyed } : {}),
      ...(nights ? { nights } : {}),
    };
    delete state.hold;
    delete state.unversioned;
    delete state.degraded;
    withValidators(feed.key, state, answer, next.tag);
    const write = result.changed || next !== result.history || stale || !history;
    // Not written: the same content, remade (a new fingerprint). It stands for the head its history was read from.
    if (!write && history) histories.carry(history, next);
    let change: FeedChange | undefined;
    if (result.changed) {
      // Write-ahead: the change is durable before the snapshot that contains it.
      const before = currentNights ?? (history ? await nightsOfHistory(feed, history) : undefined);
      change = await journal({
        feed: { key: feed.key, target: feed.target, listing: feed.listing },
        version: next.version,
        tag: next.tag,
        at: now,
        ...(nights ? { nights: { ...(before && history ? { before: lastSeen(before, previous) } : {}), after: nights } }
          : {}),
      });
    }
    let conflict = false;
    try {
      if (write) {
        conflict = await histories.save(feed.key, next, history, ttlMs, { all: stale, now }) === 'conflict';
        if (!conflict) {
          state.savedAt = now;
          if (!history) counted(feed);
        }
      }
      if (!conflict) {
        historyCache.set(feed.key, next, { size: Math.max(1, await historyBytesInSlices(next)) });
        await saveState(feed.key, state, true);
      }
    } finally {
      // Journaled is as good as done: a failing store must not keep the change from its listeners.
      if (change && !conflict) process(change);
    }
    if (conflict) {
      // Another replica applied a read of this feed first (SPEC "Several replicas": the loser re-reads,
      // never overwrites). This change was never made: its journal entry goes, and the read is applied
      // again over the history that won, where it is the same content or a change of its own.
      metrics.read('replica_conflict');
      historyCache.delete(feed.key);
      if (change) await options.changeLog?.done(change.id);
      return apply(feed, answer, fingerprint, attempt + 1);
    }
    if (change) {
      metrics.read('changed');
      logger.info(
        { feed: redact(feed.target), listing: feed.listing, version: next.version, added: result.added.length,
          modified: result.modified.length, removed: result.removed.length, rekeyed: result.rekeyed },
        'feed changed',
      );
    } else {
      metrics.read('unchanged');
    }
    return calendarRead(answer, next.tag, next.changedAt, next);
  }

  /** A calendar served without a history of its own: its tag and nights are still kept, and a change of
   * them still journaled and processed (push must see a booking in any feed it watches). */
  async function applyUnversioned(feed: FeedKey, answer: CalendarFetch,
    { fingerprint, tag, count }: { fingerprint: string; tag: string; count: number }, reason: UnversionedReason,
    previous: FeedState | undefined, nights: StoredNights | undefined, history: FeedHistory | undefined,
  ): Promise<FeedRead> {
    const now = clock.now();
    metrics.read('unversioned');
    if (now - capWarnedAt > recountIntervalMs) {
      capWarnedAt = now;
      logger.warn({ feed: redact(feed.target), reason, entities: count, maxEntities, maxFeeds, maxVariantsPerPath },
        'feed served unversioned');
    }
    // Past a cap, nothing is kept: junk URLs must not be a way to fill the store.
    if (reason === 'feed-cap' || reason === 'variant-cap') return calendarRead(answer, tag, now, undefined, { unversioned: reason });
    const changed = previous !== undefined && previous.tag !== tag;
    const state: FeedState = {
      ...previous,
      target: feed.target,
      listing: feed.listing,
      entities: count,
      tag,
      changedAt: changed || !previous ? now : previous.changedAt,
      lastReadAt: now,
      bytes: answer.body.length,
      savedAt: previous?.savedAt ?? now,
      unversioned: reason,
      fingerprint,
      ...(nights ? { nights } : {}),
    };
    delete state.lineage;
    delete state.version;
    delete state.gone;
    delete state.notCalendar;
    delete state.degraded;
    delete state.validators;
    if (changed) {
      const change = await journal({
        feed: { key: feed.key, target: feed.target, listing: feed.listing },
        tag,
        at: now,
        ...(nights
          ? { nights: { ...(previous.nights ? { before: lastSeen(previous.nights, previous) } : {}), after: nights } }
          : {}),
      });
      await saveState(feed.key, state, true);
      process(change);
    } else {
      await saveState(feed.key, state, !previous || previous.unversioned !== reason);
    }
    const same = history?.tag === tag ? history : undefined;
    return calendarRead(answer, tag, state.changedAt, same, { unversioned: reason });
  }

  function stateOf(feed: FeedKey, history: FeedHistory, previous: FeedState | undefined, now: number,
    bytes: number): FeedState {
    const state: FeedState = {
      ...previous,
      target: feed.target,
      listing: feed.listing,
      lineage: history.lineage,
      version: history.version,
      entities: history.entities.size,
      tag: history.tag,
      changedAt: history.changedAt,
      lastReadAt: now,
      bytes,
      savedAt: previous?.savedAt ?? now,
      ...(history.fingerprint === undefined ? {} : { fingerprint: history.fingerprint }),
    };
    delete state.gone;
    delete state.notCalendar;
    return state;
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
      const gone = fetched.reason === 'status' && (fetched.status === 404 || fetched.status === 410);
      // A 304 nobody asked for says nothing about the feed: HEAD keeps answering from the snapshot.
      const unasked304 = fetched.reason === 'status' && fetched.status === 304;
      await recordError(feed, fetched.reason === 'status' ? `status ${fetched.status}` : fetched.reason, gone,
        !unasked304);
      return { kind: 'not-calendar', answer: fetched, reason: fetched.reason };
    }
    if (fetched.kind === 'not-modified') {
      // Only readIfChanged asks, and it settles its own 304s; one joined here is a body-less answer.
      metrics.read('not_calendar');
      return { kind: 'failed', error: new IcalpushError('UPSTREAM_PROTOCOL', 'a 304 where a body was needed') };
    }
    const fingerprint = await fingerprintAsync(fetched.body);
    try {
      const read = await serialized(feed.key, () => apply(feed, fetched, fingerprint));
      if (read.kind === 'calendar') recentReads.set(feed.key, { readAt: fetched.fetchedAt });
      // Only what a maxAge answer sends, only when one may be sent (a body kept is its size in memory),
      // and only an answer the snapshot stands for: its bytes go out with the snapshot's ETag.
      if (options.keepAnswers !== false && read.kind === 'calendar' && read.history && !read.held && !read.unversioned
        && read.tag === read.history.tag) {
        const { status, headers, body, fetchedAt, sequence } = fetched;
        const cached = answerCache.get(feed.key);
        // A maxAge answer is the newest one asked for, whichever finished last.
        if (!cached || cached.sequence < sequence) {
          answerCache.set(feed.key, { status, headers, body, fetchedAt, sequence, tag: read.tag });
        }
      }
      return read;
    } catch (err) {
      // The store failed (or a bug): the client still gets the upstream's answer, unversioned; nothing is
      // lost because a change is journaled before its snapshot, and never a 500 (SPEC "Guarantees").
      metrics.read('store_error');
      if (!hasCode(err, 'STORE_UNAVAILABLE')) logger.error({ err, feed: redact(feed.target) }, 'feed snapshot not applied');
      else if (clock.now() - storeDownWarnedAt > recountIntervalMs) {
        // An outage fails every read alike: said once a minute, without a stack.
        storeDownWarnedAt = clock.now();
        logger.warn({ err: briefError(err), feed: redact(feed.target) },
          'feed snapshot not applied: store unreachable, answers unversioned');
      }
      // A history still in memory keeps answering tokens, with a store of this process alone. With several
      // replicas it may be behind the others' (SPEC "Several replicas": GETs pass through, unversioned).
      const known = store.shared ? undefined : historyCache.get(feed.key);
      return degraded(feed, fetched, fingerprint, 'store', known).catch(() => (
        calendarRead(fetched, fingerprintTag(fingerprint), fetched.fetchedAt, known, { unversioned: 'store' })));
    }
  }

  // Feeds read while the store failed, whose content had moved on from the history kept in memory: the
  // change is neither journaled nor in the store. Once the store answers, the history is written back if the
  // store lost it (a Redis restarted empty) and the feed read again, so the change is found and pushed
  // (SPEC "Several replicas": nothing acknowledged is lost). Bounded; headers kept in memory only.
  const unsynced = new Map<string, { feed: FeedKey; headers: Record<string, string | string[]> }>();
  let resyncTimer: ReturnType<Clock['setTimeout']> | undefined;
  let stopped = false;

  function noteUnsynced(feed: FeedKey, headers: Record<string, string | string[]>): void {
    if (stopped || (!unsynced.has(feed.key) && unsynced.size >= maxUnsynced)) return;
    if (unsynced.size === 0) logger.warn({ feed: redact(feed.target) }, 'feed read while the store is unreachable: read again once it answers');
    unsynced.set(feed.key, { feed, headers });
    resyncTimer ??= clock.setTimeout(() => {
      resyncTimer = undefined;
      void resync();
    }, resyncRetryMs);
  }

  async function resync(): Promise<void> {
    try {
      await store.ping();
    } catch {
      if (!stopped) resyncTimer = clock.setTimeout(() => {
        resyncTimer = undefined;
        void resync();
      }, resyncRetryMs);
      return;
    }
    const waiting = [...unsynced.values()];
    unsynced.clear();
    for (const { feed, headers } of waiting) {
      if (stopped) return;
      try {
        // Written back (if the store lost it) by the read's own history check, then read: a change is found.
        await serialized(feed.key, () => loadHistory(feed.key));
        await engine.read(feed, headers);
      } catch (err) {
        logger.warn({ err, feed: redact(feed.target) }, 'feed read again after the store came back failed');
      }
    }
  }

  /** Sets (or clears) `state.validators` to those of `answer`, standing for the content `tag`; a whole read of
   * `key` was applied now. */
  function withValidators(key: string, state: FeedState, answer: UpstreamAnswer, tag: string): void {
    wholeReads.set(key, clock.now());
    const validators = validatorsOf(answer.headers, answer.fetchedAt);
    if (validators) state.validators = { ...validators, tag };
    else delete state.validators;
  }

  /** The validators a conditional read of `key` may send: those of the snapshot's own content, while no drop
   * is held and the last answer was a calendar. */
  async function validatorsFor(key: string): Promise<Validators | undefined> {
    const state = await loadState(key).catch(() => undefined);
    const stored = state?.validators;
    if (!state || !stored || stored.tag !== state.tag || state.version === undefined || state.hold
      || state.unversioned || state.notCalendar || state.gone) return undefined;
    const { tag: _tag, ...validators } = stored;
    return validators;
  }

  /**
   * Applies a 304: the body the validators came with is current. A read of unchanged content, as far as the
   * snapshot goes (SPEC "Push": no version, no notification; its nights stand). Undefined when the 304 cannot
   * be matched to the snapshot (it changed meanwhile, or another replica wrote it): the caller reads in full.
   */
  async function applyNotModified(feed: FeedKey,
    answer: FeedFetch & { kind: 'not-modified' }): Promise<NotModifiedRead | undefined> {
    const now = clock.now();
    if (answer.sequence < (appliedSequence.get(feed.key) ?? 0)) return undefined;
    const history = await loadHistory(feed.key);
    const previous = await loadState(feed.key);
    const stored = previous?.validators;
    if (!history || !previous || !stored || !sameValidators(stored, answer.validators) || stored.tag !== history.tag
      || previous.hold || previous.version !== history.version) {
      if (previous?.validators) {
        const { validators: _dropped, ...rest } = previous;
        await saveState(feed.key, rest, true);
      }
      return undefined;
    }
    appliedSequence.set(feed.key, answer.sequence);
    metrics.read('not_modified');
    const state = stateOf(feed, history, previous, now, previous.bytes);
    if (now - previous.savedAt > retentionMs / 2) {
      // An unchanged feed is rewritten now and then, so its store TTL never runs out while it is read.
      if (await histories.save(feed.key, history, history, ttlMs, { all: true, now }) === 'conflict') {
        historyCache.delete(feed.key);
        return undefined;
      }
      state.savedAt = now;
      await saveState(feed.key, state, true);
    } else {
      await saveState(feed.key, state, false);
    }
    recentReads.set(feed.key, { readAt: answer.fetchedAt });
    return { kind: 'not-modified', tag: history.tag, changedAt: history.changedAt, history };
  }

  /** Settles a fetch once for every caller that joined it. */
  async function settleShared(feed: FeedKey, fetched: FeedFetch,
    headers: Record<string, string | string[]>): Promise<FeedRead> {
    let settling = applying.get(fetched);
    if (!settling) {
      settling = settle(feed, fetched);
      applying.set(fetched, settling);
    }
    const read = await settling;
    if (read.kind === 'calendar' && read.unversioned === 'store' && historyCache.has(feed.key)) {
      noteUnsynced(feed, headers);
    }
    return read;
  }

  const engine: FeedEngine = {
    async readIfChanged(feed, headers) {
      // An export whose validators are broken (an ETag that never changes, a Last-Modified that lags) would
      // answer 304 forever and hide every booking: at least one read in `wholeReadEveryMs` is whole (the
      // validators kept in the store are used after a start, until then).
      const lastWhole = wholeReads.get(feed.key) ?? startedAt;
      if (clock.now() - lastWhole >= wholeReadEveryMs) return engine.read(feed, headers);
      const validators = await validatorsFor(feed.key);
      if (!validators) return engine.read(feed, headers);
      const fetched = await fetcher.fetchIfChanged(feed.target, headers, validators);
      if (fetched.kind !== 'not-modified') return settleShared(feed, fetched, headers);
      const confirmed = await serialized(feed.key, () => applyNotModified(feed, fetched))
        .catch((err: unknown) => {
          logger.warn({ err: briefError(err), feed: redact(feed.target) }, 'feed not-modified answer not applied');
          return undefined;
        });
      // A 304 that confirms nothing the snapshot holds: read the feed whole.
      return confirmed ?? engine.read(feed, headers);
    },
    lastRead: (key) => recentReads.get(key),
    async read(feed, headers) {
      return settleShared(feed, await fetcher.fetch(feed.target, headers), headers);
    },
    state: loadState,
    history: loadHistory,
    lastAnswer: (key) => answerCache.get(key),
    async states() {
      const out: FeedState[] = [];
      for await (const [key, state] of statesNs.entries<FeedState>()) out.push(stateCache.get(key) ?? state);
      return out;
    },
    noteClient(key) {
      const state = stateCache.get(key);
      if (!state || (state.tokenAt !== undefined && clock.now() - state.tokenAt < readStampIntervalMs)) return;
      const next = { ...state, tokenAt: clock.now() };
      void saveState(key, next, state.tokenAt === undefined).catch(() => undefined);
    },
    onChange(listener) {
      listeners.push(listener);
    },
    onHold(listener) {
      holdListeners.push(listener);
    },
    heldDrops() {
      const now = clock.now();
      let pastSpan = 0;
      for (const since of holds.values()) if (now - since >= hold.spanMs) pastSpan += 1;
      return { withinSpan: holds.size - pastSpan, pastSpan };
    },
    async recover() {
      if (!options.changeLog) return 0;
      const pending = await options.changeLog.pending();
      let recovered = 0;
      for (const change of pending) {
        const fields = { feed: redact(change.feed.target), listing: change.feed.listing, version: change.version };
        // Journaled, but its snapshot never landed: the next read finds the same change and journals it
        // again (notifying twice otherwise), and a change the upstream took back was never one to tell.
        const history = change.version === undefined
          ? undefined : await loadHistory(change.feed.key).catch(() => undefined);
        if (change.version !== undefined && (history?.version ?? 0) < change.version) {
          logger.info(fields, 'feed change recovered without its snapshot: left to the next read');
          await options.changeLog.done(change.id).catch(() => undefined);
          continue;
        }
        logger.info(fields, 'feed change recovered: processing it again');
        process({ ...change, recovered: true });
        recovered += 1;
      }
      return recovered;
    },
    async settled() {
      while (processing.size > 0) await Promise.allSettled([...processing]);
    },
    afterChanges: (key, task) => inOrder(key, task),
    close() {
      stopped = true;
      clock.clearTimeout(resyncTimer);
      unsynced.clear();
    },
  };
  return engine;
}

function pathOf(target: string): string {
  const q = target.indexOf('?');
  return q === -1 ? target : target.slice(0, q);
}

/** The nights of the last applied content, as of the last read that still showed it: reads of unchanged
 * content keep the nights they were counted with, and the push decision measures the time since the
 * previous read (SPEC "Push": the window roll), not since the last change. While a drop was held, the
 * content was last shown by the read before the hold began: its start is the bound. */
function lastSeen(nights: StoredNights, previous: FeedState | undefined): StoredNights {
  const readAt = previous?.hold?.since ?? previous?.lastReadAt;
  return readAt === undefined ? nights : { ...nights, at: readAt };
}

/** True when `nights` were counted as `request` counts: from the same date, as far, in the same zone. */
function countedAs(nights: StoredNights | undefined, request: NightsRequest): boolean {
  return nights !== undefined && nights.today === request.today && nights.days === request.days &&
    nights.zone === request.zone;
}
