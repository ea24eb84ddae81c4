// A listing's availability as push decisions see it (SPEC "Push": what counts as a change worth
// pushing): the set of busy nights from today on, each named by the UTC date it starts on.
//
// Night rules (night D = the night that starts on date D, in UTC):
// - All-day span (VALUE=DATE) [start, end): nights start … end − 1. DTEND is exclusive, as Airbnb,
//   Booking.com and Vrbo export stays: the check-in date through the day before check-out.
// - Timed span: every date it touches, from the UTC date of its start through the UTC date of its end,
//   except that an end at exactly 00:00 UTC does not touch its date. This is conservative: a two-hour
//   maintenance block at noon blocks that night, a zero-length event blocks the night of its date,
//   and a timed stay ending at 11:00 also blocks the night of its check-out date.
//   Dates are UTC dates (an event at 00:30 in Paris falls on the UTC date before), or the dates of the
//   listing's zone when it has one (`zone`).
// - STATUS:CANCELLED and TRANSP:TRANSPARENT spans block nothing; TENTATIVE ones do (a hold is busy).
// - Only nights in [today, today + horizonDays) count, so a stay in progress blocks from today on and
//   past events contribute nothing: an event expiring out of the feed changes nothing.
// Entity identity (UID, DTSTAMP, SEQUENCE, SUMMARY) plays no part: re-keyed stays give the same set.
import { type EventSpan, parseEventSpans } from '../ical/parse.ts';
import { utcDate, wallClock } from './decide/dates.ts';
import { furthestRun } from './decide/edge-block.ts';

/** What busyNights read: the busy nights, how many VEVENTs could not be read (they block nothing), and
 * how many recurring events ran out of expansion budget (busy from then on: parse.ts says why). */
export type BusyNights = { nights: Set<string>; unreadable: number; busySafe?: number };

/** Nights are counted in [today, today + horizonDays); `today` is a YYYY-MM-DD. With `zone` (an IANA
 * name) timed events fall on that zone's dates. */
export type BusyNightsOptions = { today: string; horizonDays?: number; zone?: string };

/** How far ahead nights are counted unless told otherwise: two years, past every platform's export window. */
export const defaultHorizonDays = 730;

const dayMs = 24 * 60 * 60 * 1000;

/** A listing's busy nights (YYYY-MM-DD, each the night that starts on that date) from `today` on.
 * Never throws on the calendar text: an unreadable feed gives the nights it could read (maybe none). */
export async function busyNights(calendarText: string, options: BusyNightsOptions): Promise<BusyNights> {
  const { fromMs, untilMs } = nightWindow(options);
  if (untilMs === fromMs) return { nights: new Set(), unreadable: 0 };
  const { spans, unreadable, capped } = await withoutNodeIcalWarnings(() =>
    parseEventSpans(calendarText, { from: new Date(fromMs), expandUntil: new Date(untilMs) }));
  return { nights: nightsOfSpans(spans, options), unreadable, ...(capped > 0 ? { busySafe: capped } : {}) };
}

/** The instants that bound the nights counted: [today's midnight, today + horizonDays). */
export function nightWindow(options: BusyNightsOptions): { fromMs: number; untilMs: number } {
  const fromMs = dayOf(options.today);
  const horizonDays = options.horizonDays ?? defaultHorizonDays;
  if (!Number.isSafeInteger(horizonDays) || horizonDays < 0) {
    throw new RangeError(`horizonDays must be a non-negative integer, got ${horizonDays}`);
  }
  return { fromMs, untilMs: fromMs + horizonDays * dayMs };
}

/** The busy nights of already read spans, within the window of `options`. */
export function nightsOfSpans(spans: readonly EventSpan[], options: BusyNightsOptions): Set<string> {
  const { fromMs, untilMs } = nightWindow(options);
  const nights = new Set<string>();
  for (const span of spans) {
    if (span.status === 'CANCELLED' || span.transparent) continue;
    const [firstMs, endMs] = nightRange(span, options.zone);
    // Clamped to the window first, so a span of a thousand years costs at most horizonDays steps.
    for (let ms = Math.max(firstMs, fromMs); ms < Math.min(endMs, untilMs); ms += dayMs) {
      nights.add(isoDay(ms));
    }
  }
  return nights;
}

/** How many events make up the run of consecutive busy nights that holds the furthest busy night (0 when
 * there are none; counted up to 2): the window roll (decide/edge-block.ts) applies only to a block that
 * is one event, the exporter's own far block, never to bookings that happen to touch. `busy` is sorted. */
export function edgeRunEvents(spans: readonly EventSpan[], busy: readonly string[],
  options: BusyNightsOptions): number {
  const run = furthestRun(busy);
  if (!run) return 0;
  const { fromMs, untilMs } = nightWindow(options);
  const runFrom = Math.max(dayOf(run.from), fromMs);
  const runTo = Math.min(dayOf(run.to), untilMs);
  let events = 0;
  for (const span of spans) {
    if (span.status === 'CANCELLED' || span.transparent) continue;
    const [firstMs, endMs] = nightRange(span, options.zone);
    if (firstMs < runTo && endMs > runFrom) events += 1;
    if (events > 1) break;
  }
  return events;
}

// The first night a span blocks and the night after its last one, as UTC midnights.
function nightRange(span: EventSpan, zone: string | undefined): [number, number] {
  const startMs = span.start.getTime();
  const endMs = span.end.getTime();
  // parse.ts already gives all-day spans as UTC midnights with an exclusive end after the start.
  if (span.allDay) return [startMs, Math.max(endMs, startMs + dayMs)];
  if (zone !== undefined) {
    const start = wallClock(startMs, zone);
    const end = wallClock(endMs, zone);
    const first = dayOf(start.date);
    const last = endMs > startMs && end.secondOfDay === 0 ? dayOf(end.date) - dayMs : dayOf(end.date);
    return [first, Math.max(last, first) + dayMs];
  }
  const firstMs = floorDay(startMs);
  const lastMs = endMs > startMs && endMs === floorDay(endMs) ? endMs - dayMs : floorDay(endMs);
  return [firstMs, Math.max(lastMs, firstMs) + dayMs];
}

let activeParses = 0;
// The console.warn found in place, kept after the last run too: a mock that saved our filter and puts
// it back later must still reach the real one.
let outerWarn: typeof console.warn | undefined;

// node-ical prefixes every warning it prints; anything else is passed on to the console.warn in place.
function filteredWarn(...args: unknown[]): void {
  const [first] = args;
  if (typeof first === 'string' && first.startsWith('[node-ical]')) return;
  (outerWarn ?? noop).apply(console, args);
}

function noop(): void {}

/** Runs `run` with node-ical's console.warn lines dropped (a feed must not write to our logs), others
 * passed on. Overlapping runs share one filter, put in place by the first and removed by the last, so
 * concurrent parses never leave it behind; a console.warn replaced meanwhile by someone else stays. */
export async function withoutNodeIcalWarnings<T>(run: () => Promise<T>): Promise<T> {
  if (activeParses === 0 && console.warn !== filteredWarn) {
    outerWarn = console.warn;
    console.warn = filteredWarn;
  }
  activeParses += 1;
  try {
    return await run();
  } finally {
    activeParses -= 1;
    if (activeParses === 0 && console.warn === filteredWarn && outerWarn) console.warn = outerWarn;
  }
}

// A YYYY-MM-DD that is a real date, as its UTC midnight; anything else is a caller's bug.
function dayOf(date: string): number {
  const match = /^(\d{4})-(\d{2})-(\d{2})$/.exec(date);
  const ms = match ? Date.UTC(Number(match[1]), Number(match[2]) - 1, Number(match[3])) : Number.NaN;
  if (Number.isNaN(ms) || isoDay(ms) !== date) throw new RangeError(`not a YYYY-MM-DD date: ${date}`);
  return ms;
}

function floorDay(ms: number): number {
  return Math.floor(ms / dayMs) * dayMs;
}

function isoDay(ms: number): string {
  return utcDate(ms);
}
