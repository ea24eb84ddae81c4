// The window roll (SPEC "Push"): many exporters publish the far edge of their booking window as one long
// block that moves every day (Airbnb "Not available" from today + N days; Booking.com's far "CLOSED"
// block). Its daily move is the passing of time, not a booking: it notifies nobody by itself.
import type { StoredNights } from '../../feeds/change-log.ts';
import { addDays, daysBetween } from './dates.ts';
import type { NightsDiff } from './nights-diff.ts';

/** A run of consecutive busy nights: `from` is its first night, `to` the day after its last (check-out). */
export type Block = { from: string; to: string };

/** The numbers of the rule: an edge block is at least `minNights` long and its last night at least
 * `minAheadDays` ahead; a roll moves each end later by at most the days elapsed + `slackDays`. */
export const edgeBlockRule = { minNights: 28, minAheadDays: 180, slackDays: 2 } as const;

/** The listing's edge block: the run of consecutive busy nights that holds its furthest busy night, when
 * that run is long enough and far enough ahead, and (when the read says how many events make it) one
 * event; otherwise undefined. `nights.busy` is sorted. */
export function edgeBlock(nights: Pick<StoredNights, 'today' | 'busy' | 'edgeEvents'>): Block | undefined {
  // Bookings that touch (ten stays back to back, a stay after a long one) are no exporter's block.
  if (nights.edgeEvents !== undefined && nights.edgeEvents !== 1) return undefined;
  const run = furthestRun(nights.busy);
  if (!run) return undefined;
  const last = addDays(run.to, -1);
  if (daysBetween(run.from, run.to) < edgeBlockRule.minNights) return undefined;
  if (daysBetween(nights.today, last) < edgeBlockRule.minAheadDays) return undefined;
  return run;
}

/** The run of consecutive busy nights that holds the furthest one (`busy` sorted, distinct). */
export function furthestRun(busy: readonly string[]): Block | undefined {
  const last = busy.at(-1);
  if (last === undefined) return undefined;
  // busy[i..end] is one run exactly when it spans (end − i) days (the nights are sorted and distinct), so
  // the run's first night is found by binary search, not by walking back night by night.
  const end = busy.length - 1;
  let low = 0;
  let high = end;
  while (low < high) {
    const mid = (low + high) >> 1;
    if (daysBetween(busy[mid] as string, last) === end - mid) high = mid;
    else low = mid + 1;
  }
  return { from: busy[low] as string, to: addDays(last, 1) };
}

/** True when `diff` (nonempty) only moves the edge block's start and/or end later, each by at most
 * `elapsedDays` + slack: the roll. Anything else (a booking anywhere else, one adjacent to the block, a
 * block that shrinks at its end or jumps further) is not. */
export function isWindowRoll(diff: NightsDiff, before: Block | undefined, after: Block | undefined,
  elapsedDays: number): boolean {
  if (!before || !after) return false;
  if (diff.added.length === 0 && diff.removed.length === 0) return false;
  const limit = Math.max(0, elapsedDays) + edgeBlockRule.slackDays;
  const startShift = daysBetween(before.from, after.from);
  const endShift = daysBetween(before.to, after.to);
  if (startShift < 0 || startShift > limit || endShift < 0 || endShift > limit) return false;
  // Freed nights only at the start of the block, newly busy ones only past its old end.
  return diff.removed.every((night) => night >= before.from && night < after.from) &&
    diff.added.every((night) => night >= before.to && night < after.to);
}
