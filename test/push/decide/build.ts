// Builders for the push-decision tests: reads of a listing's own feed as the sidecar stores them
// (src/push/plans.ts: nights counted from `countFrom(now, zone)` for 730 days, clipped and sorted), the
// decide() input for two of them, peers as evidence, and the instants the scenarios happen at.
import type { StoredNights } from '../../../src/feeds/change-log.ts';
import type { DecideInput, PeerEvidenceSource } from '../../../src/push/decide/decide.ts';
import { addDays, daysBetween, localDate } from '../../../src/push/decide/dates.ts';
import { countFrom, todayFor } from '../../../src/push/decide/today.ts';

/** How many days ahead the sidecar counts a listing's nights (availability.ts defaultHorizonDays). */
export const windowDays = 730;

export const dayMs = 86_400_000;
export const minuteMs = 60_000;

/** A stay as the exports write it: check-in and check-out (the day after the last night). */
export type Stay = readonly [checkIn: string, checkOut: string];

/** The instant of an ISO timestamp (ms). */
export function ms(iso: string): number {
  const value = Date.parse(iso);
  if (Number.isNaN(value)) throw new RangeError(`not an instant: ${iso}`);
  return value;
}

/** The stay of `nights` nights from `checkIn`. */
export function stay(checkIn: string, nights: number): Stay {
  return [checkIn, addDays(checkIn, nights)];
}

/** The nights of some stays: sorted, distinct. */
export function nightsOf(stays: readonly Stay[]): string[] {
  const nights = new Set<string>();
  for (const [from, to] of stays) {
    for (let night = from; night < to; night = addDays(night, 1)) nights.add(night);
  }
  return [...nights].sort();
}

/** One read of the listing's own feed at `atMs`, its nights counted the way the sidecar counts them. The
 * count starts at `countedAtMs` (when the read was planned; default: `atMs`). */
export function read(atMs: number, stays: readonly Stay[], zone?: string,
  options: { countedAtMs?: number } = {}): StoredNights {
  return readNights(atMs, nightsOf(stays), zone, options);
}

/** Like read(), from nights rather than stays. */
export function readNights(atMs: number, nights: Iterable<string>, zone?: string,
  options: { countedAtMs?: number } = {}): StoredNights {
  const today = countFrom(options.countedAtMs ?? atMs, zone);
  const end = addDays(today, windowDays);
  const busy = [...new Set(nights)].filter((night) => night >= today && night < end).sort();
  return {
    today, days: windowDays, ...(zone === undefined ? {} : { zone }), at: atMs, busy, unreadable: 0, busySafe: 0,
  };
}

/** decide()'s input for the step from `before` to `after` (both with `at`), as push.ts makes it. */
export function step(before: StoredNights | undefined, after: StoredNights, zone?: string,
  peers: readonly PeerEvidenceSource[] = []): DecideInput {
  const at = after.at as number;
  return {
    before, after, peers, today: todayFor(at, zone),
    elapsedMs: before?.at === undefined ? 0 : at - before.at, at,
  };
}

/** A peer feed as evidence: the nights it shows busy, the nights it freed (at `freedAt`), read at `readAt`. */
export function peer(name: string, readAt: number,
  shows: { busy?: readonly Stay[]; freed?: readonly Stay[]; freedAt?: number } = {}): PeerEvidenceSource {
  const freed: Record<string, number> = {};
  for (const night of nightsOf(shows.freed ?? [])) freed[night] = shows.freedAt ?? readAt;
  return { name, busy: nightsOf(shows.busy ?? []), freed, readAt };
}

/** The first instant (to the second) at which it is `date` in `zone`: the listing's local midnight. */
export function localMidnight(date: string, zone: string): number {
  // The local date is monotonic over these 30 hours for the zones the tests use (no DST change at midnight).
  let low = Date.parse(`${date}T00:00:00Z`) - 15 * 3_600_000; // before midnight anywhere (UTC+14 is the most)
  let high = Date.parse(`${date}T00:00:00Z`) + 13 * 3_600_000; // after midnight anywhere (UTC−12 is the least)
  if (localDate(low, zone) >= date || localDate(high, zone) < date) throw new RangeError(`no midnight: ${zone}`);
  while (high - low > 1_000) {
    const mid = low + Math.floor((high - low) / 2_000) * 1_000;
    if (localDate(mid, zone) >= date) high = mid;
    else low = mid;
  }
  return high;
}

/** The listing's edge block as SPEC words it, written independently of edge-block.ts: the run of
 * consecutive busy nights holding the furthest one, ≥ 28 nights long, its last night ≥ 180 days after
 * `today`. */
export function specEdgeBlock(busy: readonly string[], today: string): { from: string; to: string } | undefined {
  const set = new Set(busy);
  const last = [...busy].sort().at(-1);
  if (last === undefined) return undefined;
  let from = last;
  while (set.has(addDays(from, -1))) from = addDays(from, -1);
  if (daysBetween(from, last) + 1 < 28 || daysBetween(today, last) < 180) return undefined;
  return { from, to: addDays(last, 1) };
}

/** The zones the properties draw from (`undefined`: none configured, the conservative rule). */
export const zones = [
  'Europe/Rome', 'Pacific/Auckland', 'Pacific/Honolulu', 'America/New_York', 'Asia/Kolkata', 'Pacific/Kiritimati',
  'Etc/GMT+12', undefined,
] as const;

/** The real zones among them (where a property can actually be). */
export const realZones = zones.filter((zone): zone is NonNullable<typeof zone> => zone !== undefined);
