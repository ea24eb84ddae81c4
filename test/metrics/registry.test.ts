// The metrics registry and its exposition: values, the series bound, and the exact text format.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { expositionContentType, renderExposition } from '../../src/metrics/exposition.ts';
import {
  createRegistry,
  type MetricFamily,
  type Registry,
  seriesOverflowMetricName,
} from '../../src/metrics/registry.ts';

function family(registry: Registry, name: string): MetricFamily {
  const found = registry.collect().find((f) => f.name === name);
  assert.ok(found, `metric ${name} is registered`);
  return found;
}

function values(registry: Registry, name: string): Record<string, number> {
  const f = family(registry, name);
  assert.notEqual(f.type, 'histogram');
  if (f.type === 'histogram') return {};
  return Object.fromEntries(f.series.map((s) => [s.labelValues.join(','), s.value]));
}

test('a counter adds up per label combination and never goes down', () => {
  const registry = createRegistry();
  const hits = registry.counter('hits_total', 'Hits.', ['route']);
  const a = hits.labels('a');
  a.inc();
  a.inc(2);
  a.inc(-5);
  hits.labels('b').inc();
  assert.equal(hits.labels('a'), a);
  assert.deepEqual(values(registry, 'hits_total'), { a: 3, b: 1 });
});

test('a gauge sets, increments and decrements, and collect samples it at each read', () => {
  const registry = createRegistry();
  const level = registry.gauge('level', 'Level.', ['tank']);
  level.labels('x').set(5);
  level.labels('x').inc();
  level.labels('x').dec(3);
  assert.deepEqual(values(registry, 'level'), { x: 3 });
  let source = 7;
  registry.gauge('sampled', 'Sampled.', [], (gauge) => gauge.labels().set(source));
  assert.deepEqual(values(registry, 'sampled'), { '': 7 });
  source = 9;
  assert.deepEqual(values(registry, 'sampled'), { '': 9 });
});

test('a histogram counts each observation into cumulative buckets, with sum and count', () => {
  const registry = createRegistry();
  const latency = registry.histogram('latency_seconds', 'Latency.', ['route'], [0.1, 1]);
  const series = latency.labels('a');
  for (const v of [0.05, 0.1, 0.5, 3]) series.observe(v);
  const f = family(registry, 'latency_seconds');
  assert.equal(f.type, 'histogram');
  if (f.type !== 'histogram') return;
  assert.deepEqual(f.series, [{ labelValues: ['a'], bucketCounts: [2, 3], sum: 3.65, count: 4 }]);
});

test('past the series bound, new label combinations fold into one "other" series and are counted', () => {
  const registry = createRegistry({ maxSeries: 2 });
  const hits = registry.counter('hits_total', 'Hits.', ['user', 'kind']);
  hits.labels('u1', 'k').inc();
  hits.labels('u2', 'k').inc();
  hits.labels('u3', 'k').inc();
  hits.labels('u4', 'k').inc(2);
  hits.labels('u1', 'k').inc();
  assert.deepEqual(values(registry, 'hits_total'), { 'u1,k': 2, 'u2,k': 1, 'other,other': 3 });
  assert.deepEqual(values(registry, seriesOverflowMetricName), { hits_total: 2 });
});

test('the bound holds for histograms and gauges too', () => {
  const registry = createRegistry({ maxSeries: 1 });
  const h = registry.histogram('h_seconds', 'H.', ['k'], [1]);
  const g = registry.gauge('g', 'G.', ['k']);
  for (const k of ['a', 'b', 'c']) {
    h.labels(k).observe(0.5);
    g.labels(k).inc();
  }
  const hf = family(registry, 'h_seconds');
  assert.equal(hf.series.length, 2);
  assert.deepEqual(values(registry, 'g'), { a: 1, other: 2 });
  assert.deepEqual(values(registry, seriesOverflowMetricName), { h_seconds: 2, g: 2 });
});

test('wrong label counts, bad names and duplicate metrics are refused', () => {
  const registry = createRegistry();
  const c = registry.counter('c_total', 'C.', ['a']);
  assert.throws(() => c.labels());
  assert.throws(() => c.labels('x', 'y'));
  assert.throws(() => registry.counter('c_total', 'again'));
  assert.throws(() => registry.counter('bad-name', 'x'));
  assert.throws(() => registry.counter('ok_total', 'x', ['__reserved']));
  assert.throws(() => registry.histogram('h', 'x', ['le'], [1]));
  assert.throws(() => registry.histogram('h2', 'x', [], [1, 1]));
  assert.throws(() => registry.histogram('h3', 'x', [], []));
});

test('the exposition text of a small registry is exactly the 0.0.4 format', () => {
  const registry = createRegistry();
  const requests = registry.counter('app_requests_total', 'Requests by path.\nSecond line \\ here.', ['path']);
  requests.labels('/a').inc(3);
  requests.labels('back\\slash "quoted"\nnewline').inc();
  registry.gauge('app_up', 'Up.').labels().set(1);
  const latency = registry.histogram('app_latency_seconds', 'Latency.', ['route'], [0.5, 2]);
  latency.labels('feed').observe(0.25);
  latency.labels('feed').observe(1);
  latency.labels('feed').observe(4);
  assert.equal(expositionContentType, 'text/plain; version=0.0.4; charset=utf-8');
  assert.equal(
    renderExposition(registry),
    [
      `# HELP ${seriesOverflowMetricName} Lookups of new label combinations folded into the "other" series because the metric was at its bound.`,
      `# TYPE ${seriesOverflowMetricName} counter`,
      '# HELP app_requests_total Requests by path.\\nSecond line \\\\ here.',
      '# TYPE app_requests_total counter',
      'app_requests_total{path="/a"} 3',
      'app_requests_total{path="back\\\\slash \\"quoted\\"\\nnewline"} 1',
      '# HELP app_up Up.',
      '# TYPE app_up gauge',
      'app_up 1',
      '# HELP app_latency_seconds Latency.',
      '# TYPE app_latency_seconds histogram',
      'app_latency_seconds_bucket{route="feed",le="0.5"} 1',
      'app_latency_seconds_bucket{route="feed",le="2"} 2',
      'app_latency_seconds_bucket{route="feed",le="+Inf"} 3',
      'app_latency_seconds_sum{route="feed"} 5.25',
      'app_latency_seconds_count{route="feed"} 3',
      '',
    ].join('\n'),
  );
});
