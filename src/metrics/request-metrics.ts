// The app's own metrics: requests by route and status class, upstream errors by code, request
// durations, in-flight requests and the process start time. Every series the request path
// touches is looked up once here, so recording a request allocates nothing.
import type { ErrorCode } from '../errors.ts';
import type { Route } from '../http/router.ts';
import type { Registry } from './registry.ts';

/** The routes requests are counted under (the router's kinds). */
export const routeKinds = ['admin', 'feed', 'passthrough'] as const satisfies readonly Route['kind'][];

/** One of routeKinds. */
export type RouteKind = (typeof routeKinds)[number];

/** The upstream failure codes the passthrough reports. */
export const upstreamErrorCodes = [
  'UPSTREAM_UNREACHABLE',
  'UPSTREAM_TIMEOUT',
  'UPSTREAM_PROTOCOL',
  'CLIENT_ABORTED',
] as const satisfies readonly ErrorCode[];

const statusClasses = ['1xx', '2xx', '3xx', '4xx', '5xx'] as const;

// Covers a cached admin answer (milliseconds) up to the default 30 s upstream timeout.
const durationBuckets = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/** Records finished requests. */
export type RequestMetrics = {
  /** Counts one finished request; `errorCode` is the passthrough's failure code, if any. */
  record(route: RouteKind, statusCode: number, durationMs: number, errorCode: string | undefined): void;
};

/** Registers the app's metrics on `registry`; `inflight` is sampled at each scrape. */
export function createRequestMetrics(registry: Registry, inflight: () => number): RequestMetrics {
  const requests = registry.counter(
    'icalpush_requests_total',
    'Requests answered, by route and status class.',
    ['route', 'status_class'],
  );
  const upstreamErrors = registry.counter(
    'icalpush_upstream_errors_total',
    'Passed-through requests that failed, by error code.',
    ['code'],
  );
  const durations = registry.histogram(
    'icalpush_request_duration_seconds',
    'Time from receiving a request to finishing its answer, by route.',
    ['route'],
    durationBuckets,
  );
  registry.gauge(
    'icalpush_inflight_requests',
    'Requests being answered right now (a scrape counts itself).',
    [],
    (gauge) => gauge.labels().set(inflight()),
  );
  registry
    .gauge('process_start_time_seconds', 'Start time of the process since the Unix epoch in seconds.')
    .labels()
    // timeOrigin is when this process started, which is what Prometheus expects here.
    .set(Math.floor(performance.timeOrigin / 1000));

  const byRoute = new Map(
    routeKinds.map((route) => [
      route,
      {
        classes: statusClasses.map((statusClass) => requests.labels(route, statusClass)),
        duration: durations.labels(route),
      },
    ]),
  );
  const errorSeries = new Map<string, { inc(by?: number): void }>(
    upstreamErrorCodes.map((code) => [code, upstreamErrors.labels(code)]),
  );

  return {
    record(route, statusCode, durationMs, errorCode) {
      const series = byRoute.get(route);
      if (series !== undefined) {
        // Clamped: a status outside 100–599 still lands in a class rather than nowhere.
        const index = Math.min(Math.max(Math.floor(statusCode / 100) - 1, 0), statusClasses.length - 1);
        series.classes[index]?.inc();
        series.duration.observe(durationMs / 1000);
      }
      if (errorCode !== undefined) (errorSeries.get(errorCode) ?? upstreamErrors.labels(errorCode)).inc();
    },
  };
}
