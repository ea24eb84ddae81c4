// What "today" means (SPEC "Push"): the listing's local date with a zone; without one, a booked night
// counts from the UTC−12 date and a freed night from the UTC+14 date.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { daysBetween, localDate } from '../../../src/push/decide/dates.ts';
import { clockSkewMs, countFrom, todayFor } from '../../../src/push/decide/today.ts';
import { ms, realZones } from './build.ts';

describe('todayFor', () => {
  // Busy counts by the date 15 minutes ago, free by the date 15 minutes ahead (clockSkewMs).
  const rows: [string, string | undefined, { busyFrom: string; freeFrom: string; zone?: string }][] = [
    ['2027-06-15T11:30:00Z', undefined, { busyFrom: '2027-06-14', freeFrom: '2027-06-16' }],
    ['2027-06-15T12:15:00Z', undefined, { busyFrom: '2027-06-15', freeFrom: '2027-06-16' }],
    ['2027-06-15T12:14:59Z', undefined, { busyFrom: '2027-06-14', freeFrom: '2027-06-16' }],
    ['2027-06-15T09:44:59Z', undefined, { busyFrom: '2027-06-14', freeFrom: '2027-06-15' }],
    ['2027-06-15T09:45:00Z', undefined, { busyFrom: '2027-06-14', freeFrom: '2027-06-16' }],
    ['2027-06-15T21:44:59Z', 'Europe/Rome', { busyFrom: '2027-06-15', freeFrom: '2027-06-15', zone: 'Europe/Rome' }],
    ['2027-06-15T21:45:00Z', 'Europe/Rome', { busyFrom: '2027-06-15', freeFrom: '2027-06-16', zone: 'Europe/Rome' }],
    ['2027-06-15T22:14:59Z', 'Europe/Rome', { busyFrom: '2027-06-15', freeFrom: '2027-06-16', zone: 'Europe/Rome' }],
    ['2027-06-15T22:15:00Z', 'Europe/Rome', { busyFrom: '2027-06-16', freeFrom: '2027-06-16', zone: 'Europe/Rome' }],
    ['2027-06-15T12:30:00Z', 'Pacific/Auckland',
      { busyFrom: '2027-06-16', freeFrom: '2027-06-16', zone: 'Pacific/Auckland' }],
    ['2027-06-15T09:00:00Z', 'Pacific/Honolulu', { busyFrom: '2027-06-14', freeFrom: '2027-06-14', zone: 'Pacific/Honolulu' }],
  ];
  for (const [iso, zone, expected] of rows) {
    test(`at ${iso} ${zone ? `in ${zone}` : 'without a zone'}`, () => {
      assert.deepEqual(todayFor(ms(iso), zone), expected);
      assert.equal(countFrom(ms(iso), zone), expected.busyFrom);
    });
  }

  test('property: without a zone, busy counts from a date no later and free from one no earlier than anywhere', () => {
    const instants = fc.integer({ min: Date.UTC(2026, 0, 1), max: Date.UTC(2029, 0, 1) });
    fc.assert(fc.property(fc.constantFrom(...realZones), instants,
      (zone, at) => {
        const conservative = todayFor(at);
        const local = todayFor(at, zone);
        assert.equal(conservative.zone, undefined);
        const busyFrom = localDate(at - clockSkewMs, zone);
        const expected = { busyFrom, freeFrom: localDate(at + clockSkewMs, zone), zone };
        assert.deepEqual(local, expected);
        assert.ok(conservative.busyFrom <= local.busyFrom, 'a same-day booking of tonight counts');
        assert.ok(local.freeFrom <= conservative.freeFrom, 'a night freed at local midnight does not');
        assert.ok([1, 2].includes(daysBetween(conservative.busyFrom, conservative.freeFrom)));
        assert.equal(countFrom(at, zone), local.busyFrom);
        assert.equal(countFrom(at), conservative.busyFrom);
      }), { numRuns: 200 });
  });
});
