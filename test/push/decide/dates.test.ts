// Dates as push decisions count them (src/push/decide/dates.ts): calendar-date arithmetic with no time of
// day, and "the date now" in a zone or at a fixed offset.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import {
  addDays, canonicalTimeZone, dateAtOffset, daysBetween, isDate, localDate, utcDate, wallClock,
} from '../../../src/push/decide/dates.ts';
import { ms, realZones } from './build.ts';

describe('isDate', () => {
  const rows: [string, boolean, string][] = [
    ['2028-02-29', true, 'a leap day'],
    ['2027-02-29', false, 'no leap day in 2027'],
    ['2027-04-31', false, 'April has 30 days'],
    ['2027-13-01', false, 'month 13'],
    ['2027-00-10', false, 'month 0'],
    ['2027-1-01', false, 'a one-digit month'],
    ['2027-04-30T00:00', false, 'a date-time'],
    ['20270430', false, 'the iCalendar basic format'],
    ['', false, 'empty'],
  ];
  for (const [value, expected, why] of rows) test(`${JSON.stringify(value)}: ${why}`, () => assert.equal(isDate(value), expected));
});

describe('addDays and daysBetween', () => {
  const rows: [string, number, string][] = [
    ['2026-12-31', 1, '2027-01-01'],
    ['2027-01-01', -1, '2026-12-31'],
    ['2028-02-28', 1, '2028-02-29'],
    ['2027-02-28', 1, '2027-03-01'],
    ['2027-03-27', 2, '2027-03-29'], // Europe's spring-forward weekend: dates have no DST
    ['2026-12-01', 730, '2028-11-30'],
    ['2026-12-01', 0, '2026-12-01'],
  ];
  for (const [date, days, expected] of rows) {
    test(`${date} + ${days} = ${expected}`, () => {
      assert.equal(addDays(date, days), expected);
      assert.equal(daysBetween(date, expected), days);
      assert.equal(daysBetween(expected, date), -days || 0);
    });
  }

  test('a value that is not a date is refused, not guessed', () => {
    for (const bad of ['2027-02-29', '2027-1-1', 'tomorrow', '']) {
      assert.throws(() => addDays(bad, 1), RangeError);
      assert.throws(() => daysBetween(bad, '2027-01-01'), RangeError);
    }
  });

  test('property: adding n days is n days between, and a real date', () => {
    fc.assert(fc.property(fc.date({ min: new Date('2000-01-01'), max: new Date('2100-01-01'), noInvalidDate: true }),
      fc.integer({ min: -2000, max: 2000 }), (when, n) => {
        const date = utcDate(when.getTime());
        const later = addDays(date, n);
        assert.ok(isDate(later));
        assert.equal(daysBetween(date, later), n);
        assert.equal(addDays(later, -n), date);
        assert.equal(later > date, n > 0);
      }), { numRuns: 200 });
  });
});

describe('the date now', () => {
  test('at fixed offsets: Baker Island (UTC−12) and Kiribati (UTC+14)', () => {
    assert.equal(dateAtOffset(ms('2027-01-12T11:30:00Z'), -12), '2027-01-11');
    assert.equal(dateAtOffset(ms('2027-01-12T12:00:00Z'), -12), '2027-01-12');
    assert.equal(dateAtOffset(ms('2027-01-12T09:59:59Z'), 14), '2027-01-12');
    assert.equal(dateAtOffset(ms('2027-01-12T10:00:00Z'), 14), '2027-01-13');
    assert.equal(utcDate(ms('2027-01-12T23:59:59.999Z')), '2027-01-12');
  });

  const rows: [string, string, string][] = [
    ['Europe/Rome', '2027-01-12T22:59:59Z', '2027-01-12'],
    ['Europe/Rome', '2027-01-12T23:00:00Z', '2027-01-13'], // winter: UTC+1
    ['Europe/Rome', '2027-07-12T21:59:59Z', '2027-07-12'],
    ['Europe/Rome', '2027-07-12T22:00:00Z', '2027-07-13'], // summer: UTC+2
    ['Pacific/Auckland', '2027-01-12T11:00:00Z', '2027-01-13'], // NZDT, UTC+13
    ['Pacific/Auckland', '2027-07-12T11:59:59Z', '2027-07-12'], // NZST, UTC+12
    ['Pacific/Honolulu', '2027-01-13T09:59:59Z', '2027-01-12'],
    ['Pacific/Honolulu', '2027-01-13T10:00:00Z', '2027-01-13'],
    ['Pacific/Kiritimati', '2027-01-12T10:00:00Z', '2027-01-13'],
    ['Etc/GMT+12', '2027-01-13T11:59:59Z', '2027-01-12'], // POSIX sign: Etc/GMT+12 is UTC−12
    ['Asia/Kolkata', '2027-01-12T18:30:00Z', '2027-01-13'],
  ];
  for (const [zone, iso, expected] of rows) {
    test(`${iso} is ${expected} in ${zone}`, () => assert.equal(localDate(ms(iso), zone), expected));
  }

  test('the wall clock: the date and the second of the day, across New York\'s spring-forward', () => {
    assert.deepEqual(wallClock(ms('2027-01-12T23:00:30Z'), 'Europe/Rome'), { date: '2027-01-13', secondOfDay: 30 });
    assert.deepEqual(wallClock(ms('2027-03-14T06:59:59Z'), 'America/New_York'), { date: '2027-03-14', secondOfDay: 3600 + 3599 });
    assert.deepEqual(wallClock(ms('2027-03-14T07:00:00Z'), 'America/New_York'), { date: '2027-03-14', secondOfDay: 3 * 3600 });
    assert.deepEqual(wallClock(ms('2027-03-14T04:59:59Z'), 'America/New_York'), { date: '2027-03-13', secondOfDay: 86_399 });
  });

  test('property: a zone\'s date is between the UTC−12 and the UTC+14 dates', () => {
    const instants = fc.integer({ min: Date.UTC(2026, 0, 1), max: Date.UTC(2029, 0, 1) });
    fc.assert(fc.property(fc.constantFrom(...realZones), instants,
      (zone, at) => {
        const date = localDate(at, zone);
        assert.ok(dateAtOffset(at, -12) <= date && date <= dateAtOffset(at, 14), `${zone} ${new Date(at).toISOString()}`);
        assert.equal(wallClock(at, zone).date, date);
      }), { numRuns: 200 });
  });
});

describe('canonicalTimeZone', () => {
  const rows: [string, string | undefined, string][] = [
    ['Europe/Rome', 'Europe/Rome', 'already canonical'],
    ['europe/rome', 'Europe/Rome', 'the config\'s spelling fixed'],
    ['PACIFIC/AUCKLAND', 'Pacific/Auckland', 'upper case'],
    ['Etc/GMT+12', 'Etc/GMT+12', 'a whole-hour Etc zone'],
    ['+01:00', undefined, 'a fixed offset ignores daylight saving time'],
    ['Mars/Olympus_Mons', undefined, 'not a zone'],
    ['../etc/passwd', undefined, 'not a name'],
    ['', undefined, 'empty'],
  ];
  for (const [name, expected, why] of rows) {
    test(`${JSON.stringify(name)}: ${why}`, () => assert.equal(canonicalTimeZone(name), expected));
  }
});
