// The facts judgeDrop (drop.ts) weighs, from two reads of a feed: its events before and after, and for a
// listing's own feed its future busy nights before and how many of them the read lost, net: nights that
// are no longer ahead are not lost (a stay trimmed at midnight), and a booking moved to other dates loses
// none (as many nights come back elsewhere).
import type { StoredNights } from '../../feeds/change-log.ts';
import type { DropFacts } from './drop.ts';
import { commonWindow } from './nights-diff.ts';
import { todayFor } from './today.ts';

/** Facts of one read; nights only when both reads counted them. `touchedAgoMs`: since the listing's last
 * trigger 2xx or operator notify. */
export function dropFacts(events: { before: number; after: number },
  nights: { before?: StoredNights | undefined; after?: StoredNights | undefined }, touchedAgoMs?: number): DropFacts {
  const facts: DropFacts = { events, ...(touchedAgoMs === undefined ? {} : { touchedAgoMs }) };
  const { before, after } = nights;
  if (!before || !after) return facts;
  const window = commonWindow(before, after);
  // Nights still ahead everywhere the listing may be (its zone's date, or UTC+14 without one).
  const ahead = after.at === undefined ? window.from : todayFor(after.at, after.zone).freeFrom;
  const from = ahead > window.from ? ahead : window.from;
  const count = (busy: readonly string[]) => busy.filter((night) => night >= from && night < window.until).length;
  const was = count(before.busy);
  return { ...facts, nights: { before: was, lost: Math.max(0, was - count(after.busy)) } };
}
