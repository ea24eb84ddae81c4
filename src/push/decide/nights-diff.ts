// The nights that changed between two reads of a listing (SPEC "Push": what counts as a change worth
// pushing): compared over the days both reads counted, so a night entering the far end of the window
// or passing at its near end is no change, then split by what "today" lets count as news.
import type { StoredNights } from '../../feeds/change-log.ts';
import { addDays } from './dates.ts';
import type { Today } from './today.ts';

/** Nights that became busy and nights that became free, each sorted ascending. */
export type NightsDiff = { added: string[]; removed: string[] };

/** What changed between two reads: the nights that are news, and those that changed but are no longer
 * ahead (a stay trimmed to start today, a night passing): those notify nobody. */
export type CountedDiff = NightsDiff & { passed: NightsDiff };

/** The days both reads counted: [from, until). */
export function commonWindow(before: StoredNights, after: StoredNights): { from: string; until: string } {
  const from = before.today > after.today ? before.today : after.today;
  const endBefore = addDays(before.today, before.days);
  const endAfter = addDays(after.today, after.days);
  return { from, until: endBefore < endAfter ? endBefore : endAfter };
}

/** Every night that became busy or free within the common window, sorted. */
export function rawDiff(before: StoredNights, after: StoredNights): NightsDiff {
  const { from, until } = commonWindow(before, after);
  const within = (night: string) => night >= from && night < until;
  const was = new Set(before.busy.filter(within));
  const is = new Set(after.busy.filter(within));
  return {
    added: [...is].filter((night) => !was.has(night)).sort(),
    removed: [...was].filter((night) => !is.has(night)).sort(),
  };
}

/** The change between two reads, split by `today`: a night that became busy counts from
 * `today.busyFrom`, one that became free from `today.freeFrom`. */
export function countedDiff(before: StoredNights, after: StoredNights, today: Today): CountedDiff {
  const raw = rawDiff(before, after);
  return {
    added: raw.added.filter((night) => night >= today.busyFrom),
    removed: raw.removed.filter((night) => night >= today.freeFrom),
    passed: {
      added: raw.added.filter((night) => night < today.busyFrom),
      removed: raw.removed.filter((night) => night < today.freeFrom),
    },
  };
}

/** True when nothing changed. */
export function isEmptyDiff(diff: NightsDiff): boolean {
  return diff.added.length === 0 && diff.removed.length === 0;
}
