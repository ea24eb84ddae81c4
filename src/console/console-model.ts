// What the operator console shows, as plain data: the overview, a page of the listings table and one
// listing. The pages (pages.ts) and `icalpush status` (cli/status.ts, through GET /_icalpush/overview)
// render the same objects. Everything is read from state the sidecar holds already; the listings table
// reads the decision log only for the rows of the page asked for.
import type { Clock } from '../clock.ts';
import type { FeedState } from '../feeds/engine.ts';
import type { PendingNotification } from '../push/notifier.ts';
import type { Decision } from '../push/decide/decide.ts';
import type { ListingPlan } from '../push/plans.ts';
import { isPeerFailing, type ListingSummary, type PeerStatus } from '../push/push.ts';
import type { MinuteRecorder } from './minute-series.ts';

/** Where the console reads from (wired by app.ts). */
export type ConsoleSources = {
  clock: Clock;
  recorder: MinuteRecorder;
  /** The connection map in force. */
  plans(): ReadonlyMap<string, ListingPlan>;
  summaries(ids: readonly string[]): Promise<ListingSummary[]>;
  /** Distinct peer calendars, and the listings' peers failing now. */
  peerCounts(): { peers: number; failing: number };
  /** GET /_icalpush/listings/{id}'s object: the listing, its peers, pending work and decision log. */
  listing(id: string): Promise<Record<string, unknown> | undefined>;
  pending(): Promise<PendingNotification[]>;
  feeds(): Promise<FeedState[]>;
  replica(): { id: string; store: string; live: readonly string[] };
  /** status.map: the map's source and load time. */
  map(): Record<string, unknown>;
  /** Redacts a feed URL (userinfo, query values, secret path segments) as status does. */
  redact(url: string): string;
  /** `snapshots.hold.span`: a drop held longer than this is overdue for an operator's look. */
  holdSpanMs: number;
};

/** Notification counts by outcome over a window. */
export type OutcomeCounts = { sent: number; failed: number; retried: number; dropped: number; refused: number };

/** The overview. */
export type Overview = {
  generatedAt: string;
  replica: { id: string; store: string; live: readonly string[] };
  map: Record<string, unknown>;
  listings: number;
  feeds: number;
  peers: number;
  notifications: { hour: OutcomeCounts; day: OutcomeCounts; pending: number; overdue: number };
  /** Upstream reads: all of them, and the watch's, per minute over the last hour, against the watch's budget. */
  reads: { lastHourPerMinute: number; watchLastHourPerMinute: number; budgetPerMinute: number | null };
  inboundHeads: { hour: number; day: number };
  /** Booking → peer HEAD answered, over the last hour (seconds). */
  propagation: { hour: { count: number; p50: number | null; p99: number | null } };
  held: { listing: string; feed: string; since: string; entities: number; overdue: boolean }[];
  errors: { upstreamHour: number; upstreamDay: number; failingPeers: number; feedsFailing: number };
};

/** A peer's health at a glance: `failing` when its last notification or read failed and none succeeded since. */
export type PeerHealth = 'ok' | 'failing' | 'unknown';

/** One row of the listings table. */
export type ListingRow = {
  id: string;
  zone?: string;
  lastDecision?: { at: string; kind: string; rule: string; why: string; notified: string[] };
  lastNotification?: string;
  peers: { name: string; health: PeerHealth; lastError?: string }[];
};

/** A page of the listings table. */
export type ListingsPage = { query: string; page: number; pages: number; perPage: number; total: number;
  matched: number; rows: ListingRow[]; };

const perPage = 50;
// Longest search text taken from a request.
const maxQueryLength = 200;

const iso = (ms: number) => new Date(ms).toISOString();

/** The health of one peer from what status holds of it. */
export function peerHealth(peer: PeerStatus): PeerHealth {
  const notifiedAt = Date.parse(peer.lastNotification ?? '') || 0;
  const readAt = Date.parse(peer.lastRead ?? '') || 0;
  if (isPeerFailing(peer.lastError?.at, notifiedAt, readAt)) return 'failing';
  return notifiedAt > 0 || readAt > 0 ? 'ok' : 'unknown';
}

function outcomes(totals: Record<string, number>): OutcomeCounts {
  return { sent: totals.sent ?? 0, failed: totals.failed ?? 0, retried: totals.retried ?? 0,
    dropped: totals.dropped ?? 0, refused: totals.refused ?? 0 };
}

/** The console's data. */
export type ConsoleModel = {
  overview(): Promise<Overview>;
  listings(query: string, page: number): Promise<ListingsPage>;
  listing(id: string): Promise<ListingDetail | undefined>;
};

/** One listing as GET /_icalpush/listings/{id} gives it (push.ts `listing`). */
export type ListingDetail = {
  id: string;
  feed: string;
  today: { busyFrom: string; freeFrom: string; zone?: string; rule: string };
  snapshot?: { version?: number; tag?: string; entities: number; lastRead?: string; lastChange?: string;
    held?: { since?: string; entities: number }; unversioned?: string; };
  peers: PeerStatus[];
  pending: PendingNotification[];
  activity: Record<string, string | undefined>;
  lastRefresh?: { at?: string; outcome?: string; [key: string]: unknown };
  /** The last inbound HEADs and refreshes (this replica's), newest first. */
  inbound?: { heads: string[]; refreshes: { at: string; outcome: string }[] };
  decisions: (Decision & { repeats?: number; firstAt?: string })[];
};

/** Creates the model over `sources`. */
export function createConsoleModel(sources: ConsoleSources): ConsoleModel {
  const { recorder, clock } = sources;
  return {
    async overview() {
      const now = clock.now();
      const plans = sources.plans();
      const peerCounts = sources.peerCounts();
      const [pending, feeds] = await Promise.all([sources.pending(), sources.feeds()]);
      const series = recorder.series(60);
      const sum = (values: readonly (number | null)[]) => values.reduce<number>((a, v) => a + (v ?? 0), 0);
      const watchHour = sum(series.counters.watchReads.active ?? []) + sum(series.counters.watchReads.idle ?? []);
      const budgets = series.budgetPerMinute.filter((v): v is number => v !== null);
      const held = feeds.filter((f) => f.hold).map((f) => ({
        listing: f.listing,
        feed: sources.redact(f.target),
        since: iso(f.hold?.since ?? 0),
        entities: f.hold?.entities ?? 0,
        overdue: now - (f.hold?.since ?? now) > sources.holdSpanMs,
      }));
      return {
        generatedAt: iso(now),
        replica: sources.replica(),
        map: sources.map(),
        listings: plans.size,
        feeds: feeds.length,
        peers: peerCounts.peers,
        notifications: {
          hour: outcomes(recorder.totals('notifications', 60)),
          day: outcomes(recorder.totals('notifications', 24 * 60)),
          pending: pending.length,
          overdue: pending.filter((p) => p.dueAt < now - 60_000).length,
        },
        reads: {
          lastHourPerMinute: sum(series.counters.upstreamReads[''] ?? []) / 60,
          watchLastHourPerMinute: watchHour / 60,
          budgetPerMinute: budgets.at(-1) ?? null,
        },
        inboundHeads: { hour: recorder.totals('inbound', 60)[''] ?? 0, day: recorder.totals('inbound', 24 * 60)[''] ?? 0 },
        propagation: { hour: recorder.latency(60) },
        held,
        errors: {
          upstreamHour: recorder.totals('errors', 60)[''] ?? 0,
          upstreamDay: recorder.totals('errors', 24 * 60)[''] ?? 0,
          failingPeers: peerCounts.failing,
          feedsFailing: feeds.filter((f) => f.lastError && f.lastError.at >= f.lastReadAt).length,
        },
      };
    },
    async listings(query, page) {
      const q = query.slice(0, maxQueryLength).trim().toLowerCase();
      const plans = sources.plans();
      const matched: string[] = [];
      for (const plan of plans.values()) {
        if (q === '' || plan.id.toLowerCase().includes(q) || plan.peers.some((p) => p.name.toLowerCase().includes(q))) {
          matched.push(plan.id);
        }
      }
      const pages = Math.max(1, Math.ceil(matched.length / perPage));
      const shown = Math.min(Math.max(1, Math.floor(page) || 1), pages);
      const summaries = await sources.summaries(matched.slice((shown - 1) * perPage, shown * perPage));
      return {
        query: q,
        page: shown,
        pages,
        perPage,
        total: plans.size,
        matched: matched.length,
        rows: summaries.map((s) => row(s)),
      };
    },
    listing: async (id) => (await sources.listing(id)) as ListingDetail | undefined,
  };
}

function row(summary: ListingSummary): ListingRow {
  const d = summary.lastDecision;
  const notified = summary.peers.map((p) => Date.parse(p.lastNotification ?? '') || 0);
  const last = Math.max(0, ...notified);
  return {
    id: summary.id,
    ...(summary.zone ? { zone: summary.zone } : {}),
    ...(d ? { lastDecision: { at: d.at, kind: d.kind, rule: d.rule, why: d.why, notified: d.notified } } : {}),
    ...(last > 0 ? { lastNotification: iso(last) } : {}),
    peers: summary.peers.map((p) => ({ name: p.name, health: peerHealth(p),
      ...(p.lastError ? { lastError: p.lastError.reason } : {}) })),
  };
}
