// Nights as runs (`check-in/check-out`), bounded (src/push/decide/night-runs.ts).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { addDays } from '../../../src/push/decide/dates.ts';
import { maxRuns, nightRuns, nightsOfRuns } from '../../../src/push/decide/night-runs.ts';
import { nightsOf, stay } from './build.ts';

describe('nightRuns', () => {
  const rows: [string, string[], string[]][] = [
    ['no nights', [], []],
    ['one night', ['2027-08-01'], ['2027-08-01/2027-08-02']],
    ['the five nights of August 1–5', nightsOf([stay('2027-08-01', 5)]), ['2027-08-01/2027-08-06']],
    ['New Year\'s Eve and Day', ['2026-12-31', '2027-01-01'], ['2026-12-31/2027-01-02']],
    ['across a leap day', ['2028-02-28', '2028-02-29', '2028-03-01'], ['2028-02-28/2028-03-02']],
    ['two stays with a free night between', nightsOf([stay('2027-08-01', 2), stay('2027-08-04', 2)]),
      ['2027-08-01/2027-08-03', '2027-08-04/2027-08-06']],
    ['back-to-back stays are one run', nightsOf([stay('2027-08-01', 2), stay('2027-08-03', 2)]), ['2027-08-01/2027-08-05']],
  ];
  for (const [name, nights, runs] of rows) {
    test(name, () => {
      assert.deepEqual(nightRuns(nights), { runs, truncated: false });
      assert.deepEqual(nightsOfRuns(runs), nights);
    });
  }

  const isolated = (n: number) => Array.from({ length: n }, (_, i) => addDays('2027-01-01', 2 * i));
  test(`exactly ${maxRuns} runs are written whole`, () => {
    assert.equal(maxRuns, 64);
    const { runs, truncated } = nightRuns(isolated(maxRuns));
    assert.equal(runs.length, maxRuns);
    assert.equal(truncated, false);
  });
  test(`one run more is cut at ${maxRuns}, and says so`, () => {
    const { runs, truncated } = nightRuns(isolated(maxRuns + 1));
    assert.equal(runs.length, maxRuns);
    assert.equal(truncated, true);
    assert.equal(runs.at(-1), `${addDays('2027-01-01', 2 * 63)}/${addDays('2027-01-01', 2 * 63 + 1)}`);
  });
  test('a smaller bound (the why sentence lists three)', () => {
    assert.deepEqual(nightRuns(isolated(4), 3), { runs: nightRuns(isolated(3)).runs, truncated: true });
    assert.deepEqual(nightRuns(isolated(3), 3), { runs: nightRuns(isolated(3)).runs, truncated: false });
  });
  test('an empty run has no nights', () => assert.deepEqual(nightsOfRuns(['2027-08-01/2027-08-01']), []));

  test('property: runs are sorted, apart, and give the nights back (or a prefix of the runs, cut)', () => {
    const offsetsArb = fc.uniqueArray(fc.integer({ min: 0, max: 400 }), { maxLength: 200 });
    fc.assert(fc.property(offsetsArb, fc.integer({ min: 1, max: 80 }),
      (offsets, max) => {
        const nights = offsets.sort((a, b) => a - b).map((offset) => addDays('2027-01-01', offset));
        const all = nightRuns(nights, Number.POSITIVE_INFINITY);
        assert.equal(all.truncated, false);
        assert.deepEqual(nightsOfRuns(all.runs), nights);
        for (let i = 1; i < all.runs.length; i += 1) {
          const [, previousTo] = (all.runs[i - 1] as string).split('/') as [string, string];
          const [from] = (all.runs[i] as string).split('/') as [string];
          assert.ok(from > previousTo, 'runs neither touch nor overlap');
        }
        const cut = nightRuns(nights, max);
        assert.equal(cut.truncated, all.runs.length > max);
        assert.deepEqual(cut.runs, all.runs.slice(0, max));
      }), { numRuns: 200 });
  });
});
