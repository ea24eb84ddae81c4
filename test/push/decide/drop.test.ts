// Drops are measured in nights (SPEC "Push", src/push/decide/drop.ts): properties around the table in
// decide.test.ts.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { cancellationWindowMs, type DropFacts, judgeDrop } from '../../../src/push/decide/drop.ts';

const fractionArb = fc.double({ min: 0.05, max: 0.95, noNaN: true });
const touchedArb = fc.option(fc.integer({ min: -120_000, max: 10 * 60_000 }), { nil: undefined });

describe('judgeDrop', () => {
  test('a drop applies at once up to a minute after a trigger\'s 2xx or an operator notify', () => {
    assert.equal(cancellationWindowMs, 60_000);
  });

  test('property: replacing events one for one with the same nights is never a drop', () => {
    fc.assert(fc.property(fc.integer({ min: 1, max: 500 }), fc.nat({ max: 5000 }), fractionArb, touchedArb,
      (events, nights, fraction, touchedAgoMs) => {
        const facts: DropFacts = { events: { before: events, after: events }, nights: { before: nights, lost: 0 },
          ...(touchedAgoMs === undefined ? {} : { touchedAgoMs }) };
        assert.deepEqual(judgeDrop(facts, fraction), { verdict: 'apply', rule: 'no-drop' });
      }), { numRuns: 200 });
  });

  test('property: an export going to zero events is always a drop', () => {
    const nightsArb = fc.option(fc.nat({ max: 5000 }), { nil: undefined });
    fc.assert(fc.property(fc.integer({ min: 1, max: 500 }), nightsArb, fractionArb,
      (events, nights, fraction) => {
        const judgement = judgeDrop({ events: { before: events, after: 0 },
          ...(nights === undefined ? {} : { nights: { before: nights, lost: nights } }) }, fraction);
        assert.deepEqual(judgement, { verdict: 'hold', rule: 'drop-held', measure: 'events', lost: events, of: events });
      }), { numRuns: 200 });
  });

  test('property: nights decide when known (events only once nights were lost); losing more is never less of a drop; a trigger within 60 s applies it', () => {
    const eventsArb = fc.integer({ min: 1, max: 50 });
    fc.assert(fc.property(fc.integer({ min: 1, max: 2000 }), fc.nat(), eventsArb, eventsArb,
      fractionArb, touchedArb, (before, lostSeed, eventsBefore, eventsAfter, fraction, touchedAgoMs) => {
        const lost = lostSeed % (before + 1);
        const facts = (n: number): DropFacts => ({ events: { before: eventsBefore, after: eventsAfter },
          nights: { before, lost: n } });
        const held = (n: number) => judgeDrop(facts(n), fraction).verdict === 'hold';
        const lostEvents = eventsBefore - eventsAfter;
        const eventsDrop = lostEvents > 0 && lostEvents > fraction * eventsBefore;
        assert.equal(held(lost), lost > 0 && (lost === before || lost > fraction * before || eventsDrop),
          `${lost} of ${before} nights, events ${eventsBefore} -> ${eventsAfter}`);
        // Nights kept whole: no drop whatever the events did (past events expiring).
        assert.equal(held(0), false);
        if (held(lost) && lost < before) assert.ok(held(lost + 1));
        assert.ok(held(before), 'losing all of them is a drop');
        const plain = judgeDrop(facts(lost), fraction);
        const touched = judgeDrop({ ...facts(lost), ...(touchedAgoMs === undefined ? {} : { touchedAgoMs }) },
          fraction);
        if (plain.verdict === 'hold' && touchedAgoMs !== undefined && touchedAgoMs >= 0 && touchedAgoMs <= cancellationWindowMs) {
          assert.deepEqual(touched, { ...plain, verdict: 'apply', rule: 'cancellation-after-trigger' });
        } else {
          assert.deepEqual(touched, plain);
        }
      }), { numRuns: 200 });
  });
});
