// The push decision (SPEC "Push": what counts as a change worth pushing, what today means, drops are
// measured in nights, loop prevention), one row per rule and per counter-example, each row named after
// the real-world situation it stands for. Reads are built the way the sidecar builds them (build.ts).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { StoredNights } from '../../../src/feeds/change-log.ts';
import {
  decide, type DecisionKind, type DecisionRule, type Evidence, type NightRunsDiff, type PeerEvidenceSource,
} from '../../../src/push/decide/decide.ts';
import { addDays, localDate } from '../../../src/push/decide/dates.ts';
import { type DropFacts, type DropJudgement, judgeDrop } from '../../../src/push/decide/drop.ts';
import { dayMs, localMidnight, minuteMs, ms, peer, read, type Stay, stay, step } from './build.ts';

type Row = {
  /** The real-world situation. */
  name: string;
  /** The listing's configured zone (absent: the conservative rule). */
  zone?: string;
  before: StoredNights | undefined;
  after: StoredNights;
  peers?: PeerEvidenceSource[];
  kind: DecisionKind;
  rule: DecisionRule;
  nights?: Partial<NightRunsDiff>;
  evidence?: Evidence[];
  primary?: Partial<NightRunsDiff>;
  passed?: Partial<NightRunsDiff>;
};

const runs = (diff: Partial<NightRunsDiff> | undefined): NightRunsDiff | undefined =>
  diff && { added: diff.added ?? [], removed: diff.removed ?? [] };

function check(row: Row): void {
  const got = decide(step(row.before, row.after, row.zone, row.peers));
  assert.equal(got.kind, row.kind, `kind (${got.why})`);
  assert.equal(got.rule, row.rule, `rule (${got.why})`);
  assert.equal(got.at, new Date(row.after.at as number).toISOString());
  assert.deepEqual(got.nights, runs(row.nights ?? {}));
  assert.deepEqual(got.evidence, row.evidence ?? []);
  assert.deepEqual(got.primary, runs(row.primary));
  assert.deepEqual(got.passed, runs(row.passed));
  assert.deepEqual(got.notified, []);
  assert.equal(got.truncated, undefined);
  assert.ok(got.why.length > 0);
}

function table(rows: Row[]): void {
  const names = new Set<string>();
  for (const row of rows) {
    assert.ok(!names.has(row.name), `duplicate row name: ${row.name}`);
    names.add(row.name);
    test(row.name, () => check(row));
  }
}

const rome = 'Europe/Rome';
const hour = 60 * minuteMs;
// 2026-12-01, 10:00 in Rome: the listing's first read of the day.
const t0 = ms('2026-12-01T09:00:00Z');
// The winter season already booked; the last stay is January 10–15.
const season: Stay[] = [stay('2026-12-05', 4), stay('2026-12-20', 7), stay('2027-01-10', 5)];
// Booking.com's far "CLOSED" block: September and October 2027 (61 nights, its last night 334 days ahead).
const closed: Stay = ['2027-09-01', '2027-11-01'];

/** The edge block moved `start`/`end` days (later when positive), read `elapsedMs` after t0. */
function moved(start: number, end: number, elapsedMs = dayMs, zone: string | undefined = rome,
  block: Stay = closed): Pick<Row, 'zone' | 'before' | 'after'> {
  return {
    zone,
    before: read(t0, [...season, block], zone),
    after: read(t0 + elapsedMs, [...season, [addDays(block[0], start), addDays(block[1], end)]], zone),
  };
}

/** The season booked, then `after` an hour later (Rome). */
function booked(after: Stay[], zone: string | undefined = rome): Pick<Row, 'zone' | 'before' | 'after'> {
  return { zone, before: read(t0, season, zone), after: read(t0 + hour, after, zone) };
}

describe('decide: bookings anywhere in the window are primary, however far ahead', () => {
  table([
    { name: 'on 2026-12-01 a guest books June 2027 (6 months out)', ...booked([...season, stay('2027-06-12', 7)]),
      kind: 'primary', rule: 'unexplained-nights', nights: { added: ['2027-06-12/2027-06-19'] } },
    { name: 'on 2026-12-01 a guest books two weeks of August 2027', ...booked([...season, stay('2027-08-01', 14)]),
      kind: 'primary', rule: 'unexplained-nights', nights: { added: ['2027-08-01/2027-08-15'] } },
    { name: 'a booking 600 days ahead (2028-07-23)', ...booked([...season, stay('2028-07-23', 3)]),
      kind: 'primary', rule: 'unexplained-nights', nights: { added: ['2028-07-23/2028-07-26'] } },
    { name: 'a booking of the last night of the two-year window (729 days ahead)',
      ...booked([...season, stay('2028-11-29', 1)]),
      kind: 'primary', rule: 'unexplained-nights', nights: { added: ['2028-11-29/2028-11-30'] } },
    { name: 'a far-future booking on a listing with a far CLOSED block',
      zone: rome, before: read(t0, [...season, closed], rome),
      after: read(t0 + hour, [...season, closed, stay('2027-06-12', 7)], rome),
      kind: 'primary', rule: 'unexplained-nights', nights: { added: ['2027-06-12/2027-06-19'] } },
    { name: 'a booking inside a gap of the far CLOSED block (the host sold one week of it)',
      zone: rome, before: read(t0, [...season, ['2027-09-01', '2027-09-10'], ['2027-09-17', '2027-11-01']], rome),
      after: read(t0 + hour, [...season, closed], rome),
      kind: 'primary', rule: 'unexplained-nights', nights: { added: ['2027-09-10/2027-09-17'] } },
    { name: 'the guest of August 2027 cancels', zone: rome,
      before: read(t0, [...season, stay('2027-08-01', 14)], rome), after: read(t0 + hour, season, rome),
      kind: 'primary', rule: 'unexplained-nights', nights: { removed: ['2027-08-01/2027-08-15'] } },
    { name: 'a back-to-back booking right after the last stay', ...booked([...season, stay('2027-01-15', 3)]),
      kind: 'primary', rule: 'unexplained-nights', nights: { added: ['2027-01-15/2027-01-18'] } },
    { name: 'a back-to-back booking right before the first stay', ...booked([stay('2026-12-02', 3), ...season]),
      kind: 'primary', rule: 'unexplained-nights', nights: { added: ['2026-12-02/2026-12-05'] } },
    { name: 'the last guest extends the stay by one night',
      ...booked([...season.slice(0, 2), ['2027-01-10', '2027-01-16']]),
      kind: 'primary', rule: 'unexplained-nights', nights: { added: ['2027-01-15/2027-01-16'] } },
    { name: 'a booking and a cancellation in one read',
      ...booked([stay('2026-12-05', 4), stay('2026-12-20', 7), stay('2027-04-02', 3)]),
      kind: 'primary', rule: 'unexplained-nights',
      nights: { added: ['2027-04-02/2027-04-05'], removed: ['2027-01-10/2027-01-15'] } },
    { name: 'a booking far ahead, no zone configured (conservative rule)',
      ...booked([...season, stay('2027-06-12', 7)], undefined),
      kind: 'primary', rule: 'unexplained-nights', nights: { added: ['2027-06-12/2027-06-19'] } },
  ]);
});

describe('decide: the window roll (the far edge block moving later) notifies nobody', () => {
  table([
    { name: 'Booking.com\'s far CLOSED block starts 1 day later, a day after the last read', ...moved(1, 0),
      kind: 'roll', rule: 'window-roll', nights: { removed: ['2027-09-01/2027-09-02'] } },
    { name: 'the CLOSED block starts 2 days later (elapsed 1 day)', ...moved(2, 0),
      kind: 'roll', rule: 'window-roll', nights: { removed: ['2027-09-01/2027-09-03'] } },
    { name: 'the CLOSED block ends 1 day later (elapsed 1 day)', ...moved(0, 1),
      kind: 'roll', rule: 'window-roll', nights: { added: ['2027-11-01/2027-11-02'] } },
    { name: 'the CLOSED block ends 2 days later (elapsed 1 day)', ...moved(0, 2),
      kind: 'roll', rule: 'window-roll', nights: { added: ['2027-11-01/2027-11-03'] } },
    { name: 'the CLOSED block moves 1 day later at both ends (elapsed 1 day)', ...moved(1, 1),
      kind: 'roll', rule: 'window-roll',
      nights: { added: ['2027-11-01/2027-11-02'], removed: ['2027-09-01/2027-09-02'] } },
    { name: 'the CLOSED block moves 2 days later at both ends (elapsed 1 day)', ...moved(2, 2),
      kind: 'roll', rule: 'window-roll',
      nights: { added: ['2027-11-01/2027-11-03'], removed: ['2027-09-01/2027-09-03'] } },
    { name: 'the CLOSED block starts 1 and ends 2 days later (elapsed 1 day)', ...moved(1, 2),
      kind: 'roll', rule: 'window-roll',
      nights: { added: ['2027-11-01/2027-11-03'], removed: ['2027-09-01/2027-09-02'] } },
    { name: 'the CLOSED block moves 3 days at both ends, elapsed 1 day (limit elapsed + 2 = 3)', ...moved(3, 3),
      kind: 'roll', rule: 'window-roll',
      nights: { added: ['2027-11-01/2027-11-04'], removed: ['2027-09-01/2027-09-04'] } },
    { name: 'the CLOSED block starts 4 days later, elapsed 1 day (past the limit)', ...moved(4, 0),
      kind: 'primary', rule: 'unexplained-nights', nights: { removed: ['2027-09-01/2027-09-05'] } },
    { name: 'the CLOSED block ends 4 days later, elapsed 1 day (past the limit)', ...moved(0, 4),
      kind: 'primary', rule: 'unexplained-nights', nights: { added: ['2027-11-01/2027-11-05'] } },
    { name: 'the CLOSED block moves 4 days at both ends, elapsed 1 day', ...moved(4, 4),
      kind: 'primary', rule: 'unexplained-nights',
      nights: { added: ['2027-11-01/2027-11-05'], removed: ['2027-09-01/2027-09-05'] } },
    { name: 'the CLOSED block moves 2 days in reads a minute apart (limit 0 + 2)', ...moved(2, 2, minuteMs),
      kind: 'roll', rule: 'window-roll',
      nights: { added: ['2027-11-01/2027-11-03'], removed: ['2027-09-01/2027-09-03'] } },
    { name: 'the CLOSED block moves 3 days in reads a minute apart (a minute is not a day)', ...moved(3, 3, minuteMs),
      kind: 'primary', rule: 'unexplained-nights',
      nights: { added: ['2027-11-01/2027-11-04'], removed: ['2027-09-01/2027-09-04'] } },
    { name: 'the CLOSED block moves 3 days, reads 1 day and 5 minutes apart', ...moved(3, 3, dayMs + 5 * minuteMs),
      kind: 'roll', rule: 'window-roll',
      nights: { added: ['2027-11-01/2027-11-04'], removed: ['2027-09-01/2027-09-04'] } },
    { name: 'the CLOSED block moves 4 days, reads 1 day and 5 minutes apart', ...moved(4, 4, dayMs + 5 * minuteMs),
      kind: 'primary', rule: 'unexplained-nights',
      nights: { added: ['2027-11-01/2027-11-05'], removed: ['2027-09-01/2027-09-05'] } },
    { name: 'the watch was down 3 days: the CLOSED block moved 5 days', ...moved(5, 5, 3 * dayMs),
      kind: 'roll', rule: 'window-roll',
      nights: { added: ['2027-11-01/2027-11-06'], removed: ['2027-09-01/2027-09-06'] } },
    { name: 'the watch was down 3 days: the CLOSED block moved 6 days', ...moved(6, 6, 3 * dayMs),
      kind: 'primary', rule: 'unexplained-nights',
      nights: { added: ['2027-11-01/2027-11-07'], removed: ['2027-09-01/2027-09-07'] } },
    { name: 'no zone configured: the CLOSED block moves 1 day (elapsed 1 day)', ...moved(1, 1, dayMs, undefined),
      kind: 'roll', rule: 'window-roll',
      nights: { added: ['2027-11-01/2027-11-02'], removed: ['2027-09-01/2027-09-02'] } },
    { name: 'Airbnb\'s "Not available" from today + 365, running past the window end, moves 1 day',
      ...moved(1, 1, dayMs, rome, ['2027-12-01', '2029-06-01']),
      kind: 'roll', rule: 'window-roll', nights: { removed: ['2027-12-01/2027-12-02'] } },
    { name: 'a 28-night far block moving 1 day at both ends (just long enough)',
      ...moved(1, 1, dayMs, rome, ['2027-09-01', '2027-09-29']),
      kind: 'roll', rule: 'window-roll',
      nights: { added: ['2027-09-29/2027-09-30'], removed: ['2027-09-01/2027-09-02'] } },
    { name: 'a 27-night far block moving 1 day (too short to be an edge block: a 4-week stay)',
      ...moved(1, 1, dayMs, rome, ['2027-09-01', '2027-09-28']),
      kind: 'primary', rule: 'unexplained-nights',
      nights: { added: ['2027-09-28/2027-09-29'], removed: ['2027-09-01/2027-09-02'] } },
    { name: 'a long block whose last night is 180 days ahead moving 1 day (far enough)',
      ...moved(1, 1, dayMs, rome, [addDays('2026-12-01', 141), addDays('2026-12-01', 181)]),
      kind: 'roll', rule: 'window-roll',
      nights: { added: ['2027-05-31/2027-06-01'], removed: ['2027-04-21/2027-04-22'] } },
    { name: 'a long block whose last night is 179 days ahead moving 1 day (a long stay, not the edge)',
      ...moved(1, 1, dayMs, rome, [addDays('2026-12-01', 140), addDays('2026-12-01', 180)]),
      kind: 'primary', rule: 'unexplained-nights',
      nights: { added: ['2027-05-30/2027-05-31'], removed: ['2027-04-20/2027-04-21'] } },
    { name: 'a booking adjacent to the CLOSED block (its start moves earlier)', zone: rome,
      before: read(t0, [...season, closed], rome), after: read(t0 + dayMs, [...season, closed, stay('2027-08-25', 7)], rome),
      kind: 'primary', rule: 'unexplained-nights', nights: { added: ['2027-08-25/2027-09-01'] } },
    { name: 'a one-night booking adjacent to the CLOSED block', ...moved(-1, 0),
      kind: 'primary', rule: 'unexplained-nights', nights: { added: ['2027-08-31/2027-09-01'] } },
    { name: 'the host extends the booking window: the block\'s end jumps 3 weeks later', ...moved(0, 21),
      kind: 'primary', rule: 'unexplained-nights', nights: { added: ['2027-11-01/2027-11-22'] } },
    { name: 'the host shortens the booking window: the block\'s end shrinks by 1 day', ...moved(0, -1),
      kind: 'primary', rule: 'unexplained-nights', nights: { removed: ['2027-10-31/2027-11-01'] } },
    { name: 'the host moves the window: the whole block jumps 3 weeks later', ...moved(21, 21),
      kind: 'primary', rule: 'unexplained-nights',
      nights: { added: ['2027-11-01/2027-11-22'], removed: ['2027-09-01/2027-09-22'] } },
    { name: 'the host opens the calendar: the CLOSED block disappears', zone: rome,
      before: read(t0, [...season, closed], rome), after: read(t0 + dayMs, season, rome),
      kind: 'primary', rule: 'unexplained-nights', nights: { removed: ['2027-09-01/2027-11-01'] } },
    { name: 'the CLOSED block rolls and a guest books June 2027 in the same read', zone: rome,
      before: read(t0, [...season, closed], rome),
      after: read(t0 + dayMs, [...season, stay('2027-06-12', 7), ['2027-09-02', '2027-11-02']], rome),
      kind: 'primary', rule: 'unexplained-nights',
      nights: { added: ['2027-06-12/2027-06-19', '2027-11-01/2027-11-02'], removed: ['2027-09-01/2027-09-02'] } },
  ]);
});

describe('decide: time passing alone changes no nights', () => {
  table([
    { name: 'first read of a listing: the baseline', zone: rome, before: undefined, after: read(t0, season, rome),
      kind: 'no-night-change', rule: 'first-read' },
    { name: 'Booking.com re-keys its one event (new UID, new DTSTAMP, same nights)', zone: rome,
      before: read(t0, [stay('2027-01-10', 5)], rome), after: read(t0 + minuteMs, [stay('2027-01-10', 5)], rome),
      kind: 'no-night-change', rule: 'nights-unchanged' },
    { name: 'a stay split into two events for the same nights', zone: rome,
      before: read(t0, [stay('2027-01-10', 5)], rome),
      after: read(t0 + minuteMs, [stay('2027-01-10', 2), stay('2027-01-12', 3)], rome),
      kind: 'no-night-change', rule: 'nights-unchanged' },
    { name: 'the next day: last night passed and a past stay dropped out of the export', zone: rome,
      before: read(t0, [stay('2026-11-28', 4), ...season], rome), after: read(t0 + dayMs, season, rome),
      kind: 'no-night-change', rule: 'nights-unchanged' },
    { name: 'the same calendar read 3 days later (nights enter the far end of the window)', zone: undefined,
      before: read(t0, [...season, ['2027-12-01', '2029-06-01']]),
      after: read(t0 + 3 * dayMs, [...season, ['2027-12-01', '2029-06-01']]),
      kind: 'no-night-change', rule: 'nights-unchanged' },
  ]);
});

/** Booking.com trims the stay in progress at the listing's local midnight so it starts "today". */
function trimmed(date: string, where: string, zone: string | undefined,
  options: { countedEarly?: boolean; afterMs?: number } = {}): Pick<Row, 'zone' | 'before' | 'after'> {
  const midnight = localMidnight(date, where);
  return {
    zone,
    before: read(midnight - 30 * minuteMs, [[addDays(date, -3), addDays(date, 2)]], zone),
    after: read(midnight + (options.countedEarly ? 1_000 : options.afterMs ?? 30_000), [[date, addDays(date, 2)]], zone,
      options.countedEarly ? { countedAtMs: midnight - 1_000 } : {}),
  };
}

describe('decide: what today means (a trim at local midnight never notifies, tonight always does)', () => {
  table([
    // With the zone set, the trimmed night is before the read's today (read 30 s after midnight, still
    // counted within the clock skew allowed, today.ts): it passed.
    { name: 'Booking.com trims a stay at midnight in Rome (winter, 23:00Z), zone set', ...trimmed('2027-01-13', rome, rome),
      kind: 'no-night-change', rule: 'night-passing', passed: { removed: ['2027-01-12/2027-01-13'] } },
    { name: 'Booking.com trims a stay at midnight in Rome (summer, 22:00Z), zone set', ...trimmed('2027-07-13', rome, rome),
      kind: 'no-night-change', rule: 'night-passing', passed: { removed: ['2027-07-12/2027-07-13'] } },
    { name: 'Booking.com trims a stay at midnight in Auckland (summer, 11:00Z), zone set',
      ...trimmed('2027-01-13', 'Pacific/Auckland', 'Pacific/Auckland'),
      kind: 'no-night-change', rule: 'night-passing', passed: { removed: ['2027-01-12/2027-01-13'] } },
    { name: 'Booking.com trims a stay at midnight in Honolulu (10:00Z), zone set',
      ...trimmed('2027-01-13', 'Pacific/Honolulu', 'Pacific/Honolulu'),
      kind: 'no-night-change', rule: 'night-passing', passed: { removed: ['2027-01-12/2027-01-13'] } },
    // Read 30 minutes after midnight, past the skew: the trimmed night is not even counted.
    { name: 'a Rome trim read half an hour after midnight, zone set',
      ...trimmed('2027-01-13', rome, rome, { afterMs: 30 * minuteMs }), kind: 'no-night-change', rule: 'nights-unchanged' },
    // The upstream's clock runs 5 minutes ahead: its midnight job trims before ours.
    { name: 'a Rome trim 5 minutes before our midnight (the upstream clock ahead), zone set',
      ...trimmed('2027-01-13', rome, rome, { afterMs: -5 * minuteMs }),
      kind: 'no-night-change', rule: 'night-passing', passed: { removed: ['2027-01-12/2027-01-13'] } },
    // A read planned a second before midnight and answered after it counted from yesterday.
    { name: 'a Rome trim in a read planned at 23:59:59 and answered after midnight, zone set',
      ...trimmed('2027-01-13', rome, rome, { countedEarly: true }),
      kind: 'no-night-change', rule: 'night-passing', passed: { removed: ['2027-01-12/2027-01-13'] } },
    { name: 'an Auckland trim in a read planned at 23:59:59 and answered after midnight, zone set',
      ...trimmed('2027-01-13', 'Pacific/Auckland', 'Pacific/Auckland', { countedEarly: true }),
      kind: 'no-night-change', rule: 'night-passing', passed: { removed: ['2027-01-12/2027-01-13'] } },
    // Without a zone, a freed night counts only while it is ahead everywhere (UTC+14).
    { name: 'Booking.com trims a stay at midnight in Rome (winter), no zone', ...trimmed('2027-01-13', rome, undefined),
      kind: 'no-night-change', rule: 'night-passing', passed: { removed: ['2027-01-12/2027-01-13'] } },
    { name: 'Booking.com trims a stay at midnight in Rome (summer), no zone', ...trimmed('2027-07-13', rome, undefined),
      kind: 'no-night-change', rule: 'night-passing', passed: { removed: ['2027-07-12/2027-07-13'] } },
    { name: 'Booking.com trims a stay at midnight in Auckland (summer), no zone',
      ...trimmed('2027-01-13', 'Pacific/Auckland', undefined),
      kind: 'no-night-change', rule: 'night-passing', passed: { removed: ['2027-01-11/2027-01-13'] } },
    { name: 'Booking.com trims a stay at midnight in Auckland (winter, 12:00Z), no zone',
      ...trimmed('2027-07-13', 'Pacific/Auckland', undefined),
      kind: 'no-night-change', rule: 'night-passing', passed: { removed: ['2027-07-11/2027-07-13'] } },
    { name: 'Booking.com trims a stay at midnight in Honolulu, no zone',
      ...trimmed('2027-01-13', 'Pacific/Honolulu', undefined),
      kind: 'no-night-change', rule: 'night-passing', passed: { removed: ['2027-01-12/2027-01-13'] } },
    // Counter-examples on the near end.
    { name: 'a guest checks out two days early (noon in Rome), zone set', zone: rome,
      before: read(ms('2027-01-12T10:00:00Z'), [stay('2027-01-10', 5)], rome),
      after: read(ms('2027-01-12T11:00:00Z'), [stay('2027-01-10', 3)], rome),
      kind: 'primary', rule: 'unexplained-nights', nights: { removed: ['2027-01-13/2027-01-15'] } },
    { name: 'a guest checks out two days early (noon in Rome), no zone', zone: undefined,
      before: read(ms('2027-01-12T10:00:00Z'), [stay('2027-01-10', 5)]),
      after: read(ms('2027-01-12T11:00:00Z'), [stay('2027-01-10', 3)]),
      kind: 'primary', rule: 'unexplained-nights', nights: { removed: ['2027-01-13/2027-01-15'] } },
    { name: 'tonight\'s guest cancels at 16:00 in Rome, zone set: tonight is free again', zone: rome,
      before: read(ms('2027-01-12T14:00:00Z'), [stay('2027-01-12', 1)], rome),
      after: read(ms('2027-01-12T15:00:00Z'), [], rome),
      kind: 'primary', rule: 'unexplained-nights', nights: { removed: ['2027-01-12/2027-01-13'] } },
    { name: 'tonight\'s guest cancels at 16:00 in Rome, no zone: not ahead everywhere, not news', zone: undefined,
      before: read(ms('2027-01-12T14:00:00Z'), [stay('2027-01-12', 1)]),
      after: read(ms('2027-01-12T15:00:00Z'), []),
      kind: 'no-night-change', rule: 'night-passing', passed: { removed: ['2027-01-12/2027-01-13'] } },
  ]);
});

describe('decide: a same-day booking of tonight always notifies', () => {
  const rows: Row[] = [];
  // 2027-03-14 is also the day New York springs forward.
  for (const where of [rome, 'Pacific/Auckland', 'Pacific/Honolulu', 'Pacific/Kiritimati', 'Etc/GMT+12',
    'America/New_York', 'Asia/Kolkata']) {
    for (const clock of ['00:00:30', '06:00:00', '11:59:30', '12:00:30', '18:00:00', '23:59:30']) {
      const at = ms(`2027-03-14T${clock}Z`);
      const tonight = localDate(at, where);
      for (const zone of [where, undefined]) {
        rows.push({
          name: `a guest books tonight (${tonight}) in ${where} at ${clock}Z, ${zone ? 'zone set' : 'no zone'}`,
          zone, before: read(at - 10 * minuteMs, season, zone), after: read(at, [...season, stay(tonight, 1)], zone),
          kind: 'primary', rule: 'unexplained-nights', nights: { added: [`${tonight}/${addDays(tonight, 1)}`] },
        });
      }
    }
  }
  table(rows);
});

describe('decide: loop prevention (nights a peer explains are imported)', () => {
  const peerRead = ms('2026-12-01T09:30:00Z');
  const iso = new Date(peerRead).toISOString();
  const freedAt = ms('2026-12-01T09:20:00Z');
  const airbnbStay = stay('2027-03-05', 4);
  table([
    { name: 'the platform imports an Airbnb booking (Airbnb shows the nights busy)', ...booked([...season, airbnbStay]),
      peers: [peer('airbnb', peerRead, { busy: [airbnbStay] })],
      kind: 'imported', rule: 'peers-explain', nights: { added: ['2027-03-05/2027-03-09'] },
      evidence: [{ peer: 'airbnb', night: '2027-03-05/2027-03-09', shows: 'busy', readAt: iso }] },
    { name: 'the import comes back under the platform\'s own UID and a wider peer block (match by dates)',
      ...booked([...season, airbnbStay]), peers: [peer('airbnb', peerRead, { busy: [stay('2027-03-01', 20)] })],
      kind: 'imported', rule: 'peers-explain', nights: { added: ['2027-03-05/2027-03-09'] },
      evidence: [{ peer: 'airbnb', night: '2027-03-05/2027-03-09', shows: 'busy', readAt: iso }] },
    { name: 'the platform imports an Airbnb cancellation (Airbnb freed the nights)', zone: rome,
      before: read(t0, [...season, airbnbStay], rome), after: read(t0 + hour, season, rome),
      peers: [peer('airbnb', peerRead, { freed: [airbnbStay], freedAt })],
      kind: 'imported', rule: 'peers-explain', nights: { removed: ['2027-03-05/2027-03-09'] },
      evidence: [{ peer: 'airbnb', night: '2027-03-05/2027-03-09', shows: 'free', readAt: new Date(freedAt).toISOString() }] },
    { name: 'an Airbnb booking and a Vrbo cancellation imported in one read', zone: rome,
      before: read(t0, [...season, stay('2027-05-01', 3)], rome), after: read(t0 + hour, [...season, airbnbStay], rome),
      peers: [peer('airbnb', peerRead, { busy: [airbnbStay] }),
        peer('vrbo', peerRead, { freed: [stay('2027-05-01', 3)], freedAt })],
      kind: 'imported', rule: 'peers-explain',
      nights: { added: ['2027-03-05/2027-03-09'], removed: ['2027-05-01/2027-05-04'] },
      evidence: [{ peer: 'airbnb', night: '2027-03-05/2027-03-09', shows: 'busy', readAt: iso },
        { peer: 'vrbo', night: '2027-05-01/2027-05-04', shows: 'free', readAt: new Date(freedAt).toISOString() }] },
    { name: 'two peers show the same nights busy: the first peer is named', ...booked([...season, airbnbStay]),
      peers: [peer('airbnb', peerRead, { busy: [airbnbStay] }), peer('vrbo', peerRead + hour, { busy: [airbnbStay] })],
      kind: 'imported', rule: 'peers-explain', nights: { added: ['2027-03-05/2027-03-09'] },
      evidence: [{ peer: 'airbnb', night: '2027-03-05/2027-03-09', shows: 'busy', readAt: iso }] },
    { name: 'Airbnb shows only the first half of a new stay: the other half is primary',
      ...booked([...season, airbnbStay]), peers: [peer('airbnb', peerRead, { busy: [stay('2027-03-05', 2)] })],
      kind: 'primary', rule: 'unexplained-nights', nights: { added: ['2027-03-05/2027-03-09'] },
      primary: { added: ['2027-03-07/2027-03-09'] },
      evidence: [{ peer: 'airbnb', night: '2027-03-05/2027-03-07', shows: 'busy', readAt: iso }] },
    { name: 'an import and a direct booking in one read: only the direct one is primary',
      ...booked([...season, airbnbStay, stay('2027-08-01', 7)]), peers: [peer('airbnb', peerRead, { busy: [airbnbStay] })],
      kind: 'primary', rule: 'unexplained-nights', nights: { added: ['2027-03-05/2027-03-09', '2027-08-01/2027-08-08'] },
      primary: { added: ['2027-08-01/2027-08-08'] },
      evidence: [{ peer: 'airbnb', night: '2027-03-05/2027-03-09', shows: 'busy', readAt: iso }] },
    { name: 'our guest cancels while a peer still shows the nights busy (busy explains no cancellation)', zone: rome,
      before: read(t0, [...season, airbnbStay], rome), after: read(t0 + hour, season, rome),
      peers: [peer('airbnb', peerRead, { busy: [airbnbStay] })],
      kind: 'primary', rule: 'unexplained-nights', nights: { removed: ['2027-03-05/2027-03-09'] } },
    { name: 'a direct booking of nights a peer freed lately (freed explains no booking)',
      ...booked([...season, airbnbStay]), peers: [peer('airbnb', peerRead, { freed: [airbnbStay], freedAt })],
      kind: 'primary', rule: 'unexplained-nights', nights: { added: ['2027-03-05/2027-03-09'] } },
    { name: 'a peer explaining other nights explains nothing here', ...booked([...season, airbnbStay]),
      peers: [peer('airbnb', peerRead, { busy: [stay('2027-03-09', 3)], freed: [stay('2027-03-01', 4)] })],
      kind: 'primary', rule: 'unexplained-nights', nights: { added: ['2027-03-05/2027-03-09'] } },
    { name: 'an Airbnb import read while the CLOSED block rolls: a roll', zone: rome,
      before: read(t0, [...season, closed], rome),
      after: read(t0 + dayMs, [...season, airbnbStay, ['2027-09-02', '2027-11-02']], rome),
      peers: [peer('airbnb', peerRead, { busy: [airbnbStay] })],
      kind: 'roll', rule: 'window-roll',
      nights: { added: ['2027-03-05/2027-03-09', '2027-11-01/2027-11-02'], removed: ['2027-09-01/2027-09-02'] },
      evidence: [{ peer: 'airbnb', night: '2027-03-05/2027-03-09', shows: 'busy', readAt: iso }] },
  ]);
});

type DropRow = { name: string; facts: DropFacts; fraction?: number; expect: DropJudgement };

describe('judgeDrop: drops are measured in nights', () => {
  const rows: DropRow[] = [
    { name: 'Booking.com re-keys its one event (events 1→1, nights lost 0)',
      facts: { events: { before: 1, after: 1 }, nights: { before: 5, lost: 0 } }, expect: { verdict: 'apply', rule: 'no-drop' } },
    { name: 'the only booking is cancelled (events 1→0): held',
      facts: { events: { before: 1, after: 0 }, nights: { before: 5, lost: 5 } },
      expect: { verdict: 'hold', rule: 'drop-held', measure: 'events', lost: 1, of: 1 } },
    { name: 'the only booking is cancelled 59 s after a trigger\'s 2xx: applied at once',
      facts: { events: { before: 1, after: 0 }, nights: { before: 5, lost: 5 }, touchedAgoMs: 59_000 },
      expect: { verdict: 'apply', rule: 'cancellation-after-trigger', measure: 'events', lost: 1, of: 1 } },
    { name: 'the only booking is cancelled 60 s after a trigger\'s 2xx: applied at once',
      facts: { events: { before: 1, after: 0 }, nights: { before: 5, lost: 5 }, touchedAgoMs: 60_000 },
      expect: { verdict: 'apply', rule: 'cancellation-after-trigger', measure: 'events', lost: 1, of: 1 } },
    { name: 'the only booking is cancelled 61 s after a trigger\'s 2xx: held',
      facts: { events: { before: 1, after: 0 }, nights: { before: 5, lost: 5 }, touchedAgoMs: 61_000 },
      expect: { verdict: 'hold', rule: 'drop-held', measure: 'events', lost: 1, of: 1 } },
    { name: 'the only booking is cancelled, the export keeps its owner blocks: all nights lost, held',
      facts: { events: { before: 4, after: 3 }, nights: { before: 5, lost: 5 } },
      expect: { verdict: 'hold', rule: 'drop-held', measure: 'nights', lost: 5, of: 5 } },
    { name: 'the only booking is cancelled 10 s after an operator notify: applied at once',
      facts: { events: { before: 4, after: 3 }, nights: { before: 5, lost: 5 }, touchedAgoMs: 10_000 },
      expect: { verdict: 'apply', rule: 'cancellation-after-trigger', measure: 'nights', lost: 5, of: 5 } },
    { name: 'an empty export (Booking.com around local midnight): held',
      facts: { events: { before: 12, after: 0 }, nights: { before: 40, lost: 40 } },
      expect: { verdict: 'hold', rule: 'drop-held', measure: 'events', lost: 12, of: 12 } },
    { name: 'an empty export of a feed whose events were all past: still held',
      facts: { events: { before: 3, after: 0 }, nights: { before: 0, lost: 0 } },
      expect: { verdict: 'hold', rule: 'drop-held', measure: 'events', lost: 3, of: 3 } },
    { name: 'an empty export of a peer feed (nights unknown): held',
      facts: { events: { before: 3, after: 0 } },
      expect: { verdict: 'hold', rule: 'drop-held', measure: 'events', lost: 3, of: 3 } },
    { name: 'losing 3 of 10 nights (fraction 0.5): two cancellations, applied',
      facts: { events: { before: 6, after: 4 }, nights: { before: 10, lost: 3 } }, expect: { verdict: 'apply', rule: 'no-drop' } },
    { name: 'losing 5 of 10 nights (exactly the fraction): applied',
      facts: { events: { before: 6, after: 4 }, nights: { before: 10, lost: 5 } }, expect: { verdict: 'apply', rule: 'no-drop' } },
    { name: 'losing 6 of 10 nights (fraction 0.5): held',
      facts: { events: { before: 6, after: 3 }, nights: { before: 10, lost: 6 } },
      expect: { verdict: 'hold', rule: 'drop-held', measure: 'nights', lost: 6, of: 10 } },
    { name: 'a partial export keeps only the far CLOSED block (events 5→1, 14 of 400 nights lost): held by events',
      facts: { events: { before: 5, after: 1 }, nights: { before: 400, lost: 14 } },
      expect: { verdict: 'hold', rule: 'drop-held', measure: 'events', lost: 4, of: 5 } },
    { name: 'one of three stays cancelled (events 3→2, 4 of 400 nights lost): applied',
      facts: { events: { before: 3, after: 2 }, nights: { before: 400, lost: 4 } }, expect: { verdict: 'apply', rule: 'no-drop' } },
    { name: 'past events expiring (events 10→2, nights lost 0): no drop',
      facts: { events: { before: 10, after: 2 }, nights: { before: 4, lost: 0 } }, expect: { verdict: 'apply', rule: 'no-drop' } },
    { name: 'a feed with no future nights loses past events: no drop',
      facts: { events: { before: 10, after: 1 }, nights: { before: 0, lost: 0 } }, expect: { verdict: 'apply', rule: 'no-drop' } },
    { name: 'a peer feed (nights unknown) loses 6 of 10 events: held',
      facts: { events: { before: 10, after: 4 } }, expect: { verdict: 'hold', rule: 'drop-held', measure: 'events', lost: 6, of: 10 } },
    { name: 'a peer feed (nights unknown) loses 4 of 10 events: applied',
      facts: { events: { before: 10, after: 6 } }, expect: { verdict: 'apply', rule: 'no-drop' } },
    { name: 'a peer feed replaces its one event (events 1→1): applied',
      facts: { events: { before: 1, after: 1 } }, expect: { verdict: 'apply', rule: 'no-drop' } },
    { name: 'a drop with the trigger clock ahead (touched -5 s ago): held, not taken for a cancellation',
      facts: { events: { before: 1, after: 0 }, touchedAgoMs: -5_000 },
      expect: { verdict: 'hold', rule: 'drop-held', measure: 'events', lost: 1, of: 1 } },
    { name: 'losing 3 of 10 nights with fraction 0.2: held',
      facts: { events: { before: 6, after: 4 }, nights: { before: 10, lost: 3 } }, fraction: 0.2,
      expect: { verdict: 'hold', rule: 'drop-held', measure: 'nights', lost: 3, of: 10 } },
    { name: 'fraction 1 (hold only a total loss): losing all 10 nights is held',
      facts: { events: { before: 6, after: 2 }, nights: { before: 10, lost: 10 } }, fraction: 1,
      expect: { verdict: 'hold', rule: 'drop-held', measure: 'nights', lost: 10, of: 10 } },
    { name: 'fraction 1 (hold only a total loss): losing 9 of 10 nights is applied',
      facts: { events: { before: 6, after: 2 }, nights: { before: 10, lost: 9 } }, fraction: 1,
      expect: { verdict: 'apply', rule: 'no-drop' } },
  ];
  for (const row of rows) {
    test(row.name, () => assert.deepEqual(judgeDrop(row.facts, row.fraction ?? 0.5), row.expect));
  }
});
