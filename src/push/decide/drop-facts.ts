// The facts judgeDrop (drop.ts) weighs, from two reads of a feed: its events before and after, and for a
// listing's own feed its future busy nights before and how many of them the read lost.
import type { StoredNights } from '../../feeds/change-log.ts';
import type { DropFacts } from './drop.ts';
import { commonWindow, rawDiff } from './nights-diff.ts';

/** Facts of one read; nights only when both reads counted them. */
export function dropFacts(events: { before: number; after: number }, nights: { before?: StoredNights | undefined;
  after?: StoredNights | undefined; }, touchedAgoMs?: number): DropFacts {
  const facts: DropFacts = { events, ...(touchedAgoMs === undefined ? {} : { touchedAgoMs }) };
  const { before, after } = nights;
  if (!before || !after) return facts;
  const { from, until } = commonWindow(before, after);
  const counted = before.busy.filter((night) => night >= from && night < until).length;
  return { ...facts, nights: { before: counted, lost: rawDiff(before, after).removed.length } };
}
