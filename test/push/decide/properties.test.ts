// Properties of the push decision (SPEC "Push"), over random zones (and none: the conservative rule) and
// random instants across 2026–2028 at any clock time, reads built the way the sidecar builds them:
// 1. a booking or cancellation in the window that no peer explains and that is not roll-shaped is primary;
// 2. time passing (DTSTAMP churn, re-keyed UIDs, a trim at local midnight, past events expiring, a later
//    read, the edge block rolling by ≤ elapsed + 2 days) is never primary;
// 3. decisions are deterministic, faithful to the nights, and bounded.
// DECIDE_SEED=n replays a run; DECIDE_RUNS=n runs more (or fewer) cases.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import type { StoredNights } from '../../../src/feeds/change-log.ts';
import {
  decide, type DecideInput, type Decision, type NightRunsDiff, type PeerEvidenceSource,
} from '../../../src/push/decide/decide.ts';
import { addDays, daysBetween, utcDate } from '../../../src/push/decide/dates.ts';
import { maxRuns, nightRuns, nightsOfRuns } from '../../../src/push/decide/night-runs.ts';
import { countFrom, todayFor } from '../../../src/push/decide/today.ts';
import {
  dayMs, localMidnight, minuteMs, nightsOf, read, readNights, realZones, specEdgeBlock, type Stay, stay, step,
  windowDays, zones,
} from './build.ts';

const numRuns = Number(process.env.DECIDE_RUNS ?? 200);
const seed = process.env.DECIDE_SEED === undefined ? undefined : Number(process.env.DECIDE_SEED);
const params = { numRuns, ...(seed === undefined ? {} : { seed }) };

const zoneArb = fc.constantFrom(...zones);
const realZoneArb = fc.constantFrom(...realZones);
const instantArb = fc.integer({ min: Date.UTC(2026, 0, 1), max: Date.UTC(2028, 11, 31, 23, 59, 59, 999) });
/** A stay as offsets from a base date. */
type StaySpec = { start: number; nights: number };
const staySpec = (min: number, max: number, maxNights = 21) =>
  fc.record({ start: fc.integer({ min, max }), nights: fc.integer({ min: 1, max: maxNights }) });
const toStays = (base: string, specs: readonly StaySpec[]): Stay[] =>
  specs.map((s) => stay(addDays(base, s.start), s.nights));

const runsOf = (added: readonly string[], removed: readonly string[]): NightRunsDiff =>
  ({ added: nightRuns(added).runs, removed: nightRuns(removed).runs });

/** The counted change between two reads as SPEC words it: nights busy in one read and not the other, over
 * the days both counted, a booked night from `busyFrom` on, a freed one from `freeFrom` on; and the
 * nights that changed before those (passed). Written independently of nights-diff.ts. */
function specDiff(before: StoredNights, after: StoredNights, at: number, zone: string | undefined) {
  const today = todayFor(at, zone);
  const from = before.today > after.today ? before.today : after.today;
  const untilBefore = addDays(before.today, before.days);
  const untilAfter = addDays(after.today, after.days);
  const until = untilBefore < untilAfter ? untilBefore : untilAfter;
  const was = new Set(before.busy);
  const is = new Set(after.busy);
  const inCommon = (night: string) => night >= from && night < until;
  const booked = after.busy.filter((night) => inCommon(night) && !was.has(night));
  const freed = before.busy.filter((night) => inCommon(night) && !is.has(night));
  return {
    added: booked.filter((night) => night >= today.busyFrom),
    removed: freed.filter((night) => night >= today.freeFrom),
    passed: {
      added: booked.filter((night) => night < today.busyFrom),
      removed: freed.filter((night) => night < today.freeFrom),
    },
    until,
    today,
  };
}

const describeCase = (d: Decision) => `${d.kind}/${d.rule}: ${d.why}`;

describe('property 1: a change no peer explains and not roll-shaped is primary, however far ahead', () => {
  test('a booking or a cancellation anywhere in the window, with peers explaining nothing or part of it', () => {
    fc.assert(fc.property(
      zoneArb, instantArb, fc.integer({ min: 1_000, max: 3 * dayMs }),
      fc.array(staySpec(-10, 725), { maxLength: 12 }),
      fc.option(fc.record({ start: fc.integer({ min: 300, max: 560 }), nights: fc.integer({ min: 28, max: 170 }) }),
        { nil: undefined }),
      fc.record({ book: fc.boolean(), at: fc.nat(), length: fc.integer({ min: 1, max: 14 }) }),
      fc.record({
        some: fc.boolean(), mask: fc.array(fc.boolean(), { minLength: 14, maxLength: 14 }), first: fc.boolean(),
      }),
      fc.array(fc.integer({ min: -5, max: windowDays }), { maxLength: 30 }),
      (zone, t0, elapsedMs, specs, edge, change, explainer, noise) => {
        const base = countFrom(t0, zone);
        const stays = toStays(base, edge ? [...specs, edge] : specs);
        const nightsBefore = nightsOf(stays);
        const before = readNights(t0, nightsBefore, zone);
        const t1 = t0 + elapsedMs;
        const today = todayFor(t1, zone);
        const commonEnd = addDays(before.today, windowDays);
        let run: string[];
        if (change.book) {
          const from = addDays(today.busyFrom, change.at % daysBetween(today.busyFrom, commonEnd));
          run = Array.from({ length: change.length }, (_, i) => addDays(from, i)).filter((night) => night < commonEnd);
        } else {
          const candidates = before.busy.filter((night) => night >= today.freeFrom && night < commonEnd);
          fc.pre(candidates.length > 0);
          const from = candidates[change.at % candidates.length] as string;
          run = Array.from({ length: change.length }, (_, i) => addDays(from, i));
        }
        const runSet = new Set(run);
        const nightsAfter = change.book
          ? [...nightsBefore, ...run] : nightsBefore.filter((night) => !runSet.has(night));
        const after = readNights(t1, nightsAfter, zone);
        const expected = specDiff(before, after, t1, zone);
        const changed = [...expected.added, ...expected.removed];
        fc.pre(changed.length > 0);
        // Not roll-shaped: nothing touched within the edge block or just past its end.
        const block = specEdgeBlock(before.busy, before.today);
        if (block) fc.pre(changed.every((night) => night < block.from || night >= addDays(block.to, 8)));

        const explained = new Set(explainer.some ? changed.filter((_, i) => explainer.mask[i]) : []);
        if (explained.size === changed.length) explained.delete(changed.at(-1) as string);
        const airbnb: PeerEvidenceSource = {
          name: 'airbnb', readAt: t1 - 5 * minuteMs,
          busy: expected.added.filter((night) => explained.has(night)),
          freed: Object.fromEntries(expected.removed.filter((night) => explained.has(night))
            .map((night) => [night, t1 - minuteMs])),
        };
        const noiseNights = noise.map((offset) => addDays(today.busyFrom, offset));
        const vrbo: PeerEvidenceSource = {
          name: 'vrbo', readAt: t1 - hourMs,
          busy: [...new Set(noiseNights.filter((night) => !expected.added.includes(night)))].sort(),
          freed: Object.fromEntries(noiseNights.filter((night) => !expected.removed.includes(night))
            .map((night) => [night, t1])),
        };
        const peers = explainer.first ? [airbnb, vrbo] : [vrbo, airbnb];

        const got = decide(step(before, after, zone, peers));
        assert.equal(got.kind, 'primary', describeCase(got));
        assert.equal(got.rule, 'unexplained-nights');
        assert.deepEqual(got.nights, runsOf(expected.added, expected.removed));
        if (explained.size === 0) {
          assert.equal(got.primary, undefined);
          assert.deepEqual(got.evidence, []);
        } else {
          const unexplained = (nights: string[]) => nights.filter((night) => !explained.has(night));
          assert.deepEqual(got.primary, runsOf(unexplained(expected.added), unexplained(expected.removed)));
          assert.ok(got.evidence.every((e) => e.peer === 'airbnb'));
          assert.deepEqual(nightsOfRuns(got.evidence.map((e) => e.night)).sort(), [...explained].sort());
        }
      },
    ), params);
  });

  test('the edge block moving other than later by at most elapsed + 2 days is primary (and by that much, a roll)', () => {
    fc.assert(fc.property(
      zoneArb, instantArb, fc.integer({ min: 1_000, max: 3.5 * dayMs }),
      fc.array(staySpec(-10, 260), { maxLength: 8 }),
      fc.record({ start: fc.integer({ min: 300, max: 560 }), nights: fc.integer({ min: 45, max: 140 }) }),
      fc.integer({ min: -8, max: 10 }), fc.integer({ min: -8, max: 10 }),
      (zone, t0, elapsedMs, specs, edge, startShift, endShift) => {
        fc.pre(startShift !== 0 || endShift !== 0);
        const base = countFrom(t0, zone);
        const stays = toStays(base, specs).filter(([, to]) => daysBetween(to, addDays(base, edge.start)) > 8);
        const block: Stay = [addDays(base, edge.start), addDays(base, edge.start + edge.nights)];
        const movedBlock: Stay = [addDays(block[0], startShift), addDays(block[1], endShift)];
        const t1 = t0 + elapsedMs;
        const before = read(t0, [...stays, block], zone);
        const after = read(t1, [...stays, movedBlock], zone);
        const floorDays = Math.floor(elapsedMs / dayMs);
        // "Days elapsed" is the time elapsed, or the UTC dates the reads crossed: between the two, either kind.
        const low = floorDays + 2;
        const high = Math.max(floorDays, daysBetween(utcDate(t0), utcDate(t1))) + 2;
        const within = (shift: number, limit: number) => shift >= 0 && shift <= limit;
        const got = decide(step(before, after, zone));
        if (within(startShift, low) && within(endShift, low)) assert.equal(got.kind, 'roll', describeCase(got));
        else if (!within(startShift, high) || !within(endShift, high)) assert.equal(got.kind, 'primary', describeCase(got));
        else assert.ok(got.kind === 'roll' || got.kind === 'primary', describeCase(got));
        assert.equal(got.rule, got.kind === 'roll' ? 'window-roll' : 'unexplained-nights');
      },
    ), params);
  });
});

const hourMs = 60 * minuteMs;

/** The outcome of a "time passes" step: never primary, and exactly what SPEC expects. */
function assertTimePasses(input: DecideInput, expected: 'unchanged' | 'no-night-change' | 'roll' | 'roll-or-none'): Decision {
  const got = decide(input);
  assert.notEqual(got.kind, 'primary', describeCase(got));
  assert.equal(got.primary, undefined);
  if (expected === 'unchanged') assert.equal(got.rule, 'nights-unchanged', describeCase(got));
  if (expected === 'no-night-change') assert.equal(got.kind, 'no-night-change', describeCase(got));
  if (expected === 'roll') assert.equal(got.kind, 'roll', describeCase(got));
  if (expected === 'roll-or-none') assert.ok(got.kind === 'roll' || got.kind === 'no-night-change', describeCase(got));
  return got;
}

describe('property 2: time passing is never primary', () => {
  test('DTSTAMP churn and re-keyed UIDs: the same nights, re-split into other events, read later', () => {
    fc.assert(fc.property(
      zoneArb, instantArb, fc.integer({ min: 1_000, max: 3 * dayMs }), fc.array(staySpec(-10, 740), { maxLength: 15 }),
      fc.array(fc.nat(), { maxLength: 15 }),
      (zone, t0, elapsedMs, specs, cuts) => {
        const base = countFrom(t0, zone);
        const stays = toStays(base, specs);
        // Re-keyed: each stay may come back as two events for the same nights.
        const rekeyed = stays.flatMap(([from, to], i) => {
          const length = daysBetween(from, to);
          const cut = length > 1 ? 1 + ((cuts[i] ?? 0) % (length - 1)) : 0;
          const parts: Stay[] = cut === 0 ? [[from, to]] : [[from, addDays(from, cut)], [addDays(from, cut), to]];
          return parts;
        }).reverse();
        assertTimePasses(step(read(t0, stays, zone), read(t0 + elapsedMs, rekeyed, zone), zone), 'unchanged');
      },
    ), params);
  });

  test('the same calendar read 1–3 days later, the stays that ended dropping out of the export', () => {
    fc.assert(fc.property(
      zoneArb, realZoneArb, instantArb, fc.integer({ min: 1, max: 3 }),
      fc.integer({ min: -6 * hourMs, max: 6 * hourMs }),
      fc.array(staySpec(-10, 740), { maxLength: 15 }),
      (zone, somewhere, t0, days, jitter, specs) => {
        const t1 = t0 + days * dayMs + jitter;
        const base = countFrom(t0, zone);
        const stays = toStays(base, specs);
        // Past events expire: the export drops the stays that ended by the listing's own today (where it
        // is: its zone when configured, anywhere when not).
        const ended = countFrom(t1, zone ?? somewhere);
        const kept = stays.filter(([, to]) => to > ended);
        const got = assertTimePasses(step(read(t0, stays, zone), read(t1, kept, zone), zone), 'no-night-change');
        // With the zone set nothing changed in the days both reads counted; without it only passed nights did.
        if (zone !== undefined) assert.equal(got.rule, 'nights-unchanged', describeCase(got));
        assert.deepEqual(got.passed?.added ?? [], []);
      },
    ), params);
  });

  test('a stay trimmed to start today at the listing\'s local midnight (Booking.com), zone set or not', () => {
    fc.assert(fc.property(
      realZoneArb, fc.boolean(), instantArb, fc.integer({ min: 1_000, max: 3 * dayMs }),
      fc.integer({ min: 0, max: 10 * minuteMs }),
      fc.option(fc.integer({ min: 1, max: 60_000 }), { nil: undefined }),
      fc.integer({ min: 1, max: 6 }), fc.integer({ min: 1, max: 10 }), fc.array(staySpec(12, 720), { maxLength: 10 }),
      (where, zoneSet, instant, sinceBefore, afterMidnight, plannedEarlyBy, nightsDone, nightsLeft, specs) => {
        const zone = zoneSet ? where : undefined;
        const date = countFrom(instant, where);
        const midnight = localMidnight(date, where);
        const others = toStays(date, specs);
        const inProgress: Stay = [addDays(date, -nightsDone), addDays(date, nightsLeft)];
        const at = midnight + afterMidnight;
        const before = read(midnight - sinceBefore, [...others, inProgress], zone);
        const after = read(at, [...others, [date, inProgress[1]]], zone,
          plannedEarlyBy === undefined ? {} : { countedAtMs: at - plannedEarlyBy });
        const got = assertTimePasses(step(before, after, zone), 'no-night-change');
        assert.ok(got.rule === 'night-passing' || got.rule === 'nights-unchanged', describeCase(got));
        // Whatever was counted of the trimmed nights is reported as passed.
        for (const night of nightsOfRuns(got.passed?.removed ?? [])) assert.ok(night < date, night);
      },
    ), params);
  });

  test('the edge block rolling later by at most elapsed + 2 days (Airbnb "Not available", Booking.com CLOSED)', () => {
    fc.assert(fc.property(
      zoneArb, instantArb, fc.integer({ min: 1_000, max: 3.5 * dayMs }), fc.array(staySpec(-10, 280), { maxLength: 8 }),
      fc.record({ start: fc.integer({ min: 300, max: 560 }), nights: fc.integer({ min: 40, max: 140 }) }),
      fc.boolean(), fc.nat(), fc.nat(),
      (zone, t0, elapsedMs, specs, edge, pastTheWindow, s, e) => {
        const limit = Math.floor(elapsedMs / dayMs) + 2;
        const startShift = s % (limit + 1);
        const endShift = e % (limit + 1);
        fc.pre(startShift > 0 || (endShift > 0 && !pastTheWindow));
        const base = countFrom(t0, zone);
        const from = addDays(base, edge.start);
        const stays = toStays(base, specs).filter(([, to]) => daysBetween(to, from) > 1);
        // Airbnb's block runs past the window's end (only its start is seen moving); Booking.com's ends inside.
        const to = pastTheWindow ? addDays(base, windowDays + 60) : addDays(from, edge.nights);
        const before = read(t0, [...stays, [from, to]], zone);
        const after = read(t0 + elapsedMs, [...stays, [addDays(from, startShift), addDays(to, endShift)]], zone);
        const got = assertTimePasses(step(before, after, zone), 'roll');
        assert.equal(got.rule, 'window-roll');
      },
    ), params);
  });

  test('all of it at once: the morning after (trim, expired stays, the block rolling, re-keyed events)', () => {
    fc.assert(fc.property(
      realZoneArb, fc.boolean(), instantArb, fc.integer({ min: minuteMs, max: 3 * dayMs }),
      fc.integer({ min: 0, max: 10 * minuteMs }), fc.integer({ min: 1, max: 6 }), fc.integer({ min: 1, max: 10 }),
      fc.array(staySpec(12, 280), { maxLength: 8 }), fc.array(staySpec(-12, -1, 6), { maxLength: 4 }),
      fc.record({ start: fc.integer({ min: 300, max: 560 }), nights: fc.integer({ min: 40, max: 140 }) }),
      fc.nat(), fc.nat(),
      (where, zoneSet, instant, sinceBefore, afterMidnight, nightsDone, nightsLeft, specs, pastSpecs, edge, s, e) => {
        const zone = zoneSet ? where : undefined;
        const date = countFrom(instant, where);
        const midnight = localMidnight(date, where);
        const at = midnight + afterMidnight;
        const elapsedMs = afterMidnight + sinceBefore;
        const limit = Math.floor(elapsedMs / dayMs) + 2;
        const from = addDays(date, edge.start);
        const to = addDays(from, edge.nights);
        const moved: Stay = [addDays(from, s % (limit + 1)), addDays(to, e % (limit + 1))];
        const future = toStays(date, specs).filter(([, checkOut]) => daysBetween(checkOut, from) > 1);
        // Stays that ended by the listing's today: in the earlier read, gone from the later one.
        const past = toStays(date, pastSpecs).filter(([, checkOut]) => checkOut <= date);
        const inProgress: Stay = [addDays(date, -nightsDone), addDays(date, nightsLeft)];
        const before = read(midnight - sinceBefore, [...past, inProgress, ...future, [from, to]], zone);
        const trimmedStay: Stay = [date, inProgress[1]];
        const after = read(at, [...future, moved, trimmedStay].reverse(), zone);
        const blockMoved = moved[0] !== from || moved[1] !== to;
        assertTimePasses(step(before, after, zone), blockMoved ? 'roll' : 'no-night-change');
      },
    ), params);
  });
});

/** A calendar for the bounds property: stays, a night on and a night off for months, or every night. */
const calendarArb = fc.oneof(
  fc.array(staySpec(-20, 760), { maxLength: 20 }).map((specs) => ({ kind: 'stays' as const, specs })),
  fc.record({ kind: fc.constant('alternating' as const), start: fc.integer({ min: -20, max: 300 }),
    length: fc.integer({ min: 1, max: 760 }), phase: fc.integer({ min: 0, max: 1 }) }),
  fc.record({ kind: fc.constant('every' as const), start: fc.integer({ min: -20, max: 300 }),
    length: fc.integer({ min: 1, max: 760 }) }),
);
type Calendar = typeof calendarArb extends fc.Arbitrary<infer C> ? C : never;

function nightsOfCalendar(base: string, calendar: Calendar): string[] {
  if (calendar.kind === 'stays') return nightsOf(toStays(base, calendar.specs));
  const step = calendar.kind === 'alternating' ? 2 : 1;
  const nights: string[] = [];
  for (let i = calendar.kind === 'alternating' ? calendar.phase : 0; i < calendar.length; i += step) {
    nights.push(addDays(base, calendar.start + i));
  }
  return nights;
}

const kindOfRule = {
  'first-read': 'no-night-change', 'nights-unchanged': 'no-night-change', 'night-passing': 'no-night-change',
  'peers-explain': 'imported', 'window-roll': 'roll', 'unexplained-nights': 'primary',
} as const;

/** The runs of `nights`, cut at the bound. */
const capped = (nights: readonly string[]) => nightRuns(nights, Number.POSITIVE_INFINITY).runs.slice(0, maxRuns);
const runCount = (nights: readonly string[]) => nightRuns(nights, Number.POSITIVE_INFINITY).runs.length;

describe('property 3: decisions are deterministic, faithful and bounded', () => {
  test('any two reads, any peers: the same input gives the same decision, which tells the nights and stays small', () => {
    fc.assert(fc.property(
      zoneArb, instantArb, fc.integer({ min: 0, max: 5 * dayMs }), fc.boolean(), calendarArb,
      fc.option(calendarArb, { nil: undefined, freq: 4 }),
      fc.array(fc.record({ busy: calendarArb, freed: calendarArb, ago: fc.integer({ min: 0, max: 2 * dayMs }) }),
        { maxLength: 3 }),
      (zone, t0, elapsedMs, first, calendarBefore, calendarAfter, peerSpecs) => {
        const base = countFrom(t0, zone);
        const t1 = t0 + elapsedMs;
        const before = first ? undefined : readNights(t0, nightsOfCalendar(base, calendarBefore), zone);
        // Sometimes the same calendar read again (and then perhaps a little changed by the peers' nights).
        const after = readNights(t1, calendarAfter === undefined
          ? nightsOfCalendar(base, calendarBefore) : nightsOfCalendar(base, calendarAfter), zone);
        const peers: PeerEvidenceSource[] = peerSpecs.map((p, i) => ({
          name: `peer-${i}`, readAt: t1 - p.ago, busy: nightsOfCalendar(base, p.busy),
          freed: Object.fromEntries(nightsOfCalendar(base, p.freed).map((night) => [night, t1 - p.ago - i])),
        }));
        const input = step(before, after, zone, peers);
        const copy = structuredClone(input);
        const got = decide(input);
        assert.deepEqual(decide(copy), got, 'deterministic');
        assert.deepEqual(input, structuredClone(copy), 'the input is not changed');
        assert.deepEqual(decide(input), got, 'deterministic on a second call');

        // Bounded.
        for (const list of [got.nights.added, got.nights.removed, got.primary?.added ?? [], got.primary?.removed ?? [],
          got.passed?.added ?? [], got.passed?.removed ?? [], got.evidence]) {
          assert.ok(list.length <= maxRuns, `a list of ${list.length}`);
        }
        assert.ok(got.why.length <= 500, got.why);
        assert.equal(kindOfRule[got.rule as keyof typeof kindOfRule], got.kind);
        assert.deepEqual(got.notified, []);
        if (!before) {
          assert.equal(got.rule, 'first-read');
          return;
        }

        // Faithful: the nights are the counted change (cut at the bound, and then said so).
        const expected = specDiff(before, after, t1, zone);
        assert.deepEqual(got.nights, { added: capped(expected.added), removed: capped(expected.removed) });
        const passedAny = expected.passed.added.length + expected.passed.removed.length > 0;
        assert.deepEqual(got.passed,
          passedAny ? { added: capped(expected.passed.added), removed: capped(expected.passed.removed) } : undefined);
        const cut = [expected.added, expected.removed, expected.passed.added, expected.passed.removed]
          .some((nights) => runCount(nights) > maxRuns);
        if (cut) assert.equal(got.truncated, true);

        // Evidence: each entry names a peer that shows what it is said to show, for nights that changed so.
        const added = new Set(expected.added);
        const removed = new Set(expected.removed);
        for (const e of got.evidence) {
          const source = peers.find((p) => p.name === e.peer);
          assert.ok(source, e.peer);
          for (const night of nightsOfRuns([e.night])) {
            if (e.shows === 'busy') assert.ok(added.has(night) && source.busy.includes(night), night);
            else assert.ok(removed.has(night) && source.freed[night] !== undefined, night);
          }
          const readAt = e.shows === 'busy' ? source.readAt : source.freed[nightsOfRuns([e.night])[0] as string];
          assert.equal(e.readAt, new Date(readAt as number).toISOString());
        }

        // The kind follows from what peers explain.
        const unexplainedAdded = expected.added.filter((night) => !peers.some((p) => p.busy.includes(night)));
        const unexplainedRemoved = expected.removed.filter((night) => !peers.some((p) => p.freed[night] !== undefined));
        if (expected.added.length + expected.removed.length === 0) {
          assert.equal(got.kind, 'no-night-change');
          assert.equal(got.rule, passedAny ? 'night-passing' : 'nights-unchanged');
        } else if (unexplainedAdded.length + unexplainedRemoved.length === 0) {
          assert.equal(got.kind, 'imported');
        } else {
          assert.ok(got.kind === 'primary' || got.kind === 'roll', describeCase(got));
          const explainedAny =
            unexplainedAdded.length + unexplainedRemoved.length < expected.added.length + expected.removed.length;
          if (got.kind === 'primary') {
            assert.deepEqual(got.primary,
              explainedAny ? { added: capped(unexplainedAdded), removed: capped(unexplainedRemoved) } : undefined);
          }
        }
      },
    ), params);
  });

  test('a feed alternating busy and free nights for two years, half of them imported, stays bounded', () => {
    const t0 = Date.parse('2026-12-01T09:00:00Z');
    const zone = 'Europe/Rome';
    const base = countFrom(t0, zone);
    const every = Array.from({ length: windowDays }, (_, i) => addDays(base, i));
    const before = readNights(t0, [], zone);
    const after = readNights(t0 + hourMs, every, zone);
    const peers = [{ name: 'airbnb', readAt: t0, busy: every.filter((_, i) => i % 2 === 0), freed: {} }];
    const got = decide(step(before, after, zone, peers));
    assert.equal(got.kind, 'primary');
    assert.deepEqual(got.nights.added, [`${base}/${addDays(base, windowDays)}`]);
    assert.equal(got.evidence.length, maxRuns);
    assert.equal(got.primary?.added.length, maxRuns);
    assert.equal(got.truncated, true);
    assert.ok(got.why.length <= 500, got.why);
  });
});
