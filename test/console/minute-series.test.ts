// The console's series: per-minute increases of the registry's counters, the propagation histogram's
// per-minute quantiles, gaps while nothing sampled, and a bound of one day.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { bucketQuantile, createMinuteRecorder } from '../../src/console/minute-series.ts';
import { createRegistry } from '../../src/metrics/registry.ts';
import { createPropagationMetric } from '../../src/push/push.ts';
import { createFakeClock } from '../store/fake-clock.ts';

const minute = 60_000;

function setup(minutes?: number) {
  const clock = createFakeClock(Date.UTC(2026, 11, 1, 12, 0, 30));
  const registry = createRegistry();
  const sent = registry.counter('icalpush_push_notifications_total', 'n', ['outcome']);
  const inbound = registry.counter('icalpush_push_inbound_heads_total', 'n');
  const propagation = createPropagationMetric(registry);
  const recorder = createMinuteRecorder({ registry, clock, ...(minutes ? { minutes } : {}) });
  return { clock, sent, inbound, propagation, recorder };
}

test('a counter becomes its increase per minute, by label, the minute under way last', () => {
  const { clock, sent, recorder } = setup();
  sent.labels('sent').inc(3);
  clock.advance(minute);
  sent.labels('sent').inc(2);
  sent.labels('failed').inc();
  clock.advance(minute);
  sent.labels('sent').inc(5);
  const series = recorder.series(3);
  assert.deepEqual(series.counters.notifications.sent, [3, 2, 5]);
  assert.deepEqual(series.counters.notifications.failed, [0, 1, 0]);
  assert.equal(series.endMs, Date.UTC(2026, 11, 1, 12, 3));
  assert.deepEqual(recorder.totals('notifications', 2), { sent: 7, failed: 1, retried: 0, dropped: 0, refused: 0 });
  recorder.close();
});

test('minutes before the recorder started have no value; minutes nothing happened in are 0', () => {
  const { clock, inbound, recorder } = setup();
  clock.advance(3 * minute);
  inbound.labels().inc();
  assert.deepEqual(recorder.series(6).counters.inbound[''], [null, null, 0, 0, 0, 1]);
  recorder.close();
});

test('the propagation histogram gives each minute its own p50 and p99', () => {
  const { clock, propagation, recorder } = setup();
  for (let i = 0; i < 99; i += 1) propagation.labels('notified').observe(0.2);
  propagation.labels('notified').observe(20);
  // Another stage is not the booking → peer HEAD time.
  propagation.labels('refreshed').observe(3000);
  clock.advance(minute);
  propagation.labels('notified').observe(4);
  const { latency } = recorder.series(2);
  assert.deepEqual(latency.count, [100, 1]);
  assert.ok((latency.p50[0] ?? 0) > 0.1 && (latency.p50[0] ?? 0) <= 0.25, String(latency.p50[0]));
  assert.ok((latency.p99[0] ?? 0) <= 0.25, 'the 99th of 100 is still in the 0.25 s bucket');
  assert.ok((latency.p50[1] ?? 0) > 2.5 && (latency.p50[1] ?? 0) <= 5);
  // Over both minutes, from the buckets summed: 101 times, the slowest two in the top percent.
  const hour = recorder.latency(60);
  assert.equal(hour.count, 101);
  assert.ok((hour.p50 ?? 0) <= 0.25 && (hour.p99 ?? 0) > 2.5, JSON.stringify(hour));
  recorder.close();
});

test('the ring holds its length: an older minute is gone, a long pause leaves zeros, not old values', () => {
  const { clock, inbound, recorder } = setup(5);
  inbound.labels().inc(7);
  clock.advance(minute);
  recorder.sample();
  clock.advance(20 * minute);
  inbound.labels().inc(1);
  const values = recorder.series(10).counters.inbound[''];
  assert.equal(values?.length, 5);
  assert.deepEqual(values, [0, 0, 0, 0, 1]);
  recorder.close();
});

test('bucketQuantile interpolates inside the bucket, as histogram_quantile does', () => {
  assert.equal(bucketQuantile(0.5, [1, 2, 4], [0, 10, 10], 10), 1.5);
  assert.equal(bucketQuantile(0.5, [1, 2], [0, 0], 4), 2, 'past the last bound: that bound');
  assert.equal(bucketQuantile(0.5, [1], [0], 0), null);
});
