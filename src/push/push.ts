// Push (SPEC "Push"): decides when a listing's own calendar changed in a way peers must hear about
// (a primary change of its future busy nights), tells them with iPP HEADs, and answers their HEADs by
// reading their feeds and making the upstream re-import now. Never echoes an import back (iPP §3.3).
// This file composes the parts, one job each: classify.ts (the decision, decide/ its pure model),
// receive.ts (inbound HEADs, debounce, refresh), watch.ts, rereads.ts, refresh.ts, notifier.ts (the
// outbox), decision-log.ts; what stays here is recording decisions, the one-HEAD rule and status.
import type { Clock } from '../clock.ts';
import type { Config } from '../config/schema.ts';
import type { FeedAnalyzer } from '../feeds/analyzer.ts';
import type { FeedChange } from '../feeds/change-log.ts';
import type { FeedEngine, HeldDrop } from '../feeds/engine.ts';
import type { OutboundClient } from '../http/clients.ts';
import { compilePathPattern, isPathPatternError, type PathPattern } from '../http/path-pattern.ts';
import type { Logger } from '../log.ts';
import { redactUrl } from '../redact.ts';
import type { Histogram, Registry } from '../metrics/registry.ts';
import { activeForMs, type ListingActivity } from './activity.ts';
import type { Decision } from './decide/decide.ts';
import { heldDecision, operatorDecision } from './decide/made-by-callers.ts';
import { todayFor } from './decide/today.ts';
import type { DecisionLog, LoggedDecision } from './decision-log.ts';
import type { Notifier } from './notifier.ts';
import { createClassifier } from './classify.ts';
import { createPeerReader, type Peer, type PeerReader } from './peers.ts';
import { createReceiver } from './receive.ts';
import { createRefresh } from './refresh.ts';
import { createRereads, rereadAfterTriggerMs } from './rereads.ts';
import type { Replicas } from '../store/replicas.ts';
import type { Store } from '../store/store.ts';
import { createWatch, type WatchReadOutcome } from './watch.ts';
import { createWatchMetrics } from './watch-metrics.ts';
import { createWatchClaim } from './watch-claim.ts';
import { createDebounceGate } from './debounce-gate.ts';
import type { ListingPlan, ListingPlans } from './plans.ts';

/** Options for createPush. */
export type PushOptions = {
  config: Pick<Config, 'feeds' | 'listings' | 'push' | 'refresh' | 'snapshots' | 'timeouts'>;
  engine: FeedEngine;
  /** The connection map. */
  plans: ListingPlans;
  notifier: Notifier;
  /** Makes peer reads and refresh calls, each with a total deadline. */
  client: OutboundClient;
  /** Reads peers' calendars off the event loop. */
  analyzer: FeedAnalyzer;
  /** Removes secrets from a feed target (the config's `{secret}` segments included). */
  redact?: (target: string) => string;
  /** Where every decision is kept, and which content the peers were last told about. */
  decisions: DecisionLog;
  /** Triggers, operator notifies, inbound HEADs and changes seen, per listing (shared with the engine). */
  activity: ListingActivity;
  clock: Clock;
  logger: Logger;
  registry: Registry;
  /** Where inbound propagation times go (stages `refreshed`, `imported`); see createPropagationMetric. */
  propagation?: Histogram;
  /** The store: shared by several replicas, it holds the watch's leases and the debounce windows. */
  store: Store;
  /** The fleet, for the watch's partition. */
  replicas: Replicas;
};

/** The push coordinator the app wires into requests. */
export type Push = {
  /** A feed changed (the engine's journaled change): decide, notify and record; resolves once durable. */
  onFeedChange(change: FeedChange): Promise<void>;
  /** The engine held a drop of a listing's own feed: recorded, so "why didn't it notify?" has an answer. */
  onHeld(held: HeldDrop): void;
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
  /** The console's rows for these listings (those in the map, in the order given): last decision and peers. */
  summaries(ids: readonly string[]): Promise<ListingSummary[]>;
  /** How many peer calendars the map names (distinct URLs) and how many of the listings' peers are failing: their
   * last notification or read failed and none succeeded since (in memory, nothing formatted). */
  peerCounts(): { peers: number; failing: number };
  /** One listing for GET /_icalpush/listings/{id}: its map entry, state and decision log; undefined when
   * it is not in the map. */
  listing(id: string): Promise<Record<string, unknown> | undefined>;
  start(): void;
  /** A reload put a new config in force: the triggers follow it (the map is read from `plans` at each use); what
   * was kept of listings and peers no longer in the map is forgotten, after, in slices (the promise). */
  reconfigure(next: Pick<Config, 'push'>): Promise<void>;
  close(): Promise<void>;
};

/** A peer of a listing as status and the console show it (URL redacted). */
export type PeerStatus = {
  name: string;
  url: string;
  notify: boolean;
  lastRead?: string;
  readBy?: string;
  busyNights?: number;
  lastNotification?: string;
  lastError?: { at: number; reason: string };
};

/** A peer is failing when its last notification or read failed and none succeeded since (times in ms): what the
 * console's overview counts and its table shows. */
export function isPeerFailing(lastErrorAt: number | undefined, lastNotifiedAt = 0, lastReadAt = 0): boolean {
  return lastErrorAt !== undefined && lastErrorAt > Math.max(lastNotifiedAt, lastReadAt);
}

/** One listing's row of the console's table. */
export type ListingSummary = { id: string; zone?: string; lastDecision?: Decision; peers: PeerStatus[] };

type ListingState = {
  lastDecision?: Decision;
  /** lastDecision was looked up in the decision log (after a restart it is there, not in memory). */
  decisionLoaded?: boolean;
};

// Own feeds re-read at once by the watch: with 10,000 listings at 60 s, enough for an upstream
// answering in up to ~100 ms (measured by `npm run bench -- push`). Each read holds its slot only until
// it ends (its deadline at the latest): a stuck read costs one slot, never the watch.
const watchConcurrency = 16;

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

/** The triggers of `push.triggers`, compiled (the schema has refused any that does not compile). */
function compileTriggers(list: Config['push']['triggers']): Array<{ method: string; pattern: PathPattern }> {
  return list.flatMap((t) => {
    const compiled = compilePathPattern(t.path);
    return isPathPatternError(compiled) ? [] : [{ method: t.method, pattern: compiled }];
  });
}

/** Creates the push coordinator. */
export function createPush(options: PushOptions): Push {
  const { config, engine, notifier, clock, logger, client } = options;
  const peers: PeerReader = createPeerReader({
    clock,
    logger,
    client,
    analyzer: options.analyzer,
    userAgent: config.push.userAgent,
    timeoutMs: Math.min(config.timeouts.upstream, 15_000),
    maxBodyBytes: config.snapshots.maxBodyBytes,
  });
  // The map in force: read at each use, since a reload replaces it (SPEC "Reload").
  const plansNow = () => options.plans.byId;
  let triggers = compileTriggers(config.push.triggers);
  const states = new Map<string, ListingState>();
  const stateOf = (id: string): ListingState => {
    let state = states.get(id);
    if (!state) {
      state = {};
      states.set(id, state);
    }
    return state;
  };
  let closed = false;

  const counters = {
    changes: options.registry.counter('icalpush_push_changes_total', 'Own-feed changes classified, by kind.', ['kind']),
  };

  const classify = createClassifier(peers, clock);
  const rereads = createRereads(clock, logger, (plan, why) => readOwn(plan, why));
  const receiver = createReceiver({
    plans: plansNow, peers, rereads, clock, logger, registry: options.registry, activity: options.activity,
    refresh: createRefresh(config.refresh, client, config.push.userAgent),
    debounceMs: config.push.debounce,
    propagation: options.propagation,
    gate: options.store.shared && config.push.debounce > 0
      ? createDebounceGate(options.store, clock, config.push.debounce) : undefined,
  });
  const watch = createWatch({
    // Read at every tick: a reloaded map is picked up by the watch as it is by everything else.
    plans: () => options.plans.byId,
    clock,
    intervalMs: config.push.watch.intervalMs,
    idleIntervalMs: config.push.watch.idleIntervalMs,
    maxRatePerSecond: config.push.watch.maxRatePerSecond,
    replicas: () => options.replicas.live().length,
    concurrency: watchConcurrency,
    // Activity seen by this process, or else the last change the feed's snapshot knows (after a restart).
    // Activity this process saw; after a restart, listings are idle until it sees some (with the budget short,
    // the watch then goes round all of them).
    isActive: (plan) => clock.now() - (options.activity.lastSeen(plan.id) ?? Number.NEGATIVE_INFINITY) < activeForMs,
    lastReadAt: (plan) => engine.lastRead(plan.key)?.readAt,
    read: (plan) => readOwn(plan, 'watch').then((read): WatchReadOutcome => {
      const kind = (read as { kind?: string } | undefined)?.kind;
      return kind === 'calendar' ? 'read' : kind === 'not-modified' ? 'not-modified' : 'failed';
    }),
    isMine: (plan) => options.replicas.owns(plan.id),
    mayRead: createWatchClaim(options.store, options.replicas),
    onRead: (reason) => countWatchRead(reason),
  });
  const countWatchRead = createWatchMetrics(options.registry, () => watch.stats());

  // Activity moves an idle listing to the watch's active interval at once, not at its next promotion pass.
  options.activity.onTouch((listing) => watch.touched(listing));

  function readOwn(scheduled: ListingPlan, why: string): Promise<unknown> {
    // A read scheduled before a reload uses the listing as the map now has it; a listing removed is not read.
    const plan = plansNow().get(scheduled.id);
    if (closed || plan === undefined) return Promise.resolve();
    const headers = { ...plan.headers, 'user-agent': `${config.push.userAgent} icalpush (${why})` };
    // Conditional on the upstream's own validators: an unchanged feed costs the platform a 304.
    return engine.readIfChanged({ key: plan.key, target: plan.target, listing: plan.id }, headers)
      .then((read) => {
        if (read.kind === 'not-calendar') {
          const { status } = read.answer;
          // Header values (credentials) are never logged: their names say what was sent.
          const fields = { listing: plan.id, why, outcome: read.kind, status, reason: read.reason,
            headers: Object.keys(plan.headers) };
          if (status === 401 || status === 403) logger.warn(fields, 'own feed read refused: check listings.<id>.headers');
          else logger.warn(fields, 'own feed read failed');
        } else if (read.kind !== 'calendar' && read.kind !== 'not-modified') {
          logger.warn({ listing: plan.id, why, outcome: read.kind }, 'own feed read failed');
        }
        return read;
      });
  }

  const lastRefreshOf = (listing: string) => {
    const last = receiver.lastRefresh(listing);
    return last ? { lastRefresh: last } : {};
  };

  /** Records a decision: in memory for status, in the store for the log; `announced` as DecisionLog says. */
  async function record(plan: ListingPlan, decision: LoggedDecision, announced?: string | null): Promise<void> {
    const { change: _id, ...shown } = decision;
    // A listing removed by a reload while its change was classified is logged, not kept in memory again.
    if (plansNow().has(plan.id)) stateOf(plan.id).lastDecision = shown;
    counters.changes.labels(decision.kind).inc();
    await options.decisions.record(plan.id, decision, announced);
  }

  // How many distinct peer URLs each map names, counted once per map (a reload brings a new one).
  const distinctPeers = new WeakMap<ReadonlyMap<string, ListingPlan>, number>();

  /** The listing's last decision: in memory, or looked up in the log once (after a restart it is there). */
  async function lastDecisionOf(listing: string): Promise<Decision | undefined> {
    const state = stateOf(listing);
    if (!state.decisionLoaded) {
      state.lastDecision ??= (await options.decisions.list(listing))[0];
      state.decisionLoaded = true;
    }
    return state.lastDecision;
  }

  /** True when the last notification of that peer failed and none succeeded since (in memory). */
  function lastFailed(listing: string, url: string): boolean {
    const sent = notifier.peerState(listing)[url];
    if (sent?.lastError === undefined) return false;
    return sent.lastNotifiedAt === undefined || sent.lastError.at > sent.lastNotifiedAt;
  }

  async function notifyPeers(plan: ListingPlan, reason: string, only: readonly Peer[] = plan.peers): Promise<string[]> {
    const targets = only.filter((p) => p.notify).map((p) => ({ listing: plan.id, name: p.name, url: p.url }));
    if (targets.length > 0) await notifier.notify(targets, reason);
    return targets.map((t) => t.name);
  }

  /** A listing's peers for status: last read, last notification, last error (URLs redacted). */
  function peersOf(plan: ListingPlan): PeerStatus[] {
    const peerStates = notifier.peerState(plan.id);
    return plan.peers.map((peer) => {
      const snap = peers.snapshot(peer);
      const sent = peerStates[peer.url];
      return {
        name: peer.name,
        url: redactUrl(peer.url),
        notify: peer.notify,
        ...(snap
          ? { lastRead: new Date(snap.readAt).toISOString(), readBy: snap.via, busyNights: snap.nights.length } : {}),
        ...(sent?.lastNotifiedAt ? { lastNotification: new Date(sent.lastNotifiedAt).toISOString() } : {}),
        ...(snap?.lastError ?? sent?.lastError ? { lastError: snap?.lastError ?? sent?.lastError } : {}),
      };
    });
  }

  return {
    async onFeedChange(change) {
      const plan = options.plans.ownPlan(change.feed);
      if (!plan) return;
      const decision: LoggedDecision = { ...(await classify(plan, change)), change: change.id };
      // Activity is a change of the busy nights (a booking here or imported): a first read, DTSTAMP churn or the
      // daily roll of an exporter's far block is none, or a whole new map would be "active" for a week.
      if (decision.kind === 'primary' || decision.kind === 'imported') options.activity.touch(plan.id, 'change');
      let announced: string | null = null;
      if (decision.kind === 'primary') {
        // One HEAD per change: a change journaled again after a crash finds its content already announced.
        if ((await options.decisions.announced(plan.id)) === change.tag) decision.why += '; peers already told';
        else decision.notified = await notifyPeers(plan, 'primary change');
        announced = change.tag;
      }
      await record(plan, decision, announced);
      receiver.changeDecided(plan.id, decision.kind);
      const { change: _id, ...fields } = decision;
      logger.info({ listing: plan.id, ...fields }, 'listing change classified');
    },
    onHeld(held) {
      const plan = options.plans.ownPlan(held.feed);
      if (!plan || closed) return;
      const decision = heldDecision(held.at, held.judgement, held.spanMs, held.nights);
      void record(plan, decision).catch((err: unknown) => logger.error({ err, listing: plan.id }, 'decision not recorded'));
      logger.info({ listing: plan.id, ...decision }, 'listing change classified');
    },
    inbound: (listing) => {
      if (!closed) receiver.inbound(listing);
    },
    afterProxied(method, path, status) {
      if (status < 200 || status > 299 || closed) return;
      for (const trigger of triggers) {
        if (trigger.method !== method) continue;
        const match = trigger.pattern.match(path);
        const plan = match ? plansNow().get(match.listing) : undefined;
        if (!plan) continue;
        options.activity.touch(plan.id, 'trigger');
        rereads.schedule(plan, rereadAfterTriggerMs, 'trigger');
      }
    },
    async changed(listing) {
      const plan = plansNow().get(listing);
      if (!plan) return { ok: false, notified: [] };
      // Seen first, so a drop the read below finds is taken for the cancellation it is.
      options.activity.touch(listing, 'operator');
      // What the peers would read now, and whether they were told about it already: once its change is
      // processed (a read under way may be finding it right now), the answer is in the log.
      const read = await readOwn(plan, 'operator').catch(() => undefined) as { kind?: string; tag?: string } | undefined;
      const tag = read?.kind === 'calendar' || read?.kind === 'not-modified' ? read.tag : undefined;
      // In the feed's order, after that read's change: the log is current, and no change decided meanwhile
      // has its announcement overwritten by this one.
      const decision = await engine.afterChanges(plan.key, async () => {
        const told = tag !== undefined && (await options.decisions.announced(listing)) === tag;
        // Peers whose last notification failed for good (refused, or dropped after push.retryFor) were not
        // told, whatever was announced: the operator's notify is how they are told again.
        const untold = told ? plan.peers.filter((peer) => lastFailed(plan.id, peer.url)) : plan.peers;
        const made = operatorDecision(clock.now(), untold.length === 0);
        if (tag !== undefined) made.tag = tag;
        if (untold.length > 0) made.notified = await notifyPeers(plan, 'operator', untold);
        await record(plan, made, untold.length === 0 || tag === undefined ? undefined : tag);
        return made;
      });
      logger.info({ listing, ...decision }, 'listing change declared by operator');
      // The upstream may export the change a little later: look again, as after a trigger.
      rereads.schedule(plan, rereadAfterTriggerMs.slice(1), 'operator');
      return { ok: true, notified: decision.notified };
    },
    knows: (listing) => plansNow().has(listing),
    async status() {
      const out: Record<string, unknown> = {};
      // One pass over the outbox for all listings, not one per listing.
      const pending = Map.groupBy(await notifier.pending(), (item) => item.listing);
      for (const plan of plansNow().values()) {
        const lastDecision = await lastDecisionOf(plan.id);
        out[plan.id] = {
          peers: peersOf(plan),
          pending: pending.get(plan.id) ?? [],
          ...(lastDecision ? { lastDecision } : {}),
          ...lastRefreshOf(plan.id),
        };
      }
      return out;
    },
    peerCounts() {
      const map = plansNow();
      let peerUrls = distinctPeers.get(map);
      if (peerUrls === undefined) {
        const urls = new Set<string>();
        for (const plan of map.values()) for (const peer of plan.peers) urls.add(peer.url);
        peerUrls = urls.size;
        distinctPeers.set(map, peerUrls);
      }
      let failing = 0;
      for (const plan of map.values()) {
        if (plan.peers.length === 0) continue;
        const sent = notifier.peerState(plan.id);
        for (const peer of plan.peers) {
          const snap = peers.snapshot(peer);
          const state = sent[peer.url];
          const errorAt = (snap?.lastError ?? state?.lastError)?.at;
          if (isPeerFailing(errorAt, state?.lastNotifiedAt, snap?.readAt)) failing += 1;
        }
      }
      return { peers: peerUrls, failing };
    },
    async summaries(ids) {
      const map = plansNow();
      const listed = ids.flatMap((id) => {
        const plan = map.get(id);
        return plan ? [plan] : [];
      });
      const decisions = await Promise.all(listed.map((plan) => lastDecisionOf(plan.id)));
      return listed.map((plan, i) => {
        const lastDecision = decisions[i];
        return { id: plan.id, ...(plan.zone ? { zone: plan.zone } : {}), ...(lastDecision ? { lastDecision } : {}),
          peers: peersOf(plan) };
      });
    },
    async listing(id) {
      const plan = plansNow().get(id);
      if (!plan) return undefined;
      const feed = await engine.state(plan.key);
      const activity = options.activity.times(id);
      const iso = (ms: number | undefined) => (ms === undefined ? undefined : new Date(ms).toISOString());
      return {
        id,
        feed: (options.redact ?? redactUrl)(plan.target),
        // What "today" is for the listing now, and by which rule.
        today: { ...todayFor(clock.now(), plan.zone), rule: plan.zone ? 'local date' : 'conservative (UTC-12 / UTC+14)' },
        ...(feed ? { snapshot: { version: feed.version, tag: feed.tag, entities: feed.entities,
          lastRead: iso(feed.lastReadAt), lastChange: iso(feed.changedAt),
          ...(feed.hold ? { held: { since: iso(feed.hold.since), entities: feed.hold.entities } } : {}),
          ...(feed.unversioned ? { unversioned: feed.unversioned } : {}) } } : {}),
        peers: peersOf(plan),
        pending: await notifier.pending(id),
        activity: Object.fromEntries(Object.entries(activity).map(([kind, ms]) => [kind, iso(ms)])),
        ...lastRefreshOf(plan.id),
        inbound: (({ heads, refreshes }) => ({ heads: heads.map((ms) => iso(ms) as string), refreshes }))(
          receiver.recent(plan.id)),
        decisions: (await options.decisions.list(id)).map(({ change: _id, ...decision }) => decision),
      };
    },
    start() {
      watch.start();
    },
    reconfigure(next) {
      triggers = compileTriggers(next.push.triggers);
      // The debounce state and last decisions of listings that stay are kept; those of listings removed go.
      // Forgetting is no part of the swap: it runs after, in slices.
      const map = plansNow();
      receiver.prune();
      for (const id of [...states.keys()]) if (!map.has(id)) states.delete(id);
      return peers.prune((function* livePeers() {
        for (const plan of map.values()) yield* plan.peers;
      })());
    },
    async close() {
      closed = true;
      receiver.close();
      rereads.close();
      await watch.close();
    },
  };
}
