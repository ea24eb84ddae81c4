// icalpush_event_loop_delay_seconds: a callback that holds the loop shows in the next scrape's max, and each
// scrape starts a new window.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { createEventLoopDelayMetric } from '../../src/metrics/event-loop-delay.ts';
import { renderExposition } from '../../src/metrics/exposition.ts';
import { createRegistry } from '../../src/metrics/registry.ts';

const maxOf = (text: string) =>
  Number(/^icalpush_event_loop_delay_seconds\{stat="max"\} (\S+)$/m.exec(text)?.[1] ?? Number.NaN);

test('a 100 ms block of the event loop shows as a max delay of at least most of it', async (t) => {
  const registry = createRegistry();
  const metric = createEventLoopDelayMetric(registry);
  t.after(() => metric.close());
  renderExposition(registry);
  // Let the sampler run, then hold the loop.
  await sleep(30);
  const until = performance.now() + 100;
  while (performance.now() < until) { /* holding the loop */ }
  await sleep(30);
  const max = maxOf(renderExposition(registry));
  assert.ok(max >= 0.08, `max ${max} s`);
  // The scrape started a new window: the block is not in the next one.
  await sleep(30);
  assert.ok(maxOf(renderExposition(registry)) < max);
});
