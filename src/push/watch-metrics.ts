// The watch's metrics (SPEC "Admin": metrics): reads by reason, and the budget and listings it works with.
import type { Registry } from '../metrics/registry.ts';
import type { WatchReason, WatchStats } from './watch.ts';

/** The name of the watch's read counter. */
export const watchReadsMetricName = 'icalpush_watch_reads_total';

const reasons = ['active', 'idle', 'skipped-recently-read', 'not-modified'] as const satisfies readonly WatchReason[];

/** Registers the watch's metrics; returns what the watch calls per read (its `onRead`). `stats` is sampled at
 * each scrape (a pass over the listings: cheap next to a scrape's interval). */
export function createWatchMetrics(registry: Registry, stats: () => WatchStats): (reason: WatchReason) => void {
  const reads = registry.counter(watchReadsMetricName,
    'Own-feed reads of the watch by reason: active, idle (reads sent), skipped-recently-read (a GET read it '
    + 'within its interval), not-modified (of the reads sent, answered 304).', ['reason']);
  const series = new Map(reasons.map((reason) => [reason, reads.labels(reason)]));
  registry.gauge('icalpush_watch_budget_reads_per_second',
    'Watch reads per second this replica may make (push.watch.maxRate over the live replicas); +Inf: unbounded.',
    [], (gauge) => gauge.labels().set(stats().budgetPerSecond));
  registry.gauge('icalpush_watch_listings',
    'Listings the watch reads, by state: active (activity in the last 7 days), idle, overdue (past their due '
    + 'time: the budget is short).', ['state'], (gauge) => {
      const now = stats();
      gauge.labels('active').set(now.active);
      gauge.labels('idle').set(now.listings - now.active);
      gauge.labels('overdue').set(now.overdue);
    });
  return (reason) => series.get(reason)?.inc();
}
