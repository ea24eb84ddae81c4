// Push (SPEC "Push"): decides when a listing's own calendar changed in a way peers must hear about
// (a primary change of its future busy nights), tells them with iPP HEADs, and answers their HEADs by
// reading their feeds and making the upstream re-import now. Never echoes an import back (iPP §3.3).
import { Agent, request } from 'undici';
import type { Clock } from '../clock.ts';
import { ownFeedTarget } from '../config/listings.ts';
import type { Config } from '../config/schema.ts';
import { type FeedChange, type FeedEngine, type FeedKey, feedKey } from '../feeds/engine.ts';
import { currentComponents, type FeedHistory } from '../feeds/history.ts';
import { compilePathPattern, isPathPatternError, type PathPattern } from '../http/path-pattern.ts';
import { serializeCalendar } from '../ical/serialize.ts';
import type { Logger } from '../log.ts';
import { redactUrl } from '../redact.ts';
import type { Histogram, Registry } from '../metrics/registry.ts';
import { busyNights, dateOf, diffNights, isHorizonOnly, type NightsDiff } from './availability.ts';
import type { Notifier } from './notifier.ts';
import { createPeerReader, type Peer, type PeerReader } from './peers.ts';

/** Why the last change of a listing did or did not notify: what operators ask first. */
export type Classification = {
  at: string;
  kind: 'primary' | 'imported' | 'no-night-change' | 'horizon-suppressed' | 'operator';
  version?: number;
  /** Nights that became busy / free and no peer explains: these notified. */
  primary?: NightsDiff;
  /** Nights a peer's feed explains: imported, not notified. */
  imported?: NightsDiff;
  notified?: string[];
};

/** Options for createPush. */
export type PushOptions = {
  config: Pick<Config, 'feeds' | 'listings' | 'push' | 'refresh' | 'snapshots' | 'timeouts'>;
  engine: FeedEngine;
  notifier: Notifier;
  clock: Clock;
  logger: Logger;
  registry: Registry;
  /** Tells iCal Hooks subscribers of a feed that it changed. */
  fireHooks?: (feed: FeedKey) => Promise<void>;
  /** Where inbound propagation times go (stages `refreshed`, `imported`); see createPropagationMetric. */
  propagation?: Histogram;
};

/** The push coordinator the app wires into requests. */
export type Push = {
  /** A feed's snapshot changed (engine onChange). */
  onFeedChange(feed: FeedKey, change: FeedChange): Promise<void>;
  /** An inbound HEAD on a feed path of `listing` (already answered). */
  inbound(listing: string): void;
  /** A proxied request with a 2xx; re-reads the listing a trigger names. */
  afterProxied(method: string, path: string, status: number): void;
  /** An operator says the listing changed (admin POST, `icalpush notify`): notify its peers now. */
  changed(listing: string): Promise<{ ok: boolean; notified: string[] }>;
  /** True when `listing` is in the connection map. */
  knows(listing: string): boolean;
  /** Per-listing push state for /_icalpush/status. */
  status(): Promise<Record<string, unknown>>;
  start(): void;
  close(): Promise<void>;
};

type ListingPlan = { id: string; target: string; peers: Peer[] };

type ListingState = {
  lastRunAt: number;
  running: boolean;
  trailing: NodeJS.Timeout | undefined;
  rereads: NodeJS.Timeout[];
  lastClassification?: Classification;
  lastHorizonNotifyAt?: number;
  lastRefresh?: { at: string; outcome: string };
  /** The first inbound HEAD no run has served yet (ms). */
  firstHeadAt?: number;
  /** The inbound HEAD whose refresh was called and whose import has not shown in the own feed yet (ms). */
  importSince?: number;
  watchFailures: number;
  nextWatchAt: number;
};

// Own-feed re-reads after a refresh, to see the import land (ms after the refresh answered).
const rereadAfterRefreshMs = [0, 2_000, 5_000, 15_000, 30_000, 60_000];
// After a trigger: now, and once more for upstreams that export asynchronously.
const rereadAfterTriggerMs = [0, 2_000];
// A peer snapshot older than this is re-read before a change is declared primary.
const peerFreshMs = 30_000;
// Own feeds re-read at once by the watch: with 10,000 listings at 60 s, enough for an upstream
// answering in up to ~100 ms (measured by `npm run bench -- push`).
const watchConcurrency = 16;
// A horizon-only change notifies at most this often.
const horizonIntervalMs = 24 * 60 * 60 * 1000;
// An imported change this long after the refresh is no longer taken for that refresh's import.
const importWindowMs = rereadAfterRefreshMs.at(-1)! + 30_000;

/** The name of the propagation-time histogram. */
export const propagationMetricName = 'icalpush_push_propagation_seconds';

/** The propagation-time histogram, by stage: `notified` (a change queued → the peer answered its HEAD),
 * `refreshed` (an inbound HEAD → the refresh action answered), `imported` (an inbound HEAD → the import
 * seen in the own feed). Buckets from 10 ms to an hour: the hourly poll push replaces is the far end. */
export function createPropagationMetric(registry: Registry): Histogram {
  return registry.histogram(propagationMetricName,
    'Seconds from a change or an inbound HEAD to each push stage: notified, refreshed, imported.', ['stage'],
    [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600]);
}

/** Creates the push coordinator. */
export function createPush(options: PushOptions): Push {
  const { config, engine, notifier, clock, logger } = options;
  const agent = new Agent({ connect: { timeout: config.timeouts.connect }, connections: 16 });
  const peers: PeerReader = createPeerReader({
    clock,
    logger,
    dispatcher: agent,
    userAgent: config.push.userAgent,
    timeoutMs: Math.min(config.timeouts.upstream, 15_000),
    maxBodyBytes: config.snapshots.maxBodyBytes,
  });
  const plans = new Map<string, ListingPlan>();
  const byTarget = new Map<string, ListingPlan>();
  for (const [id, listing] of Object.entries(config.listings)) {
    const target = ownFeedTarget(config, id);
    if (target === undefined) continue;
    const plan: ListingPlan = {
      id,
      target,
      peers: listing.peers.map((p) => ({
        listing: id,
        name: p.name ?? new URL(p.url).host,
        url: p.url,
        notify: p.notify,
      })),
    };
    plans.set(id, plan);
    byTarget.set(target, plan);
  }
  const triggers = config.push.triggers.flatMap((t) => {
    const compiled = compilePathPattern(t.path);
    return isPathPatternError(compiled) ? [] : [{ method: t.method, pattern: compiled as PathPattern }];
  });
  const states = new Map<string, ListingState>();
  const stateOf = (id: string): ListingState => {
    let state = states.get(id);
    if (!state) {
      state = { lastRunAt: Number.NEGATIVE_INFINITY, running: false, trailing: undefined, rereads: [], watchFailures: 0,
        nextWatchAt: 0 };
      states.set(id, state);
    }
    return state;
  };
  const nightsCache = new Map<string, Set<string>>();
  let watchTimer: NodeJS.Timeout | undefined;
  let watching: Promise<void> | undefined;
  let closed = false;

  const counters = {
    inbound: options.registry.counter('icalpush_push_inbound_heads_total', 'Inbound HEADs on feed paths of known listings.'),
    debounced: options.registry.counter('icalpush_push_debounced_total', 'Inbound HEADs folded into a run already done or scheduled.'),
    refreshes: options.registry.counter('icalpush_push_refreshes_total', 'Refresh actions called, by outcome.', ['outcome']),
    changes: options.registry.counter('icalpush_push_changes_total', 'Own-feed changes classified, by kind.', ['kind']),
  };

  async function nightsOf(history: FeedHistory | undefined, today: string): Promise<Set<string>> {
    if (!history) return new Set();
    const cacheKey = `${history.lineage}:${history.version}:${today}`;
    const cached = nightsCache.get(cacheKey);
    if (cached) return cached;
    const text = serializeCalendar({ ...history.frame, components: currentComponents(history) });
    const { nights } = await busyNights(text, { today });
    // Two entries per listing are all classification needs: before and after.
    if (nightsCache.size > plans.size * 2 + 16) nightsCache.clear();
    nightsCache.set(cacheKey, nights);
    return nights;
  }

  function readOwn(plan: ListingPlan, why: string): Promise<unknown> {
    if (closed) return Promise.resolve();
    return engine.read(feedKey(plan.target, plan.id, {}), { 'user-agent': `${config.push.userAgent} icalpush (${why})` })
      .then((read) => {
        if (read.kind !== 'calendar') logger.warn({ listing: plan.id, why, outcome: read.kind }, 'own feed read failed');
        return read;
      });
  }

  function scheduleRereads(plan: ListingPlan, delays: number[], why: string): void {
    const state = stateOf(plan.id);
    for (const timer of state.rereads) clearTimeout(timer);
    state.rereads = delays.map((ms) => {
      const timer = setTimeout(() => {
        state.rereads = state.rereads.filter((t) => t !== timer);
        void readOwn(plan, why).catch((err: unknown) => logger.error({ err, listing: plan.id }, 'own feed re-read failed'));
      }, ms);
      timer.unref();
      return timer;
    });
  }

  async function callRefresh(plan: ListingPlan): Promise<string> {
    const refresh = config.refresh;
    if (!refresh) return 'not-configured';
    const url = refresh.url.replaceAll('{listing}', encodeURIComponent(plan.id));
    try {
      const res = await request(url, {
        method: refresh.method,
        headers: { 'user-agent': `${config.push.userAgent} icalpush`, ...refresh.headers },
        dispatcher: agent,
        headersTimeout: refresh.timeout,
        bodyTimeout: refresh.timeout,
        signal: AbortSignal.timeout(refresh.timeout),
      });
      await res.body.dump();
      const outcome = res.statusCode >= 200 && res.statusCode < 300 ? 'ok' : `status ${res.statusCode}`;
      return outcome;
    } catch (err) {
      return (err as { code?: string }).code ?? 'network error';
    }
  }

  /** One inbound run: read every peer; when any changed or cannot be compared, refresh; re-read own. */
  async function run(plan: ListingPlan): Promise<void> {
    const state = stateOf(plan.id);
    state.running = true;
    state.lastRunAt = clock.now();
    // The run serves every HEAD so far; one arriving from now on is the trailing run's.
    const since = state.firstHeadAt ?? state.lastRunAt;
    state.firstHeadAt = undefined;
    try {
      const reads = await Promise.all(plan.peers.map((peer) => peers.read(peer)));
      const reason = reads.some((r) => r.outcome === 'changed') ? 'peer changed'
        : reads.some((r) => r.outcome === 'failed') ? 'peer not comparable' : undefined;
      if (reason === undefined && plan.peers.length > 0) {
        logger.info({ listing: plan.id }, 'inbound notification: no peer changed');
        return;
      }
      // The import may show before the refresh answers: a peer re-reading our feed meanwhile sees it first.
      state.importSince = since;
      const outcome = await callRefresh(plan);
      counters.refreshes.labels(outcome === 'ok' ? 'ok' : outcome === 'not-configured' ? 'not_configured' : 'failed').inc();
      state.lastRefresh = { at: new Date(clock.now()).toISOString(), outcome };
      if (outcome === 'ok') options.propagation?.labels('refreshed').observe((clock.now() - since) / 1000);
      else if (state.importSince === since) state.importSince = undefined;
      logger.info({ listing: plan.id, reason: reason ?? 'no peers', refresh: outcome }, 'inbound notification: refresh');
      scheduleRereads(plan, rereadAfterRefreshMs, 'after refresh');
    } finally {
      state.running = false;
    }
  }

  function inbound(listing: string): void {
    const plan = plans.get(listing);
    if (!plan || closed) return;
    counters.inbound.labels().inc();
    const state = stateOf(listing);
    const now = clock.now();
    state.firstHeadAt ??= now;
    const debounce = config.push.debounce;
    if (!state.running && now - state.lastRunAt >= debounce) {
      void run(plan).catch((err: unknown) => logger.error({ err, listing }, 'inbound run failed'));
      return;
    }
    counters.debounced.labels().inc();
    // SPEC: a HEAD inside the window schedules one trailing run at its end, never more.
    if (state.trailing) return;
    const wait = Math.max(0, state.lastRunAt + debounce - now);
    state.trailing = setTimeout(() => {
      state.trailing = undefined;
      if (state.running) {
        inbound(listing);
        return;
      }
      void run(plan).catch((err: unknown) => logger.error({ err, listing }, 'inbound run failed'));
    }, Math.max(wait, 10));
    state.trailing.unref();
  }

  async function classify(plan: ListingPlan, change: FeedChange): Promise<Classification> {
    const now = clock.now();
    const today = dateOf(now);
    const at = new Date(now).toISOString();
    const diff = diffNights(await nightsOf(change.before, today), await nightsOf(change.after, today));
    if (!change.before || (diff.added.length === 0 && diff.removed.length === 0)) {
      return { at, kind: 'no-night-change', version: change.after.version };
    }
    // iPP §3.3: before calling a change primary, make sure stale peer snapshots are current.
    await Promise.all(plan.peers.map((peer) => {
      const snap = peers.snapshot(peer);
      return snap && now - snap.readAt < peerFreshMs ? undefined : peers.read(peer);
    }));
    const snaps = plan.peers.map((peer) => peers.snapshot(peer));
    logger.debug({ listing: plan.id, diff, peers: plan.peers.map((peer, i) => ({ peer: peer.name,
      readAt: snaps[i]?.readAt, nights: snaps[i]?.nights.length, error: snaps[i]?.lastError })) }, 'classifying');
    const busyAtPeer = (night: string) => snaps.some((s) => s?.nights.includes(night));
    const freedAtPeer = (night: string) => snaps.some((s) => s?.freed[night] !== undefined);
    const primary: NightsDiff = {
      added: diff.added.filter((n) => !busyAtPeer(n)),
      removed: diff.removed.filter((n) => !freedAtPeer(n)),
    };
    const imported: NightsDiff = {
      added: diff.added.filter((n) => busyAtPeer(n)),
      removed: diff.removed.filter((n) => freedAtPeer(n)),
    };
    if (primary.added.length === 0 && primary.removed.length === 0) {
      return { at, kind: 'imported', version: change.after.version, imported };
    }
    const state = stateOf(plan.id);
    if (isHorizonOnly(primary, today)) {
      if (state.lastHorizonNotifyAt !== undefined && now - state.lastHorizonNotifyAt < horizonIntervalMs) {
        return { at, kind: 'horizon-suppressed', version: change.after.version, primary, imported };
      }
      state.lastHorizonNotifyAt = now;
    }
    return { at, kind: 'primary', version: change.after.version, primary, imported };
  }

  async function notifyPeers(plan: ListingPlan, reason: string): Promise<string[]> {
    const targets = plan.peers.filter((p) => p.notify).map((p) => ({ listing: plan.id, name: p.name, url: p.url }));
    if (targets.length > 0) await notifier.notify(targets, reason);
    return targets.map((t) => t.name);
  }

  async function watchTick(): Promise<void> {
    const now = clock.now();
    const due = [...plans.values()].filter((plan) => stateOf(plan.id).nextWatchAt <= now);
    for (let i = 0; i < due.length && !closed; i += watchConcurrency) {
      await Promise.all(due.slice(i, i + watchConcurrency).map(async (plan) => {
        const state = stateOf(plan.id);
        const planned = state.nextWatchAt;
        const read = await readOwn(plan, 'watch').catch(() => undefined) as { kind?: string } | undefined;
        // Back off while the upstream errs: the interval doubles per failure, up to 16 times.
        state.watchFailures = read?.kind === 'calendar' ? 0 : Math.min(state.watchFailures + 1, 4);
        // From the planned slot, not from when the read ended: the listing keeps its place in the
        // spread, and the interval does not stretch by the upstream's answer time and the tick.
        state.nextWatchAt = Math.max(planned + config.push.watch * 2 ** state.watchFailures, clock.now());
      }));
    }
  }

  return {
    async onFeedChange(feed, change) {
      if (options.fireHooks) await options.fireHooks(feed);
      const plan = byTarget.get(feed.target);
      // Only the listing's own feed, read anonymously, speaks for the listing.
      if (!plan || feed.key !== feed.target || plan.id !== feed.listing) return;
      const classification = await classify(plan, change);
      if (classification.kind === 'primary') {
        classification.notified = await notifyPeers(plan, 'primary change');
      }
      const state = stateOf(plan.id);
      state.lastClassification = classification;
      counters.changes.labels(classification.kind).inc();
      const awaited = state.importSince !== undefined && clock.now() - state.importSince <= importWindowMs;
      if (!awaited) state.importSince = undefined;
      if (classification.kind === 'imported' && state.importSince !== undefined) {
        options.propagation?.labels('imported').observe((clock.now() - state.importSince) / 1000);
        state.importSince = undefined;
      }
      logger.info({ listing: plan.id, ...classification }, 'listing change classified');
    },
    inbound,
    afterProxied(method, path, status) {
      if (status < 200 || status > 299 || closed) return;
      for (const trigger of triggers) {
        if (trigger.method !== method) continue;
        const match = trigger.pattern.match(path);
        const plan = match ? plans.get(match.listing) : undefined;
        if (plan) scheduleRereads(plan, rereadAfterTriggerMs, 'trigger');
      }
    },
    async changed(listing) {
      const plan = plans.get(listing);
      if (!plan) return { ok: false, notified: [] };
      const notified = await notifyPeers(plan, 'operator');
      stateOf(listing).lastClassification = { at: new Date(clock.now()).toISOString(), kind: 'operator', notified };
      counters.changes.labels('operator').inc();
      logger.info({ listing, notified }, 'listing change declared by operator');
      scheduleRereads(plan, [0], 'operator');
      return { ok: true, notified };
    },
    knows: (listing) => plans.has(listing),
    async status() {
      const out: Record<string, unknown> = {};
      for (const plan of plans.values()) {
        const state = stateOf(plan.id);
        const peerStates = notifier.peerState(plan.id);
        out[plan.id] = {
          peers: plan.peers.map((peer) => {
            const snap = peers.snapshot(peer);
            const sent = peerStates[peer.url];
            return {
              name: peer.name,
              url: redactUrl(peer.url),
              notify: peer.notify,
              ...(snap
                ? { lastRead: new Date(snap.readAt).toISOString(), readBy: snap.via, busyNights: snap.nights.length }
                : {}),
              ...(sent?.lastNotifiedAt ? { lastNotification: new Date(sent.lastNotifiedAt).toISOString() } : {}),
              ...(snap?.lastError ?? sent?.lastError
                ? { lastError: snap?.lastError ?? sent?.lastError } : {}),
            };
          }),
          pending: await notifier.pending(plan.id),
          ...(state.lastClassification ? { lastClassification: state.lastClassification } : {}),
          ...(state.lastRefresh ? { lastRefresh: state.lastRefresh } : {}),
        };
      }
      return out;
    },
    start() {
      if (config.push.watch <= 0 || plans.size === 0) return;
      // Spread the listings over the interval so the upstream sees an even load.
      const now = clock.now();
      let i = 0;
      for (const plan of plans.values()) {
        stateOf(plan.id).nextWatchAt = now + Math.floor((config.push.watch * i) / plans.size);
        i += 1;
      }
      const tickMs = Math.max(50, Math.min(1_000, Math.floor(config.push.watch / Math.max(1, plans.size))));
      let ticking = false;
      watchTimer = setInterval(() => {
        if (ticking) return;
        ticking = true;
        watching = watchTick().finally(() => {
          ticking = false;
        });
      }, tickMs);
      watchTimer.unref();
    },
    async close() {
      closed = true;
      if (watchTimer) clearInterval(watchTimer);
      // A watch pass under way finishes before the upstream pool and the store close under it.
      await watching?.catch(() => undefined);
      for (const state of states.values()) {
        if (state.trailing) clearTimeout(state.trailing);
        for (const timer of state.rereads) clearTimeout(timer);
      }
      await agent.close();
    },
  };
}
