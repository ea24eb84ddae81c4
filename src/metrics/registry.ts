// A tiny metrics registry: counters, gauges and histograms with bounded label sets, read by
// the exposition renderer. Ours rather than prom-client: the app needs a handful of series,
// and every cache has a bound (STYLE.md), including the set of label combinations.

/** Default bound on label combinations per metric. */
export const defaultMaxSeries = 1_000;

/** The label value every label of a metric takes once its bound is reached. */
export const overflowLabelValue = 'other';

/** The counter of lookups of new label combinations folded into the `other` series, by metric. */
export const seriesOverflowMetricName = 'icalpush_metrics_series_overflow_total';

/** One counter series: only ever goes up. */
export type CounterSeries = { inc(by?: number): void };

/** A counter; `labels()` returns the series for one combination (look it up once, keep it). */
export type Counter = { labels(...values: string[]): CounterSeries };

/** One gauge series: a value that goes up and down. */
export type GaugeSeries = { set(value: number): void; inc(by?: number): void; dec(by?: number): void };

/** A gauge; `labels()` returns the series for one combination. */
export type Gauge = { labels(...values: string[]): GaugeSeries };

/** One histogram series. */
export type HistogramSeries = { observe(value: number): void };

/** A histogram; `labels()` returns the series for one combination. */
export type Histogram = { labels(...values: string[]): HistogramSeries };

/** A counter or gauge as the renderer reads it. */
export type ScalarFamily = {
  type: 'counter' | 'gauge';
  name: string;
  help: string;
  labelNames: readonly string[];
  series: ReadonlyArray<{ labelValues: readonly string[]; value: number }>;
};

/** A histogram as the renderer reads it; `bucketCounts[i]` is cumulative up to `buckets[i]`. */
export type HistogramFamily = {
  type: 'histogram';
  name: string;
  help: string;
  labelNames: readonly string[];
  buckets: readonly number[];
  series: ReadonlyArray<{
    labelValues: readonly string[];
    bucketCounts: readonly number[];
    sum: number;
    count: number;
  }>;
};

/** One metric and all its series. */
export type MetricFamily = ScalarFamily | HistogramFamily;

/** The registry: creates metrics and hands them to the renderer. */
export type Registry = {
  /** A counter (`name` should end in `_total`). */
  counter(name: string, help: string, labelNames?: readonly string[]): Counter;
  /** A histogram with the given upper bounds (ascending; `+Inf` is implied). */
  histogram(name: string, help: string, labelNames: readonly string[], buckets: readonly number[]): Histogram;
  /** A gauge; `collect`, when given, runs before every read so the gauge can sample its source. */
  gauge(name: string, help: string, labelNames?: readonly string[], collect?: (gauge: Gauge) => void): Gauge;
  /** Every metric in registration order, after running the gauges' collect callbacks; with `only`, just those
   * metrics (no other gauge's callback runs: one that starts a new window on each read is left alone). */
  collect(only?: ReadonlySet<string>): MetricFamily[];
};

/** Options for createRegistry. */
export type RegistryOptions = {
  /** Label combinations each metric holds before new ones fold into `other`. */
  maxSeries?: number;
};

const metricNamePattern = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const labelNamePattern = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** The bounded map of series behind one metric. */
type SeriesTable<S> = {
  get(values: readonly string[]): S;
  all(): Iterable<{ labelValues: readonly string[]; series: S }>;
};

/**
 * Past `maxSeries` combinations, new ones share one series whose every label is `other`, so a
 * label fed from request data cannot grow memory without bound.
 */
function createSeriesTable<S>(
  metric: string,
  labelNames: readonly string[],
  maxSeries: number,
  create: () => S,
  onOverflow: () => void,
): SeriesTable<S> {
  const entries = new Map<string, { labelValues: readonly string[]; series: S }>();
  const overflowValues = labelNames.map(() => overflowLabelValue);
  // NUL cannot appear in a sensible label value; it keeps ('a,b','c') apart from ('a','b,c').
  const overflowKey = overflowValues.join('\u0000');
  return {
    get(values) {
      if (values.length !== labelNames.length) {
        throw new Error(`${metric}: expected ${labelNames.length} label values, got ${values.length}`);
      }
      const key = values.join('\u0000');
      const found = entries.get(key);
      if (found !== undefined) return found.series;
      if (entries.size >= maxSeries) {
        onOverflow();
        const other = entries.get(overflowKey);
        if (other !== undefined) return other.series;
        // The `other` series is the one allowed past the bound.
        const series = create();
        entries.set(overflowKey, { labelValues: overflowValues, series });
        return series;
      }
      const series = create();
      entries.set(key, { labelValues: [...values], series });
      return series;
    },
    all: () => entries.values(),
  };
}

function checkNames(name: string, labelNames: readonly string[], names: Set<string>): void {
  if (!metricNamePattern.test(name)) throw new Error(`invalid metric name ${name}`);
  if (names.has(name)) throw new Error(`metric ${name} is already registered`);
  for (const label of labelNames) {
    if (!labelNamePattern.test(label) || label.startsWith('__')) {
      throw new Error(`${name}: invalid label name ${label}`);
    }
  }
  if (new Set(labelNames).size !== labelNames.length) throw new Error(`${name}: repeated label name`);
  names.add(name);
}

/** Creates an empty registry (apart from the series-overflow counter it keeps itself). */
export function createRegistry(options: RegistryOptions = {}): Registry {
  const maxSeries = options.maxSeries ?? defaultMaxSeries;
  if (!Number.isInteger(maxSeries) || maxSeries < 1) throw new Error('maxSeries must be a positive integer');
  const names = new Set<string>();
  const readers: Array<{ name: string; read: () => MetricFamily }> = [];
  const overflowFor = (metric: string) => () => {
    // The overflow counter's own label is a metric name: bounded by the code, never by input.
    if (metric !== seriesOverflowMetricName) overflow.labels(metric).inc();
  };

  function counter(name: string, help: string, labelNames: readonly string[], bound: number): Counter {
    checkNames(name, labelNames, names);
    const table = createSeriesTable(name, labelNames, bound, () => {
      const cell = { value: 0 };
      return {
        cell,
        inc(by = 1) {
          // Counters only go up (Prometheus resets are process restarts).
          if (by > 0) cell.value += by;
        },
      };
    }, overflowFor(name));
    readers.push({ name, read: () => ({
      type: 'counter',
      name,
      help,
      labelNames,
      series: Array.from(table.all(), ({ labelValues, series }) => ({ labelValues, value: series.cell.value })),
    }) });
    return { labels: (...values) => table.get(values) };
  }

  // Its one label is a metric name, fixed by the code, so it keeps the default bound even
  // when a smaller one is configured for the rest.
  const overflow = counter(
    seriesOverflowMetricName,
    'Lookups of new label combinations folded into the "other" series because the metric was at its bound.',
    ['metric'],
    Math.max(maxSeries, defaultMaxSeries),
  );

  const registry: Registry = {
    counter: (name, help, labelNames = []) => counter(name, help, labelNames, maxSeries),

    gauge(name, help, labelNames = [], collect) {
      checkNames(name, labelNames, names);
      const table = createSeriesTable(name, labelNames, maxSeries, () => {
        const cell = { value: 0 };
        return {
          cell,
          set(value: number) {
            cell.value = value;
          },
          inc(by = 1) {
            cell.value += by;
          },
          dec(by = 1) {
            cell.value -= by;
          },
        };
      }, overflowFor(name));
      const gauge: Gauge = { labels: (...values) => table.get(values) };
      readers.push({ name, read: () => {
        collect?.(gauge);
        return {
          type: 'gauge',
          name,
          help,
          labelNames,
          series: Array.from(table.all(), ({ labelValues, series }) => ({ labelValues, value: series.cell.value })),
        };
      } });
      return gauge;
    },

    histogram(name, help, labelNames, buckets) {
      checkNames(name, labelNames, names);
      if (labelNames.includes('le')) throw new Error(`${name}: "le" is reserved for histogram buckets`);
      if (buckets.length === 0) throw new Error(`${name}: needs at least one bucket`);
      for (let i = 0; i < buckets.length; i += 1) {
        const bound = buckets[i] as number;
        if (!Number.isFinite(bound) || (i > 0 && bound <= (buckets[i - 1] as number))) {
          throw new Error(`${name}: buckets must be finite and strictly ascending`);
        }
      }
      const bounds = [...buckets];
      const table = createSeriesTable(name, labelNames, maxSeries, () => {
        // Per-bucket counts (not cumulative) so observe() touches one slot; the reader sums.
        const state = { counts: new Array<number>(bounds.length).fill(0), sum: 0, count: 0 };
        return {
          state,
          observe(value: number) {
            let i = 0;
            while (i < bounds.length && value > (bounds[i] as number)) i += 1;
            if (i < bounds.length) state.counts[i] = (state.counts[i] as number) + 1;
            state.sum += value;
            state.count += 1;
          },
        };
      }, overflowFor(name));
      readers.push({ name, read: () => ({
        type: 'histogram',
        name,
        help,
        labelNames,
        buckets: bounds,
        series: Array.from(table.all(), ({ labelValues, series: { state } }) => {
          let running = 0;
          const bucketCounts = state.counts.map((n) => (running += n));
          return { labelValues, bucketCounts, sum: state.sum, count: state.count };
        }),
      }) });
      return { labels: (...values) => table.get(values) };
    },

    collect: (only) => readers.flatMap((reader) => (only && !only.has(reader.name) ? [] : [reader.read()])),
  };

  return registry;
}
