// How long the event loop kept callbacks waiting (SPEC "Guarantees": nothing may hold the request path for
// more than ~20 ms): Node's own event-loop delay histogram, shown as its max, p99 and mean since the previous
// scrape (each scrape starts a new window, as prom-client's event-loop lag does).
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { Registry } from './registry.ts';

// How often the loop is sampled.
const resolutionMs = 10;

/** Registers `icalpush_event_loop_delay_seconds{stat}`; close() stops the sampling. */
export function createEventLoopDelayMetric(registry: Registry): { close(): void } {
  // The histogram records the time between two of its timer's turns, the sampling period included: that is
  // taken off, so an idle loop reads 0.
  const histogram = monitorEventLoopDelay({ resolution: resolutionMs });
  histogram.enable();
  registry.gauge('icalpush_event_loop_delay_seconds',
    'Event loop delay since the previous scrape, by stat: max, p99, mean (Node\'s monitorEventLoopDelay).', ['stat'],
    (gauge) => {
      const seconds = (ns: number) => (Number.isFinite(ns) ? Math.max(0, ns / 1e6 - resolutionMs) / 1000 : 0);
      gauge.labels('max').set(seconds(histogram.max));
      gauge.labels('p99').set(seconds(histogram.percentile(99)));
      gauge.labels('mean').set(seconds(histogram.mean));
      histogram.reset();
    });
  return { close: () => histogram.disable() };
}
