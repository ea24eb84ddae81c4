// What the sidecar saw happen to each listing, and when: a proxied request matching a trigger got a 2xx,
// an operator declared a change, a peer pushed, the feed changed. The drop rule reads it (a drop right
// after a trigger or an operator notify is a real cancellation, SPEC "Push"); status shows it.
import { LRUCache } from 'lru-cache';
import type { Clock } from '../clock.ts';

/** What happened. */
export type ActivityKind = 'trigger' | 'operator' | 'inbound' | 'change';

/** How long a listing counts as active after any of them: the watch reads it every `interval` meanwhile,
 * the others up to every `idleInterval` (SPEC "Push": activity in the last 7 days). */
export const activeForMs = 7 * 24 * 60 * 60 * 1000;

/** The last time of each kind, in ms. */
export type ListingActivityTimes = Partial<Record<ActivityKind, number>>;

/** Listing activity, in memory, bounded. */
export type ListingActivity = {
  touch(listing: string, kind: ActivityKind): void;
  /** The last trigger 2xx or operator notify of `listing` (ms), the moments a drop is a cancellation. */
  lastChangeSeen(listing: string): number | undefined;
  times(listing: string): ListingActivityTimes;
  /** The last time anything of any kind was seen of `listing` (ms). */
  lastSeen(listing: string): number | undefined;
  /** Calls `listener` on every touch (the watch moves a listing that becomes active to its active interval). */
  onTouch(listener: (listing: string) => void): void;
};

/** Creates the record; `max` bounds the listings remembered (least recently touched go first). */
export function createListingActivity(clock: Clock, max = 100_000): ListingActivity {
  const byListing = new LRUCache<string, ListingActivityTimes>({ max });
  const listeners: Array<(listing: string) => void> = [];
  return {
    touch(listing, kind) {
      const times = byListing.get(listing) ?? {};
      times[kind] = clock.now();
      byListing.set(listing, times);
      for (const listener of listeners) listener(listing);
    },
    onTouch(listener) {
      listeners.push(listener);
    },
    lastChangeSeen(listing) {
      const times = byListing.peek(listing);
      if (!times) return undefined;
      const seen = [times.trigger, times.operator].filter((t) => t !== undefined);
      return seen.length > 0 ? Math.max(...seen) : undefined;
    },
    times: (listing) => ({ ...byListing.peek(listing) }),
    lastSeen(listing) {
      const times = Object.values(byListing.peek(listing) ?? {});
      return times.length > 0 ? Math.max(...times) : undefined;
    },
  };
}
