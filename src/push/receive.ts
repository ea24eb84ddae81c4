// Inbound iPP notifications (SPEC "Push": inbound): a HEAD on a feed path of a listing in the map starts,
// at most once per `push.debounce` window per listing, a run that reads every peer's feed and, when any
// changed (or cannot be compared), calls the refresh action and re-reads the own feed to see the import
// land. A HEAD inside the window schedules one trailing run at its end, never more.
import type { Clock, Timer } from '../clock.ts';
import { briefError } from '../errors.ts';
import type { Logger } from '../log.ts';
import type { Histogram, Registry } from '../metrics/registry.ts';
import type { ListingActivity } from './activity.ts';
import type { DebounceGate } from './debounce-gate.ts';
import type { PeerReader } from './peers.ts';
import type { ListingPlan } from './plans.ts';
import type { Refresh } from './refresh.ts';
import { rereadAfterRefreshMs, type Rereads } from './rereads.ts';

/** Options for createReceiver. */
export type ReceiverOptions = {
  /** The map in force (a reload replaces it). */
  plans: () => ReadonlyMap<string, ListingPlan>;
  peers: PeerReader;
  refresh: Refresh;
  rereads: Rereads;
  activity: ListingActivity;
  clock: Clock;
  logger: Logger;
  registry: Registry;
  /** `push.debounce` in ms. */
  debounceMs: number;
  /** Propagation times (stages `refreshed`, `imported`). */
  propagation?: Histogram | undefined;
  /** With several replicas, the debounce they share; without, this process debounces alone. */
  gate?: DebounceGate | undefined;
};

/** The receiving side of push. */
export type Receiver = {
  /** An inbound HEAD on a feed path of `listing` (already answered). */
  inbound(listing: string): void;
  /** A change of the listing was decided: an import a refresh waited for is timed. */
  changeDecided(listing: string, kind: string): void;
  /** The last refresh called for the listing, for status. */
  lastRefresh(listing: string): { at: string; outcome: string } | undefined;
  /** The listing's last inbound HEADs (ms) and refreshes, newest first, at most `recentKept` of each (in memory). */
  recent(listing: string): { heads: number[]; refreshes: { at: string; outcome: string }[] };
  /** After a reload: forgets the listings no longer in the map (their trailing runs are cancelled). */
  prune(): void;
  close(): void;
};

type RunState = {
  lastRunAt: number;
  running: boolean;
  trailing: Timer | undefined;
  /** The first inbound HEAD no run has served yet (ms). */
  firstHeadAt?: number;
  /** The inbound HEAD whose refresh was called and whose import has not shown in the own feed yet (ms). */
  importSince?: number;
  lastRefresh?: { at: string; outcome: string };
  /** The last inbound HEADs (ms) and refreshes, oldest first, `recentKept` at most (what the console shows). */
  heads?: number[];
  refreshes?: { at: string; outcome: string }[];
};

// Inbound HEADs and refreshes kept per listing for the console.
const recentKept = 10;

function keepRecent<T>(list: T[] | undefined, item: T): T[] {
  const out = list ?? [];
  out.push(item);
  if (out.length > recentKept) out.splice(0, out.length - recentKept);
  return out;
}

// An imported change this long after the refresh is no longer taken for that refresh's import.
const importWindowMs = rereadAfterRefreshMs.at(-1)! + 30_000;

/** Creates the receiver. */
export function createReceiver(options: ReceiverOptions): Receiver {
  const { plans, peers, refresh, rereads, clock, logger } = options;
  const states = new Map<string, RunState>();
  const stateOf = (id: string): RunState => {
    let state = states.get(id);
    if (!state) {
      state = { lastRunAt: Number.NEGATIVE_INFINITY, running: false, trailing: undefined };
      states.set(id, state);
    }
    return state;
  };
  let closed = false;
  const counters = {
    inbound: options.registry.counter('icalpush_push_inbound_heads_total', 'Inbound HEADs on feed paths of known listings.'),
    debounced: options.registry.counter('icalpush_push_debounced_total', 'Inbound HEADs folded into a run already done or scheduled.'),
    refreshes: options.registry.counter('icalpush_push_refreshes_total', 'Refresh actions called, by outcome.', ['outcome']),
  };

  /** One inbound run: read every peer; when any changed or cannot be compared, refresh; re-read own. */
  async function run(plan: ListingPlan): Promise<void> {
    const state = stateOf(plan.id);
    state.running = true;
    state.lastRunAt = clock.now();
    // The run serves every HEAD so far; one arriving from now on is the trailing run's.
    const since = state.firstHeadAt ?? state.lastRunAt;
    delete state.firstHeadAt;
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
      const outcome = await refresh(plan.id);
      counters.refreshes.labels(outcome === 'ok' ? 'ok' : outcome === 'not-configured' ? 'not_configured' : 'failed').inc();
      state.lastRefresh = { at: new Date(clock.now()).toISOString(), outcome };
      state.refreshes = keepRecent(state.refreshes, state.lastRefresh);
      if (outcome === 'ok') options.propagation?.labels('refreshed').observe((clock.now() - since) / 1000);
      else if (state.importSince === since) delete state.importSince;
      logger.info({ listing: plan.id, reason: reason ?? 'no peers', refresh: outcome }, 'inbound notification: refresh');
      rereads.schedule(plan, rereadAfterRefreshMs, 'after refresh');
    } finally {
      state.running = false;
    }
  }

  const runLogged = (scheduled: ListingPlan) => {
    // A run decided before a reload (a trailing one) reads the peers the map has now; a listing removed, none.
    const plan = plans().get(scheduled.id);
    if (closed || plan === undefined) return;
    void run(plan).catch((err: unknown) => logger.error({ err, listing: plan.id }, 'inbound run failed'));
  };

  /** The fleet's debounce: the window and the trailing mark live in the shared store. */
  async function throughGate(gate: DebounceGate, plan: ListingPlan, state: RunState): Promise<void> {
    const entry = await gate.enter(plan.id);
    if (closed) return;
    if (entry.run) {
      runLogged(plan);
      return;
    }
    counters.debounced.labels().inc();
    if (state.trailing) return;
    state.trailing = clock.setTimeout(() => {
      state.trailing = undefined;
      void gate.takeTrailing(plan.id, entry.window).then((mine) => {
        if (mine && !closed) runLogged(plan);
      }, (err: unknown) => {
        // The store went away at the window's end: this replica runs it, rather than nobody.
        logger.warn({ err: briefError(err), listing: plan.id }, 'shared debounce unreachable');
        runLogged(plan);
      });
    }, Math.max(10, entry.at - clock.now()));
  }

  function inbound(listing: string): void {
    const plan = plans().get(listing);
    if (!plan || closed) return;
    counters.inbound.labels().inc();
    options.activity.touch(listing, 'inbound');
    const state = stateOf(listing);
    const now = clock.now();
    state.firstHeadAt ??= now;
    state.heads = keepRecent(state.heads, now);
    if (options.gate !== undefined) {
      const { gate } = options;
      void throughGate(gate, plan, state).catch((err: unknown) => {
        // Redis unreachable (SPEC: degraded mode): this replica debounces on its own meanwhile.
        logger.warn({ err: briefError(err), listing }, 'shared debounce unreachable: local');
        localInbound(plan, state, clock.now());
      });
      return;
    }
    localInbound(plan, state, now);
  }

  function localInbound(plan: ListingPlan, state: RunState, now: number): void {
    const listing = plan.id;
    if (!state.running && now - state.lastRunAt >= options.debounceMs) {
      runLogged(plan);
      return;
    }
    counters.debounced.labels().inc();
    // SPEC: a HEAD inside the window schedules one trailing run at its end, never more.
    if (state.trailing) return;
    const wait = Math.max(0, state.lastRunAt + options.debounceMs - now);
    state.trailing = clock.setTimeout(() => {
      state.trailing = undefined;
      if (state.running) {
        inbound(listing);
        return;
      }
      runLogged(plan);
    }, Math.max(wait, 10));
  }

  return {
    inbound,
    changeDecided(listing, kind) {
      const state = states.get(listing);
      if (state?.importSince === undefined) return;
      if (clock.now() - state.importSince > importWindowMs) {
        delete state.importSince;
        return;
      }
      if (kind !== 'imported') return;
      options.propagation?.labels('imported').observe((clock.now() - state.importSince) / 1000);
      delete state.importSince;
    },
    lastRefresh: (listing) => states.get(listing)?.lastRefresh,
    recent(listing) {
      const state = states.get(listing);
      return { heads: [...state?.heads ?? []].reverse(), refreshes: [...state?.refreshes ?? []].reverse() };
    },
    prune() {
      const current = plans();
      for (const [id, state] of states) {
        if (current.has(id) || state.running) continue;
        clock.clearTimeout(state.trailing);
        states.delete(id);
      }
    },
    close() {
      closed = true;
      for (const state of states.values()) clock.clearTimeout(state.trailing);
    },
  };
}
