// Passthrough end to end: client → icalpush → fake upstream, real sockets on 127.0.0.1.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { type IncomingMessage, request as httpRequest } from 'node:http';
import { type AddressInfo, connect, createServer as createNetServer } from 'node:net';
import { Readable } from 'node:stream';
import { type TestContext, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { request } from 'undici';
import { startApp } from '../helpers/app.ts';
import { closedPort, readBody, startServer } from '../helpers/servers.ts';

/** An upstream that answers every request with a JSON echo of what it received. */
async function startEcho(t: TestContext) {
  return startServer(t, async (req, res) => {
    const body = await readBody(req);
    const echo = JSON.stringify({
      method: req.method,
      url: req.url,
      headers: req.headers,
      body: body.toString('utf8'),
    });
    res.writeHead(200, { 'content-type': 'application/json', 'x-upstream': 'yes' });
    res.end(echo);
  });
}

test('GET with a query string reaches the upstream unchanged', async (t) => {
  const upstream = await startEcho(t);
  const { url } = await startApp(t, upstream.url);
  const res = await request(`${url}/search?q=a%20b&q=c&empty=`, {
    headers: { 'x-custom': 'kept', accept: 'text/plain' },
  });
  assert.equal(res.statusCode, 200);
  assert.equal(res.headers['x-upstream'], 'yes');
  const echo = (await res.body.json()) as {
    method: string;
    url: string;
    headers: Record<string, string>;
  };
  assert.equal(echo.method, 'GET');
  assert.equal(echo.url, '/search?q=a%20b&q=c&empty=');
  assert.equal(echo.headers['x-custom'], 'kept');
  assert.equal(echo.headers.accept, 'text/plain');
});

test('X-Forwarded-For, -Host and -Proto are added, the Host header is kept', async (t) => {
  const upstream = await startEcho(t);
  const { url } = await startApp(t, upstream.url);
  const res = await request(`${url}/x`, {
    headers: { host: 'cal.example.com', 'x-forwarded-for': '203.0.113.7' },
  });
  const echo = (await res.body.json()) as { headers: Record<string, string> };
  assert.equal(echo.headers.host, 'cal.example.com');
  assert.equal(echo.headers['x-forwarded-for'], '203.0.113.7, 127.0.0.1');
  assert.equal(echo.headers['x-forwarded-host'], 'cal.example.com');
  assert.equal(echo.headers['x-forwarded-proto'], 'http');
});

test('hop-by-hop request headers are not forwarded', async (t) => {
  const upstream = await startEcho(t);
  const { url } = await startApp(t, upstream.url);
  const res = await new Promise<IncomingMessage>((resolve, reject) => {
    const req = httpRequest(`${url}/x`, {
      headers: {
        connection: 'keep-alive, x-private',
        'x-private': 'secret',
        'proxy-authorization': 'p',
      },
    });
    req.on('response', resolve).on('error', reject).end();
  });
  const echo = JSON.parse((await readBody(res)).toString()) as { headers: Record<string, string> };
  assert.equal(echo.headers['x-private'], undefined);
  assert.equal(echo.headers['proxy-authorization'], undefined);
});

for (const method of ['POST', 'PUT', 'DELETE', 'PATCH']) {
  test(`${method} streams its body to the upstream`, async (t) => {
    const upstream = await startEcho(t);
    const { url } = await startApp(t, upstream.url);
    const res = await request(`${url}/bookings/beach-house?x=1`, {
      method,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ nights: 3, method }),
    });
    assert.equal(res.statusCode, 200);
    const echo = (await res.body.json()) as {
      method: string;
      url: string;
      body: string;
      headers: Record<string, string>;
    };
    assert.equal(echo.method, method);
    assert.equal(echo.url, '/bookings/beach-house?x=1');
    assert.deepEqual(JSON.parse(echo.body), { nights: 3, method });
    assert.equal(echo.headers['content-type'], 'application/json');
  });
}

for (const status of [404, 500]) {
  test(`a ${status} from the upstream is passed through with its body`, async (t) => {
    const upstream = await startServer(t, (_req, res) => {
      res.writeHead(status, { 'content-type': 'text/html', 'x-reason': 'upstream' });
      res.end(`<h1>${status} from the platform</h1>`);
    });
    const { url } = await startApp(t, upstream.url);
    const res = await request(`${url}/missing`);
    assert.equal(res.statusCode, status);
    assert.equal(res.headers['x-reason'], 'upstream');
    assert.equal(await res.body.text(), `<h1>${status} from the platform</h1>`);
  });
}

test('repeated Set-Cookie headers all reach the client', async (t) => {
  const upstream = await startServer(t, (_req, res) => {
    res.setHeader('set-cookie', ['a=1; Path=/', 'b=2; HttpOnly', 'c=3; Secure']);
    res.end('ok');
  });
  const { url } = await startApp(t, upstream.url);
  const res = await request(`${url}/login`);
  assert.deepEqual(res.headers['set-cookie'], ['a=1; Path=/', 'b=2; HttpOnly', 'c=3; Secure']);
  await res.body.dump();
});

test('a 10 MiB chunked response streams through byte for byte, before the upstream finishes', async (t) => {
  const chunk = Buffer.alloc(64 * 1024);
  for (let i = 0; i < chunk.length; i++) chunk[i] = i % 251;
  const chunks = 160; // 10 MiB
  const { promise: rest, resolve: releaseRest } = Promise.withResolvers<void>();
  const upstream = await startServer(t, async (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/octet-stream' });
    res.write(chunk);
    await rest; // the rest is only sent once the client saw the first bytes: proof of streaming
    for (let i = 1; i < chunks; i++) {
      if (!res.write(chunk)) await once(res, 'drain');
    }
    res.end();
  });
  const { url } = await startApp(t, upstream.url);
  const res = await request(`${url}/export.bin`);
  assert.equal(res.headers['content-length'], undefined);
  assert.equal(res.headers['transfer-encoding'], 'chunked');
  const hash = createHash('sha256');
  let received = 0;
  for await (const part of res.body) {
    if (received === 0) releaseRest();
    received += (part as Buffer).length;
    hash.update(part as Buffer);
  }
  const expected = createHash('sha256');
  for (let i = 0; i < chunks; i++) expected.update(chunk);
  assert.equal(received, chunk.length * chunks);
  assert.equal(hash.digest('hex'), expected.digest('hex'));
});

test('a 10 MiB request body streams to the upstream before the client finishes', async (t) => {
  const part = Buffer.alloc(64 * 1024, 7);
  const { promise: seen, resolve: firstBytesSeen } = Promise.withResolvers<void>();
  const upstream = await startServer(t, async (req, res) => {
    const hash = createHash('sha256');
    let n = 0;
    for await (const c of req) {
      if (n === 0) firstBytesSeen();
      n += (c as Buffer).length;
      hash.update(c as Buffer);
    }
    res.end(JSON.stringify({ n, sha: hash.digest('hex') }));
  });
  const { url } = await startApp(t, upstream.url);
  const total = 160;
  async function* body() {
    yield part;
    await seen; // the upstream has bytes while the client still holds the rest
    for (let i = 1; i < total; i++) yield part;
  }
  const res = await request(`${url}/upload`, { method: 'POST', body: Readable.from(body()) });
  const answer = (await res.body.json()) as { n: number; sha: string };
  const expected = createHash('sha256');
  for (let i = 0; i < total; i++) expected.update(part);
  assert.equal(answer.n, part.length * total);
  assert.equal(answer.sha, expected.digest('hex'));
});

test('upstream refusing connections gives 502 with a short plain-text body and a log line', async (t) => {
  const port = await closedPort();
  const started = await startApp(t, `http://127.0.0.1:${port}`);
  const res = await request(`${started.url}/anything`);
  assert.equal(res.statusCode, 502);
  assert.match(String(res.headers['content-type']), /^text\/plain/);
  assert.equal(await res.body.text(), 'upstream unreachable\n');
  const line = await started.waitForLog((l) => l.msg === 'upstream error');
  assert.equal((line.err as { code: string }).code, 'UPSTREAM_UNREACHABLE');
});

test('an upstream that stalls past the timeout gives 504', async (t) => {
  const upstream = await startServer(t, () => {
    // never answers
  });
  const started = await startApp(t, upstream.url, { timeouts: { upstream: '200ms' } });
  const res = await request(`${started.url}/slow`);
  assert.equal(res.statusCode, 504);
  assert.equal(await res.body.text(), 'upstream timed out\n');
  const line = await started.waitForLog((l) => l.msg === 'upstream error');
  assert.equal((line.err as { code: string }).code, 'UPSTREAM_TIMEOUT');
});

test('a client aborting mid-upload does not crash the sidecar and releases the upstream request', async (t) => {
  const { promise: closed, resolve: upstreamClosed } = Promise.withResolvers<void>();
  const upstream = await startServer(t, (req, res) => {
    req.on('data', () => {});
    req.on('close', () => upstreamClosed());
    req.on('end', () => res.end('done'));
  });
  const { url } = await startApp(t, upstream.url);
  const { port } = new URL(url);
  const socket = connect(Number(port), '127.0.0.1');
  await once(socket, 'connect');
  socket.write('POST /upload HTTP/1.1\r\nhost: x\r\ncontent-length: 1000000\r\n\r\n');
  socket.write(Buffer.alloc(10_000, 1));
  await sleep(50);
  socket.destroy();
  await closed; // the upstream's side of the request went away too: nothing left hanging
  const res = await request(`${url}/after`);
  assert.equal(res.statusCode, 200);
  await res.body.dump();
});

test('a client leaving mid-download stops the upstream response', async (t) => {
  const { promise: gone, resolve: upstreamGone } = Promise.withResolvers<void>();
  const upstream = await startServer(t, (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/octet-stream' });
    const timer = setInterval(() => res.write(Buffer.alloc(16 * 1024)), 5);
    res.on('close', () => {
      clearInterval(timer);
      upstreamGone();
    });
  });
  const { url } = await startApp(t, upstream.url);
  const res = await request(`${url}/endless`);
  for await (const _ of res.body) break;
  await gone;
});

test('a client leaving before the upstream answered cancels the upstream request', async (t) => {
  const { promise: gone, resolve: upstreamGone } = Promise.withResolvers<void>();
  const upstream = await startServer(t, (req) => {
    // never answers; only notices when the sidecar hangs up
    req.socket.on('close', () => upstreamGone());
  });
  const started = await startApp(t, upstream.url, { timeouts: { upstream: '30s' } });
  const socket = connect(Number(new URL(started.url).port), '127.0.0.1');
  await once(socket, 'connect');
  socket.write('GET /slow HTTP/1.1\r\nhost: x\r\n\r\n');
  await sleep(50);
  socket.destroy();
  await gone; // long before the 30 s upstream timeout
  const line = await started.waitForLog((l) => l.msg === 'request');
  assert.equal(line.errCode, 'CLIENT_ABORTED');
});

test('an upstream answer with a control character in a header gives 502 and the sidecar keeps serving', async (t) => {
  const raw = createNetServer((socket) => {
    socket.on('data', () => {
      socket.end('HTTP/1.1 200 OK\r\ncontent-length: 2\r\nx-odd: a\x7fb\r\n\r\nok');
    });
  });
  await new Promise<void>((resolve) => raw.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => raw.close(() => resolve())));
  const { port } = raw.address() as AddressInfo;
  const { url } = await startApp(t, `http://127.0.0.1:${port}`);
  const res = await request(`${url}/odd`);
  assert.equal(res.statusCode, 502);
  await res.body.dump();
  const health = await request(`${url}/_icalpush/healthz`);
  assert.equal(health.statusCode, 200);
  await health.body.dump();
});

test('admin paths are never proxied', async (t) => {
  let hits = 0;
  const upstream = await startServer(t, (_req, res) => {
    hits += 1;
    res.end('upstream');
  });
  const { url } = await startApp(t, upstream.url);
  for (const path of ['/_icalpush/nope', '/_icalpush/healthz/extra']) {
    const res = await request(`${url}${path}`);
    assert.equal(res.statusCode, 404, path);
    await res.body.dump();
  }
  // The console is at /_icalpush/ itself.
  const bare = await request(`${url}/_icalpush`);
  assert.equal(bare.statusCode, 308);
  assert.equal(bare.headers.location, '/_icalpush/');
  await bare.body.dump();
  assert.equal(hits, 0);
});

test('feed paths pass through and the request line names the listing', async (t) => {
  const upstream = await startServer(t, (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/calendar' });
    res.end('BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n');
  });
  const started = await startApp(t, upstream.url);
  const res = await request(`${started.url}/calendar/beach-house.ics?t=s3cret`);
  assert.equal(await res.body.text(), 'BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n');
  const line = await started.waitForLog((l) => l.msg === 'request');
  assert.equal((line.req as Record<string, unknown>).listing, 'beach-house');
  assert.equal((line.req as Record<string, unknown>).route, 'feed');
});

test('request logs redact feed tokens, Authorization and cookies', async (t) => {
  const upstream = await startEcho(t);
  const started = await startApp(t, upstream.url);
  const res = await request(`${started.url}/calendar/x.ics?t=tok-SECRET-1&s=SECRET-2`, {
    headers: { authorization: 'Bearer SECRET-3', cookie: 'session=SECRET-4' },
  });
  await res.body.dump();
  await started.waitForLog((l) => l.msg === 'request');
  const text = started.logText();
  assert.doesNotMatch(text, /SECRET/);
  assert.match(text, /t=\[REDACTED\]/);
});

test('a malformed request gets 400 and the sidecar keeps serving', async (t) => {
  const upstream = await startEcho(t);
  const { url } = await startApp(t, upstream.url);
  const socket = connect(Number(new URL(url).port), '127.0.0.1');
  await once(socket, 'connect');
  socket.write('GARBAGE\r\n\r\n');
  const [data] = (await once(socket, 'data')) as [Buffer];
  assert.match(data.toString(), /^HTTP\/1\.1 400/);
  socket.destroy();
  const res = await request(`${url}/ok`);
  assert.equal(res.statusCode, 200);
  await res.body.dump();
});

test('an Upgrade (WebSocket) request is tunnelled to the upstream', async (t) => {
  const upstream = await startServer(t, (_req, res) => res.end());
  upstream.server.on('upgrade', (req, socket) => {
    socket.write(
      'HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\n' +
        `x-path: ${req.url}\r\n\r\n`,
    );
    socket.on('data', (d: Buffer) => socket.write(`echo:${d.toString()}`));
  });
  const { url } = await startApp(t, upstream.url);
  const socket = connect(Number(new URL(url).port), '127.0.0.1');
  t.after(() => socket.destroy());
  await once(socket, 'connect');
  socket.write(
    'GET /live HTTP/1.1\r\nhost: x\r\nupgrade: websocket\r\nconnection: Upgrade\r\n' +
      'sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\nsec-websocket-version: 13\r\n\r\n',
  );
  let text = '';
  while (!text.includes('\r\n\r\n')) text += String((await once(socket, 'data'))[0]);
  assert.match(text, /^HTTP\/1\.1 101/);
  assert.match(text, /x-path: \/live/);
  socket.write('hello');
  let echoed = '';
  while (!echoed.includes('echo:hello')) echoed += String((await once(socket, 'data'))[0]);
});
