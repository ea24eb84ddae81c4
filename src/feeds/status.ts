// The feed part of /_icalpush/status (SPEC "Admin"): every known feed with its version, entity
// count, last read, last change and last error, and each configured listing's own feed.
// Targets are shown redacted with the feeds patterns ({secret} parts too): feed URLs carry secrets.
import type { Clock } from '../clock.ts';
import { ownFeedTarget } from '../config/listings.ts';
import type { Config } from '../config/schema.ts';
import { createRedactor, type Redactor } from '../redact.ts';
import type { FeedEngine, FeedState } from './engine.ts';

/** One feed in the status report; times are ISO 8601. */
export type FeedStatus = {
  feed: string;
  listing: string;
  /** Absent while the feed is served unversioned (see `unversioned`). */
  version?: number;
  entities: number;
  lastRead: string;
  lastChange: string;
  lastError?: { at: string; reason: string };
  /** A sudden drop being held, since when, and how many entities it would leave. */
  held?: { since: string; entities: number };
  /** Entities the last re-keying read matched by content (an exporter minting UIDs). */
  rekeyed?: number;
  /** Why the feed is served without a version (too many entities, a cap, too costly to read). */
  unversioned?: string;
};

/** The whole report. */
export type StatusReport = {
  generatedAt: string;
  feeds: FeedStatus[];
  listings: Record<string, { feed: string | undefined; version?: number; lastRead?: string; lastChange?: string }>;
};

// The report lists at most this many feeds, most recently read first; `feedsOmitted` counts the rest.
const maxFeedsShown = 1_000;

/** Builds the status report from the engine's stored feed states. */
export async function statusReport(
  config: Pick<Config, 'feeds' | 'listings'>,
  engine: FeedEngine,
  clock: Clock,
): Promise<StatusReport & { feedsOmitted: number }> {
  const states = (await engine.states()).sort((a, b) => b.lastReadAt - a.lastReadAt);
  const byTarget = new Map<string, FeedState>();
  for (const state of states) if (!byTarget.has(state.target)) byTarget.set(state.target, state);
  const redact = createRedactor(config.feeds.map((feed) => feed.path));
  const listings: StatusReport['listings'] = {};
  for (const id of Object.keys(config.listings)) {
    const target = ownFeedTarget(config, id);
    const state = target === undefined ? undefined : byTarget.get(target);
    listings[id] = {
      feed: target === undefined ? undefined : redact(target),
      ...(state ? { version: state.version, lastRead: iso(state.lastReadAt), lastChange: iso(state.changedAt) } : {}),
    };
  }
  return {
    generatedAt: iso(clock.now()),
    feeds: states.slice(0, maxFeedsShown).map((state) => feedStatus(state, redact)),
    feedsOmitted: Math.max(0, states.length - maxFeedsShown),
    listings,
  };
}

function feedStatus(state: FeedState, redact: Redactor): FeedStatus {
  return {
    feed: redact(state.target),
    listing: state.listing,
    ...(state.version === undefined ? {} : { version: state.version }),
    entities: state.entities,
    lastRead: iso(state.lastReadAt),
    lastChange: iso(state.changedAt),
    ...(state.lastError ? { lastError: { at: iso(state.lastError.at), reason: state.lastError.reason } } : {}),
    ...(state.hold ? { held: { since: iso(state.hold.since), entities: state.hold.entities } } : {}),
    ...(state.rekeyed ? { rekeyed: state.rekeyed } : {}),
    ...(state.unversioned ? { unversioned: state.unversioned } : {}),
  };
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}
