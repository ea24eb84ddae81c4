// What the console plots: the last day, minute by minute, of a few of the sidecar's own metrics, taken
// from the registry once a minute (so nothing is added to the path of a request), each kept in a ring of
// fixed length. Counters become per-minute increases by one label; the propagation histogram becomes a
// per-minute p50, p99 and count, from the increase of its buckets (histogram_quantile's interpolation).
import type { Clock, Timer } from '../clock.ts';
import type { HistogramFamily, MetricFamily, Registry, ScalarFamily } from '../metrics/registry.ts';

/** One counter followed: its metric, the label that splits it (none: summed), and which values of it. */
type CounterSpec = { metric: string; label?: string; keys?: readonly string[] };

/** The series the console plots, by name. */
export const followed = {
  notifications: { metric: 'icalpush_push_notifications_total', label: 'outcome',
    keys: ['sent', 'failed', 'retried', 'dropped', 'refused'] },
  watchReads: { metric: 'icalpush_watch_reads_total', label: 'reason',
    keys: ['active', 'idle', 'not-modified', 'skipped-recently-read'] },
  upstreamReads: { metric: 'icalpush_feed_upstream_reads_total' },
  inbound: { metric: 'icalpush_push_inbound_heads_total' },
  refreshes: { metric: 'icalpush_push_refreshes_total' },
  errors: { metric: 'icalpush_upstream_errors_total' },
} as const satisfies Record<string, CounterSpec>;

export type FollowedCounter = keyof typeof followed;

const latencyMetric = 'icalpush_push_propagation_seconds';
const latencyStage = 'notified';
const budgetMetric = 'icalpush_watch_budget_reads_per_second';

/** A snapshot of the series: oldest minute first; `endMs` is the end of the newest minute. */
export type MinuteSeries = {
  endMs: number;
  minutes: number;
  counters: Record<FollowedCounter, Record<string, (number | null)[]>>;
  /** Seconds from a change to a peer's answered HEAD, per minute (null: none that minute). */
  latency: { p50: (number | null)[]; p99: (number | null)[]; count: (number | null)[] };
  /** The watch's budget in force at each minute, in reads per minute (null: unbounded or unknown). */
  budgetPerMinute: (number | null)[];
};

/** The recorder. */
export type MinuteRecorder = {
  /** The last `minutes` minutes (at most the ring's length), the minute under way last. */
  series(minutes?: number): MinuteSeries;
  /** The propagation times (a change → a peer's answered HEAD) of the last `minutes` together: their count,
   * p50 and p99 from the buckets' increases summed over the window (seconds; null without any). */
  latency(minutes: number): { count: number; p50: number | null; p99: number | null };
  /** Sums of a counter over the last `minutes` (the minute under way included), by key ('' for a sum). */
  totals(counter: FollowedCounter, minutes: number): Record<string, number>;
  /** Takes one sample now, into the minute under way (the timer does it at every minute's end). */
  sample(): void;
  close(): void;
};

/** Options of createMinuteRecorder. */
export type MinuteRecorderOptions = {
  registry: Registry;
  clock: Clock;
  /** Minutes kept: a day by default. */
  minutes?: number;
};

const minuteMs = 60_000;

// A ring of `size` numbers (NaN: no value), indexed by absolute minute number.
class Ring {
  readonly values: Float64Array;
  constructor(size: number) {
    this.values = new Float64Array(size).fill(Number.NaN);
  }

  set(minute: number, value: number): void {
    this.values[minute % this.values.length] = value;
  }

  add(minute: number, value: number): void {
    const at = minute % this.values.length;
    const held = this.values[at] as number;
    this.values[at] = Number.isNaN(held) ? value : held + value;
  }

  get(minute: number): number {
    return this.values[minute % this.values.length] as number;
  }

  clear(minute: number): void {
    this.values[minute % this.values.length] = Number.NaN;
  }
}

function scalar(families: Map<string, MetricFamily>, name: string): ScalarFamily | undefined {
  const family = families.get(name);
  return family && family.type !== 'histogram' ? family : undefined;
}

// A counter's totals now, by the followed label's value ('' for all of it summed).
function countersOf(family: ScalarFamily | undefined, spec: CounterSpec): Map<string, number> {
  const out = new Map<string, number>();
  if (!family) return out;
  const at = spec.label === undefined ? -1 : family.labelNames.indexOf(spec.label);
  for (const { labelValues, value } of family.series) {
    const key = at === -1 ? '' : labelValues[at] ?? '';
    if (spec.keys && at !== -1 && !(spec.keys as readonly string[]).includes(key)) continue;
    out.set(key, (out.get(key) ?? 0) + value);
  }
  return out;
}

/** The `q` quantile of bucket increases (cumulative counts per upper bound), interpolated in the bucket. */
export function bucketQuantile(q: number, bounds: readonly number[], cumulative: readonly number[],
  count: number): number | null {
  if (count <= 0) return null;
  const rank = q * count;
  let below = 0;
  let lower = 0;
  for (let i = 0; i < bounds.length; i += 1) {
    const upper = bounds[i] as number;
    const inBucket = (cumulative[i] ?? 0) - below;
    if ((cumulative[i] ?? 0) >= rank && inBucket > 0) return lower + ((upper - lower) * (rank - below)) / inBucket;
    below = cumulative[i] ?? 0;
    lower = upper;
  }
  // Past the highest bound: that bound is all that is known.
  return bounds.at(-1) ?? null;
}

/** Creates the recorder; it samples the registry at every minute's end until closed. */
export function createMinuteRecorder(options: MinuteRecorderOptions): MinuteRecorder {
  const { registry, clock } = options;
  const size = Math.max(2, options.minutes ?? 24 * 60);
  const keys = Object.keys(followed) as FollowedCounter[];
  // Per counter and key, the per-minute increase; the totals of the last sample, to take increases from.
  const rings = new Map<string, Ring>();
  const last = new Map<string, number>();
  // The propagation histogram's bucket increases per minute (`width` numbers a minute: the buckets, then the
  // count), and its totals at the last sample.
  let latency: { bounds: readonly number[]; width: number; increases: Float64Array; last: Float64Array } | undefined;
  const budget = new Ring(size);
  // The minute the last sample was in, and the first minute the rings hold.
  let sampledMinute = Math.floor(clock.now() / minuteMs);
  const firstMinute = sampledMinute;
  let timer: Timer | undefined;
  let closed = false;

  const ringOf = (name: string): Ring => {
    let ring = rings.get(name);
    if (!ring) {
      ring = new Ring(size);
      rings.set(name, ring);
    }
    return ring;
  };

  // Only the metrics followed: collecting runs gauges' callbacks, and one (the event loop delay's) starts a new
  // window each time it is read, which a console request must not do to a Prometheus scrape.
  const names: ReadonlySet<string> = new Set([...Object.values(followed).map((spec) => spec.metric), latencyMetric,
    budgetMetric]);
  function collect(): Map<string, MetricFamily> {
    return new Map(registry.collect(names).map((family) => [family.name, family]));
  }

  // Clears the minutes a sample skipped (a stopped clock, a suspended process): they had no value.
  function advanceTo(minute: number): void {
    for (let m = sampledMinute + 1; m <= minute && m <= sampledMinute + size; m += 1) {
      for (const ring of rings.values()) ring.set(m, 0);
      if (latency) latency.increases.fill(0, (m % size) * latency.width, (m % size + 1) * latency.width);
      budget.clear(m);
    }
    sampledMinute = Math.max(sampledMinute, minute);
  }

  // Takes the increases since the last sample into `into` (the minute now by default; never one before the
  // last sample's: a late timer adds to the minute under way).
  function sample(into = Math.floor(clock.now() / minuteMs)): void {
    advanceTo(into);
    const minute = sampledMinute;
    const families = collect();
    for (const name of keys) {
      const spec: CounterSpec = followed[name];
      for (const [key, total] of countersOf(scalar(families, spec.metric), spec)) {
        const id = `${name} ${key}`;
        const before = last.get(id);
        last.set(id, total);
        // The registry is the process's: a series seen for the first time was 0 before.
        const increase = Math.max(0, total - (before ?? 0));
        ringOf(id).add(minute, increase);
      }
    }
    const histogram = families.get(latencyMetric) as HistogramFamily | undefined;
    const series = histogram?.type === 'histogram'
      ? histogram.series.find((s) => s.labelValues[histogram.labelNames.indexOf('stage')] === latencyStage) : undefined;
    if (histogram && series) {
      const width = histogram.buckets.length + 1;
      latency ??= { bounds: histogram.buckets, width, increases: new Float64Array(size * width),
        last: new Float64Array(width) };
      const at = (minute % size) * width;
      for (let i = 0; i < width; i += 1) {
        const total = i < histogram.buckets.length ? series.bucketCounts[i] ?? 0 : series.count;
        latency.increases[at + i] = (latency.increases[at + i] ?? 0) + Math.max(0, total - (latency.last[i] ?? 0));
        latency.last[i] = total;
      }
    }
    const perSecond = scalar(families, budgetMetric)?.series[0]?.value;
    budget.set(minute, perSecond === undefined || !Number.isFinite(perSecond) ? Number.NaN : perSecond * 60);
  }

  function schedule(): void {
    if (closed) return;
    const now = clock.now();
    timer = clock.setTimeout(() => {
      // At a minute's end: what came since the last sample belongs to the minute that ended.
      sample(Math.floor((clock.now() - 1) / minuteMs));
      schedule();
    }, minuteMs - (now % minuteMs) || minuteMs);
  }
  schedule();

  const valueAt = (ring: Ring, minute: number): number | null => {
    if (minute < firstMinute || minute > sampledMinute || minute <= sampledMinute - size) return null;
    const v = ring.get(minute);
    return Number.isNaN(v) ? null : v;
  };

  // Each minute's p50, p99 and count of the propagation times, from its bucket increases.
  function latencyOver(from: number, n: number): MinuteSeries['latency'] {
    const out: MinuteSeries['latency'] = { p50: [], p99: [], count: [] };
    for (let m = from; m < from + n; m += 1) {
      const held = latency;
      const inRange = m >= firstMinute && m <= sampledMinute;
      if (!held || !inRange) {
        out.p50.push(null);
        out.p99.push(null);
        out.count.push(inRange ? 0 : null);
        continue;
      }
      const at = (m % size) * held.width;
      const cumulative = [...held.increases.subarray(at, at + held.bounds.length)];
      const count = held.increases[at + held.bounds.length] ?? 0;
      out.p50.push(bucketQuantile(0.5, held.bounds, cumulative, count));
      out.p99.push(bucketQuantile(0.99, held.bounds, cumulative, count));
      out.count.push(count);
    }
    return out;
  }

  return {
    series(minutes = size) {
      sample();
      const n = Math.min(size, Math.max(1, minutes));
      const from = sampledMinute - n + 1;
      const range = (ring: Ring) => Array.from({ length: n }, (_, i) => valueAt(ring, from + i));
      const counters = {} as MinuteSeries['counters'];
      for (const name of keys) {
        const spec: CounterSpec = followed[name];
        const out: Record<string, (number | null)[]> = {};
        for (const key of spec.keys ?? ['']) out[key] = range(rings.get(`${name} ${key}`) ?? new Ring(size)).map((v, i) =>
          v ?? (from + i >= firstMinute && from + i <= sampledMinute ? 0 : null));
        counters[name] = out;
      }
      return {
        endMs: (sampledMinute + 1) * minuteMs,
        minutes: n,
        counters,
        latency: latencyOver(from, n),
        budgetPerMinute: range(budget),
      };
    },
    latency(minutes) {
      sample();
      const held = latency;
      if (!held) return { count: 0, p50: null, p99: null };
      const summed = new Float64Array(held.width);
      for (let m = Math.max(firstMinute, sampledMinute - Math.min(minutes, size) + 1); m <= sampledMinute; m += 1) {
        const at = (m % size) * held.width;
        for (let i = 0; i < held.width; i += 1) summed[i] = (summed[i] ?? 0) + (held.increases[at + i] ?? 0);
      }
      const cumulative = [...summed.subarray(0, held.bounds.length)];
      const count = summed[held.bounds.length] ?? 0;
      return { count, p50: bucketQuantile(0.5, held.bounds, cumulative, count),
        p99: bucketQuantile(0.99, held.bounds, cumulative, count) };
    },
    totals(counter, minutes) {
      sample();
      const spec: CounterSpec = followed[counter];
      const out: Record<string, number> = {};
      for (const key of spec.keys ?? ['']) {
        const ring = rings.get(`${counter} ${key}`);
        let sum = 0;
        for (let m = sampledMinute - Math.min(minutes, size) + 1; m <= sampledMinute; m += 1) {
          sum += ring ? valueAt(ring, m) ?? 0 : 0;
        }
        out[key] = sum;
      }
      return out;
    },
    sample: () => sample(),
    close() {
      closed = true;
      clock.clearTimeout(timer);
    },
  };
}
