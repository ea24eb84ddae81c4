// The edge block and the window roll (SPEC "Push", src/push/decide/edge-block.ts).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { addDays } from '../../../src/push/decide/dates.ts';
import { type Block, edgeBlock, edgeBlockRule, isWindowRoll } from '../../../src/push/decide/edge-block.ts';
import { nightsOf, specEdgeBlock, type Stay, stay } from './build.ts';

const today = '2026-12-01';
const at = (days: number) => addDays(today, days);
const nights = (...stays: Stay[]) => ({ today, busy: nightsOf(stays) });

describe('edgeBlock', () => {
  const rows: [string, ReturnType<typeof nights>, Block | undefined][] = [
    ['no nights', nights(), undefined],
    ['Booking.com\'s far CLOSED block (61 nights, 274 days ahead)', nights(stay(at(5), 3), ['2027-09-01', '2027-11-01']),
      { from: '2027-09-01', to: '2027-11-01' }],
    ['28 nights is long enough', nights(stay(at(200), 28)), { from: at(200), to: at(228) }],
    ['27 nights is a four-week stay, not the edge', nights(stay(at(200), 27)), undefined],
    ['its last night 180 days ahead is far enough', nights(stay(at(153), 28)), { from: at(153), to: at(181) }],
    ['its last night 179 days ahead is not', nights(stay(at(152), 28)), undefined],
    ['a short stay after the long block: the run holding the furthest night is the stay',
      nights(stay(at(300), 60), stay(at(400), 3)), undefined],
    ['a stay back to back with the block is part of the run', nights(stay(at(290), 10), stay(at(300), 60)),
      { from: at(290), to: at(360) }],
    ['a run across New Year', nights(['2027-12-20', '2028-01-20']), { from: '2027-12-20', to: '2028-01-20' }],
  ];
  for (const [name, input, expected] of rows) test(name, () => assert.deepEqual(edgeBlock(input), expected));

  // Reads say how many events make the furthest run (feeds/engine.ts via calendarNights): only one is an
  // exporter's far block; touching bookings never are, so a back-to-back booking after them is primary.
  test('a run made of one event is the edge block; of two or more events it is not', () => {
    const block = nights(['2027-09-01', '2027-11-01']);
    assert.deepEqual(edgeBlock({ ...block, edgeEvents: 1 }), { from: '2027-09-01', to: '2027-11-01' });
    assert.equal(edgeBlock({ ...block, edgeEvents: 2 }), undefined);
    assert.equal(edgeBlock({ ...block, edgeEvents: 0 }), undefined);
  });

  test('the numbers of the rule', () => assert.deepEqual(edgeBlockRule, { minNights: 28, minAheadDays: 180, slackDays: 2 }));

  test('property: edgeBlock is SPEC\'s edge block', () => {
    fc.assert(fc.property(
      fc.array(fc.record({ start: fc.integer({ min: 0, max: 700 }), nights: fc.integer({ min: 1, max: 90 }) }),
        { maxLength: 10 }),
      (specs) => {
        const input = nights(...specs.map((s) => stay(at(s.start), s.nights)));
        assert.deepEqual(edgeBlock(input), specEdgeBlock(input.busy, today));
      }), { numRuns: 200 });
  });
});

describe('isWindowRoll', () => {
  const block: Block = { from: '2027-09-01', to: '2027-11-01' };
  const moved = (start: number, end: number): Block =>
    ({ from: addDays(block.from, start), to: addDays(block.to, end) });
  type Diff = { added: string[]; removed: string[] };
  const rows: [string, Diff, Block | undefined, Block | undefined, number, boolean][] = [
    ['its start 1 day later', { added: [], removed: ['2027-09-01'] }, block, moved(1, 0), 1, true],
    ['its end 3 days later, elapsed 1', { added: ['2027-11-01', '2027-11-02', '2027-11-03'], removed: [] }, block, moved(0, 3), 1, true],
    ['its end 3 days later, elapsed 0', { added: ['2027-11-01', '2027-11-02', '2027-11-03'], removed: [] }, block, moved(0, 3), 0, false],
    ['a negative elapsed counts as 0', { added: ['2027-11-01', '2027-11-02'], removed: [] }, block, moved(0, 2), -5, true],
    ['no change is no roll', { added: [], removed: [] }, block, block, 1, false],
    ['no edge block before', { added: [], removed: ['2027-09-01'] }, undefined, moved(1, 0), 1, false],
    ['no edge block after', { added: [], removed: ['2027-09-01'] }, block, undefined, 1, false],
    ['its start earlier (a booking adjacent to it)', { added: ['2027-08-31'], removed: [] }, block, moved(-1, 0), 1, false],
    ['its end earlier (the window shrinks)', { added: [], removed: ['2027-10-31'] }, block, moved(0, -1), 1, false],
    ['a freed night elsewhere', { added: [], removed: ['2027-09-01', '2027-06-01'] }, block, moved(1, 0), 1, false],
    ['a booked night elsewhere', { added: ['2027-06-01', '2027-11-01'], removed: [] }, block, moved(0, 1), 1, false],
  ];
  for (const [name, diff, before, after, elapsed, expected] of rows) {
    test(name, () => assert.equal(isWindowRoll(diff, before, after, elapsed), expected));
  }
});
