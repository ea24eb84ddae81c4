// /_icalpush/metrics end to end: what the app did shows up in the scraped text.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { request } from 'undici';
import { startApp } from '../helpers/app.ts';
import { startServer } from '../helpers/servers.ts';

test('after a proxied request and a 502, metrics show the requests, the error and the durations', async (t) => {
  const upstream = await startServer(t, (req, res) => {
    // /reset: the upstream drops the connection without answering, so the sidecar answers 502.
    if (req.url === '/reset') {
      req.socket.destroy();
      return;
    }
    res.end('ok');
  });
  const { url } = await startApp(t, upstream.url);
  const ok = await request(`${url}/page`);
  assert.equal(ok.statusCode, 200);
  await ok.body.dump();
  const failed = await request(`${url}/reset`);
  assert.equal(failed.statusCode, 502);
  await failed.body.dump();

  const res = await request(`${url}/_icalpush/metrics`);
  assert.equal(res.statusCode, 200);
  const text = await res.body.text();
  const sample = (line: string) => text.split('\n').find((l) => l.startsWith(`${line} `))?.slice(line.length + 1);
  assert.equal(sample('icalpush_requests_total{route="passthrough",status_class="2xx"}'), '1');
  assert.equal(sample('icalpush_requests_total{route="passthrough",status_class="5xx"}'), '1');
  assert.equal(sample('icalpush_requests_total{route="feed",status_class="2xx"}'), '0');
  // A connection dropped before any answer reads as unreachable (src/http/clients.ts).
  assert.equal(sample('icalpush_upstream_errors_total{code="UPSTREAM_UNREACHABLE"}'), '1');
  assert.equal(sample('icalpush_upstream_errors_total{code="UPSTREAM_PROTOCOL"}'), '0');
  assert.equal(sample('icalpush_upstream_errors_total{code="CLIENT_ABORTED"}'), '0');
  assert.equal(sample('icalpush_request_duration_seconds_count{route="passthrough"}'), '2');
  assert.equal(sample('icalpush_request_duration_seconds_bucket{route="passthrough",le="+Inf"}'), '2');
  assert.equal(sample('icalpush_inflight_requests'), '1', 'the scrape itself is in flight');
  const started = Number(sample('process_start_time_seconds'));
  assert.ok(started > 1_600_000_000 && started <= Date.now() / 1000, `start time ${started}`);
});

test('the metrics scrape is counted as an admin request on the next scrape', async (t) => {
  const upstream = await startServer(t, (_req, res) => res.end());
  const { url } = await startApp(t, upstream.url);
  for (let i = 0; i < 2; i += 1) {
    const res = await request(`${url}/_icalpush/metrics`);
    const text = await res.body.text();
    const count = i === 0 ? '0' : '1';
    assert.match(text, new RegExp(`^icalpush_requests_total\\{route="admin",status_class="2xx"\\} ${count}$`, 'm'));
  }
});
