// `push.watch` (SPEC "Configuration", "Push"): a duration is a flat interval, the object form is adaptive,
// maxRate reads as reads per second, and a mistake names its own key.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseReadRate } from '../../src/config/read-rate.ts';
import { configSchema } from '../../src/config/schema.ts';

const parse = (watch: unknown) => configSchema.safeParse({ upstream: 'http://127.0.0.1:9',
  feeds: [{ path: '/c/{listing}.ics' }], listings: {}, push: watch === undefined ? {} : { watch } });

const flat = (ms: number) => ({ intervalMs: ms, idleIntervalMs: ms, maxRatePerSecond: Infinity, adaptive: false });
const forms: { watch: unknown; expected: unknown }[] = [
  { watch: undefined, expected: flat(60_000) },
  { watch: '60s', expected: flat(60_000) },
  { watch: 0, expected: flat(0) },
  { watch: {}, expected: { intervalMs: 60_000, idleIntervalMs: 900_000, maxRatePerSecond: Infinity, adaptive: true } },
  { watch: { interval: '2m', idleInterval: '1h', maxRate: '300/m' },
    expected: { intervalMs: 120_000, idleIntervalMs: 3_600_000, maxRatePerSecond: 5, adaptive: true } },
  { watch: { maxRate: 20 },
    expected: { intervalMs: 60_000, idleIntervalMs: 900_000, maxRatePerSecond: 20, adaptive: true } },
];
for (const { watch, expected } of forms) {
  test(`push.watch ${JSON.stringify(watch)} reads as ${JSON.stringify(expected)}`, () => {
    const parsed = parse(watch);
    assert.ok(parsed.success);
    assert.deepEqual(parsed.data.push.watch, expected);
  });
}

const mistakes: { watch: unknown; path: string; message: RegExp }[] = [
  { watch: '-1s', path: 'push.watch', message: /must be a duration/ },
  { watch: 30, path: 'push.watch', message: /bare number has no unit/ },
  { watch: { maxRate: 'fast' }, path: 'push.watch.maxRate', message: /rate like 20\/s/ },
  { watch: { maxRate: '0/s' }, path: 'push.watch.maxRate', message: /rate like 20\/s/ },
  { watch: { interval: 0 }, path: 'push.watch.interval', message: /./ },
  { watch: { interval: '10m', idleInterval: '1m' }, path: 'push.watch.idleInterval', message: /shorter than interval/ },
];
for (const { watch, path, message } of mistakes) {
  test(`push.watch ${JSON.stringify(watch)} is refused at ${path}`, () => {
    const parsed = parse(watch);
    assert.ok(!parsed.success);
    const issue = parsed.error.issues.find((i) => i.path.join('.') === path);
    assert.ok(issue, `an issue at ${path}: ${JSON.stringify(parsed.error.issues)}`);
    assert.match(issue.message, message);
  });
}

test('rates: per second, per minute, per hour, a plain number', () => {
  assert.deepEqual(['20/s', '300/m', '3600/h', 2.5, '0.5/s'].map(parseReadRate), [20, 5, 1, 2.5, 0.5]);
  for (const bad of ['20', '/s', '5/d', 0, -1, '0/m']) assert.ok(Number.isNaN(parseReadRate(bad)), String(bad));
});
