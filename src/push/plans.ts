// The connection map as push works from it (SPEC "Push"): each listing's own feed and its peers, and the
// rules derived from it that the feed engine needs too (which feed speaks for a listing, what to compute
// of it). Built once from the validated config.
import { createHash } from 'node:crypto';
import type { Clock } from '../clock.ts';
import { ownFeedTarget } from '../config/listings.ts';
import type { Config } from '../config/schema.ts';
import type { FeedKey, NightsRequest } from '../feeds/engine.ts';
import { defaultHorizonDays } from './availability.ts';
import { countFrom } from './decide/today.ts';
import type { Peer } from './peers.ts';
import { eachInSlices } from '../util/yield.ts';

/** One listing of the map: its own feed's target, its peers, and the IANA zone its "today" is taken in
 * (`listings.<id>.timezone`, else `push.timezone`; absent: the conservative rule). */
export type ListingPlan = {
  id: string;
  target: string;
  /** The key of the feed the sidecar reads for the listing: the target, or, when it sends credentials
   * (`headers`), a key of their own, which no client's request maps to (feedKey), so nobody without
   * them is ever answered from what they unlocked. */
  key: string;
  peers: Peer[];
  zone?: string;
  /** `listings.<id>.headers`: sent on the sidecar's own reads of the feed (credentials). */
  headers: Readonly<Record<string, string>>;
};

/** The map. */
export type ListingPlans = {
  readonly byId: ReadonlyMap<string, ListingPlan>;
  /** The listing `feed` speaks for: only its own feed, read anonymously, does. */
  ownPlan(feed: Pick<FeedKey, 'key' | 'target' | 'listing'>): ListingPlan | undefined;
  /** What the engine computes of a listing's own feed besides its snapshot: its nights from today. */
  nightsFor(feed: FeedKey): NightsRequest | undefined;
};

/** The map in force, which a reload replaces whole (SPEC "Reload"): whoever holds it reads `byId` at each use,
 * never keeps it. */
export type LivePlans = ListingPlans & {
  /** Puts `next` in force, at once: work started from the old map finishes with it, new work uses `next`. */
  replace(next: ListingPlans): void;
};

/** The map in force, starting with `initial`. */
export function createLivePlans(initial: ListingPlans): LivePlans {
  let current = initial;
  return {
    get byId() {
      return current.byId;
    },
    ownPlan: (feed) => current.ownPlan(feed),
    nightsFor: (feed) => current.nightsFor(feed),
    replace(next) {
      current = next;
    },
  };
}

type PlansConfig = Pick<Config, 'feeds' | 'listings'> & { push?: Pick<Config['push'], 'timezone'> };

/** Builds the plans of `config.listings`. */
export function createListingPlans(config: PlansConfig, clock: Clock): ListingPlans {
  const byId = new Map<string, ListingPlan>();
  const byTarget = new Map<string, ListingPlan>();
  for (const entry of Object.entries(config.listings)) addPlan(config, entry, byId, byTarget);
  return listingPlans(byId, byTarget, clock);
}

/** createListingPlans in slices of the event loop, for a reload while requests are served: a map of 10,000
 * listings held the loop ~40 ms built at once. */
export async function buildListingPlans(config: PlansConfig, clock: Clock): Promise<ListingPlans> {
  const byId = new Map<string, ListingPlan>();
  const byTarget = new Map<string, ListingPlan>();
  await eachInSlices(Object.entries(config.listings), (entry) => {
    addPlan(config, entry, byId, byTarget);
  });
  return listingPlans(byId, byTarget, clock);
}

function addPlan(config: PlansConfig, [id, listing]: [string, Config['listings'][string]],
  byId: Map<string, ListingPlan>, byTarget: Map<string, ListingPlan>): void {
  const target = ownFeedTarget(config, id);
  if (target === undefined) return;
  const zone = listing.timezone ?? config.push?.timezone;
  const plan: ListingPlan = {
    id,
    target,
    key: ownFeedKey(target, listing.headers),
    headers: listing.headers,
    ...(zone === undefined ? {} : { zone }),
    peers: listing.peers.map((p) => ({
      listing: id, name: p.name ?? new URL(p.url).host, url: p.url, notify: p.notify, headers: p.headers,
      ...(zone === undefined ? {} : { zone }),
    })),
  };
  byId.set(id, plan);
  byTarget.set(target, plan);
}

function listingPlans(byId: ReadonlyMap<string, ListingPlan>, byTarget: ReadonlyMap<string, ListingPlan>,
  clock: Clock): ListingPlans {
  const ownPlan = (feed: Pick<FeedKey, 'key' | 'target' | 'listing'>) => {
    const plan = byTarget.get(feed.target);
    return plan && feed.key === plan.key && plan.id === feed.listing ? plan : undefined;
  };
  return {
    byId,
    ownPlan,
    nightsFor: (feed) => {
      const plan = ownPlan(feed);
      return plan ? nightsRequestAt(clock.now(), plan.zone) : undefined;
    },
  };
}

/** Which nights of a listing in `zone` a read at `ms` counts: from the earliest date that can still be
 * "today" for it, so tonight is always counted; two days past the two-year window, so a night entering
 * its far end between daily reads is compared too. The sidecar and `icalpush replay` both use it. */
export function nightsRequestAt(ms: number, zone: string | undefined): NightsRequest {
  return { today: countFrom(ms, zone), days: defaultHorizonDays + 2, ...(zone === undefined ? {} : { zone }) };
}

/** The key of a listing's own feed as the sidecar reads it (see ListingPlan.key). */
export function ownFeedKey(target: string, headers: Readonly<Record<string, string>>): string {
  const names = Object.keys(headers).sort();
  if (names.length === 0) return target;
  const hash = createHash('sha256');
  for (const name of names) hash.update(`${name.toLowerCase()}\u0000${headers[name] ?? ''}\u0000`);
  return `${target} own:${hash.digest('base64url').slice(0, 16)}`;
}
