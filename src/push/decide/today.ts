// What "today" means for a listing (SPEC "Push": what today means). Nights are dates; a night that
// became busy or free matters to peers only while it is still ahead. With the listing's zone that is its
// local date. Without one the sidecar cannot know where the property is, so it takes the side that never
// misses a booking and never cries wolf at somebody's midnight:
// - a night that became busy counts while it is today or later somewhere on Earth (UTC−12), so a same-day
//   booking of tonight always notifies;
// - a night that became free counts only while it is still ahead everywhere (UTC+14), so a stay trimmed
//   at the property's local midnight (Booking.com re-keys the stay in progress then) never does.
import { dateAtOffset, localDate } from './dates.ts';

/** The first night that counts, for each direction of change. With a zone both are its local date
 * (within the clock skew allowed at midnight). */
export type Today = {
  /** Nights from this date on that became busy are news. */
  busyFrom: string;
  /** Nights from this date on that became free are news. */
  freeFrom: string;
  /** The IANA zone they were taken in; absent: the conservative rule. */
  zone?: string;
};

/** The furthest-behind offset on Earth (Baker Island, UTC−12) and the furthest-ahead (Kiribati, UTC+14). */
export const earliestOffsetHours = -12;
export const latestOffsetHours = 14;

/** The upstream's clock and ours differ, and an export job "at midnight" runs a little before or after it:
 * a night becoming busy counts by the date this long ago, one becoming free by the date this long ahead,
 * so a trim a few minutes early is no cancellation and a booking a few minutes late is still news. */
export const clockSkewMs = 15 * 60 * 1000;

/** "Today" at instant `ms` for a listing in `zone` (an IANA name already validated), or by the
 * conservative rule when there is none. */
export function todayFor(ms: number, zone?: string): Today {
  if (zone !== undefined) {
    return { busyFrom: localDate(ms - clockSkewMs, zone), freeFrom: localDate(ms + clockSkewMs, zone), zone };
  }
  return {
    busyFrom: dateAtOffset(ms - clockSkewMs, earliestOffsetHours),
    freeFrom: dateAtOffset(ms + clockSkewMs, latestOffsetHours),
  };
}

/** The first date a listing's nights must be counted from at `ms`: the earliest date that can still be
 * "today" for it, so that tonight is in the set wherever the property is. */
export function countFrom(ms: number, zone?: string): string {
  return todayFor(ms, zone).busyFrom;
}
