// Regression: `GET *` was passed to the upstream and answered `502 upstream unreachable` (counted
// as UPSTREAM_UNREACHABLE) while the upstream was healthy. Targets that are not origin-form are
// now answered by the sidecar: 400, except `OPTIONS *` (RFC 9110 §9.3.7), answered 204.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect } from 'node:net';
import { test, type TestContext } from 'node:test';
import { request } from 'undici';
import { startApp, type TestApp } from '../helpers/app.ts';
import { startServer } from '../helpers/servers.ts';

/** Sends `head` as it is on a fresh connection and resolves with everything read until it closes. */
async function rawExchange(appUrl: string, head: string): Promise<string> {
  const { hostname, port } = new URL(appUrl);
  const socket = connect(Number(port), hostname);
  let answer = '';
  socket.setEncoding('utf8').on('data', (chunk: string) => {
    answer += chunk;
  });
  socket.write(head);
  await once(socket, 'close');
  return answer;
}

async function setup(t: TestContext): Promise<{ started: TestApp; seen: string[] }> {
  const seen: string[] = [];
  const upstream = await startServer(t, (req, res) => {
    seen.push(`${req.method} ${req.url}`);
    res.writeHead(200, { 'content-type': 'text/plain' }).end('upstream');
  });
  const started = await startApp(t, upstream.url, { push: { watch: 0 } });
  return { started, seen };
}

const statusLine = (answer: string) => answer.split('\r\n')[0];
const bodyOf = (answer: string) => answer.slice(answer.indexOf('\r\n\r\n') + 4);

const refused = [
  ['GET *', 'GET * HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'],
  ['absolute-form GET of a feed path', 'GET http://example.com/calendar/a.ics HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n'],
  ['HEAD *', 'HEAD * HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'],
  ['absolute-form POST with a body', 'POST http://example.com/bookings/a HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}'],
] as const;

for (const [name, head] of refused) {
  test(`${name} is answered 400 by the sidecar; the upstream receives nothing`, async (t) => {
    const { started, seen } = await setup(t);
    const answer = await rawExchange(started.url, head);
    assert.equal(statusLine(answer), 'HTTP/1.1 400 Bad Request');
    if (!head.startsWith('HEAD')) assert.equal(bodyOf(answer), 'request target must be a path (origin-form)\n');
    assert.deepEqual(seen, []);
    const line = await started.waitForLog((l) => l.msg === 'request');
    assert.equal((line.res as { statusCode: number }).statusCode, 400);
    assert.equal(line.errCode, 'REQUEST_TARGET_INVALID');
    assert.equal((line.req as { route: string }).route, 'passthrough');
  });
}

test('OPTIONS * is answered 204 without a body; the upstream receives nothing', async (t) => {
  const { started, seen } = await setup(t);
  const answer = await rawExchange(started.url, 'OPTIONS * HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
  assert.equal(statusLine(answer), 'HTTP/1.1 204 No Content');
  assert.equal(bodyOf(answer), '');
  assert.deepEqual(seen, []);
  const line = await started.waitForLog((l) => l.msg === 'request');
  assert.equal((line.req as { url: string }).url, '*');
  assert.equal(line.errCode, undefined);
});

test('an odd target counts as a passthrough 4xx, never as an upstream error', async (t) => {
  const { started } = await setup(t);
  await rawExchange(started.url, 'GET * HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
  const res = await request(`${started.url}/_icalpush/metrics`);
  const metrics = await res.body.text();
  assert.match(metrics, /^icalpush_requests_total\{route="passthrough",status_class="4xx"\} 1$/m);
  assert.match(metrics, /^icalpush_upstream_errors_total\{code="UPSTREAM_UNREACHABLE"\} 0$/m);
  assert.doesNotMatch(metrics, /REQUEST_TARGET_INVALID/);
});

test('an Upgrade request with an absolute-form target gets 400 and a closed socket', async (t) => {
  const { started, seen } = await setup(t);
  const answer = await rawExchange(
    started.url,
    'GET http://example.com/ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n',
  );
  assert.equal(statusLine(answer), 'HTTP/1.1 400 Bad Request');
  assert.equal(bodyOf(answer), 'request target must be a path (origin-form)\n');
  assert.deepEqual(seen, []);
});

test('origin-form targets still reach the upstream', async (t) => {
  const { started, seen } = await setup(t);
  const answer = await rawExchange(started.url, 'GET /plain?x=1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
  assert.equal(statusLine(answer), 'HTTP/1.1 200 OK');
  assert.deepEqual(seen, ['GET /plain?x=1']);
});
