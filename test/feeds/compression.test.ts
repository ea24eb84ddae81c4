// SPEC "Compression": feed answers honour Accept-Encoding with Vary, each representation is compressed
// once and kept, one weak ETag serves every coding, and a big feed is compressed as a stream.
import assert from 'node:assert/strict';
import { type TestContext, test } from 'node:test';
import { brotliDecompressSync, gunzipSync } from 'node:zlib';
import { type Dispatcher, request } from 'undici';
import { startApp, type TestApp } from '../helpers/app.ts';
import { dayFromNow, type Stay, staysCalendar } from '../helpers/calendars.ts';
import { startServer } from '../helpers/servers.ts';
import { calendarOf, stay } from '../helpers/hostile.ts';

type Upstream = { body: Buffer; status: number; headers: Record<string, string>; requests: number };
type Answer = { status: number; headers: Record<string, string | string[] | undefined>; bytes: Buffer; chunks: number };

/** Stays with a summary long enough that a few dozen make a calendar worth compressing. */
function stays(count: number, summary = 'Reserved'): Stay[] {
  return Array.from({ length: count }, (_, i) => ({
    uid: `stay-${i}@example.test`,
    start: dayFromNow(2 * i + 1),
    end: dayFromNow(2 * i + 2),
    summary: `${summary} ${i}: guest ${(i * 7919) % 1000}, party of ${1 + (i % 5)}`,
  }));
}

/** An upstream serving `calendar` on every path (its status, headers and body can be changed), and the app. */
async function setup(t: TestContext, calendar = staysCalendar(stays(40))) {
  const upstream: Upstream = { body: Buffer.from(calendar), status: 200, headers: {}, requests: 0 };
  const server = await startServer(t, (_req, res) => {
    upstream.requests += 1;
    res.writeHead(upstream.status, { 'content-type': 'text/calendar; charset=utf-8', ...upstream.headers });
    res.end(upstream.body);
  });
  const app = await startApp(t, server.url);
  return { upstream, app, feed: `${app.url}/calendar/a.ics` };
}

async function send(url: string, headers: Record<string, string> = {}, method: Dispatcher.HttpMethod = 'GET'): Promise<Answer> {
  // undici's request() leaves the body as it came: a coded body stays coded.
  const res = await request(url, { method, headers });
  const pieces: Buffer[] = [];
  for await (const piece of res.body) pieces.push(piece as Buffer);
  return { status: res.statusCode, headers: res.headers, bytes: Buffer.concat(pieces), chunks: pieces.length };
}

function decoded(answer: Answer): Buffer {
  const coding = answer.headers['content-encoding'];
  if (coding === 'gzip') return gunzipSync(answer.bytes);
  if (coding === 'br') return brotliDecompressSync(answer.bytes);
  assert.equal(coding, undefined, 'only gzip, br or no coding');
  return answer.bytes;
}

function header(answer: Answer, name: string): string | undefined {
  const value = answer.headers[name];
  return Array.isArray(value) ? value.join(', ') : value;
}

function assertVaries(answer: Answer): void {
  assert.match(header(answer, 'vary') ?? '', /(^|, )Accept-Encoding(,|$)/, `Vary on a ${answer.status}`);
}

async function compressions(app: TestApp, coding: string): Promise<number> {
  const scrape = (await send(`${app.url}/_icalpush/metrics`)).bytes.toString('utf8');
  const series = `icalpush_feed_compressions_total{encoding="${coding}"} `;
  const line = scrape.split('\n').find((l) => l.startsWith(series));
  return line === undefined ? 0 : Number(line.slice(series.length));
}

const enhanced = 'subscribe-enhanced-get';

for (const coding of ['gzip', 'br']) {
  test(`plain GET with Accept-Encoding: ${coding} decodes to the upstream's exact bytes`, async (t) => {
    const { upstream, feed } = await setup(t);
    const answer = await send(feed, { 'accept-encoding': coding });
    assert.equal(answer.status, 200);
    assert.equal(header(answer, 'content-encoding'), coding);
    assert.equal(header(answer, 'content-length'), String(answer.bytes.length));
    assert.ok(answer.bytes.length < upstream.body.length / 2, `${answer.bytes.length} of ${upstream.body.length} bytes`);
    assert.deepEqual(decoded(answer), upstream.body);
    assertVaries(answer);
  });

  test(`enhanced GET with Accept-Encoding: ${coding}: full feed and delta decode to the identity answers`, async (t) => {
    const { upstream, feed } = await setup(t);
    const full = await send(feed, { prefer: enhanced, 'accept-encoding': coding });
    const fullIdentity = await send(feed, { prefer: enhanced });
    assert.equal(header(full, 'content-encoding'), coding);
    assert.equal(header(fullIdentity, 'content-encoding'), undefined);
    assert.deepEqual(decoded(full), fullIdentity.bytes);
    const token = header(full, 'sync-token') ?? '';
    assert.equal(token, header(fullIdentity, 'sync-token'));
    // Twenty stays change: a delta of several KiB.
    upstream.body = Buffer.from(staysCalendar(stays(40).map((s, i) => (i < 20 ? { ...s, summary: `Changed ${i}` } : s))));
    const delta = await send(feed, { prefer: enhanced, 'sync-token': token, 'accept-encoding': coding });
    const deltaIdentity = await send(feed, { prefer: enhanced, 'sync-token': token });
    assert.equal(delta.status, 200);
    assert.equal(header(delta, 'content-encoding'), coding);
    assert.deepEqual(decoded(delta), deltaIdentity.bytes);
    assert.equal(decoded(delta).toString('utf8').split('BEGIN:VEVENT').length - 1, 20);
    assertVaries(delta);
  });
}

const negotiated: Array<[string | undefined, string | undefined]> = [
  [undefined, undefined],
  ['identity', undefined],
  ['gzip;q=0, br;q=0', undefined],
  ['compress, deflate', undefined],
  ['*', 'br'],
  ['br;q=0, *', 'gzip'],
  ['gzip, br;q=0.5', 'gzip'],
  ['identity;q=0, gzip', 'gzip'],
];
for (const [acceptEncoding, coding] of negotiated) {
  test(`Accept-Encoding ${acceptEncoding === undefined ? 'absent' : JSON.stringify(acceptEncoding)} gets ${coding ?? 'identity'}`, async (t) => {
    const { upstream, feed } = await setup(t);
    const answer = await send(feed, acceptEncoding === undefined ? {} : { 'accept-encoding': acceptEncoding });
    assert.equal(header(answer, 'content-encoding'), coding);
    assert.deepEqual(decoded(answer), upstream.body);
    assertVaries(answer);
  });
}

test('Vary: Accept-Encoding on a 304, on HEAD and on OPTIONS', async (t) => {
  const { feed } = await setup(t);
  const first = await send(feed, { 'accept-encoding': 'gzip' });
  const etag = header(first, 'etag') ?? '';
  const notModified = await send(feed, { 'accept-encoding': 'gzip', 'if-none-match': etag });
  assert.equal(notModified.status, 304);
  assert.equal(notModified.bytes.length, 0);
  assertVaries(notModified);
  assertVaries(await send(feed, { 'accept-encoding': 'gzip' }, 'HEAD'));
  assertVaries(await send(feed, {}, 'OPTIONS'));
});

test('one weak ETag for every coding: a gzip answer\'s ETag gets a 304 without Accept-Encoding, and back', async (t) => {
  const { feed } = await setup(t);
  const gzip = await send(feed, { 'accept-encoding': 'gzip' });
  const identity = await send(feed);
  const br = await send(feed, { 'accept-encoding': 'br' });
  const etag = header(gzip, 'etag') ?? '';
  // RFC 9110 §8.8.1: a strong tag would have to differ per coding; the semantic one is weak, so it is shared.
  assert.match(etag, /^W\/"[^"]+"$/);
  assert.equal(header(identity, 'etag'), etag);
  assert.equal(header(br, 'etag'), etag);
  assert.equal((await send(feed, { 'if-none-match': etag })).status, 304);
  assert.equal((await send(feed, { 'if-none-match': header(identity, 'etag') ?? '', 'accept-encoding': 'gzip' })).status, 304);
  // The strong form of the same tag compares equal too: If-None-Match compares weakly (RFC 9110 §13.1.2).
  assert.equal((await send(feed, { 'if-none-match': etag.slice(2), 'accept-encoding': 'br' })).status, 304);
  const enhancedTag = header(await send(feed, { prefer: enhanced, 'accept-encoding': 'br' }), 'etag');
  assert.equal(enhancedTag, etag);
});

test('a second poll of the same version is served from the kept encoding, not compressed again', async (t) => {
  const { feed, app } = await setup(t);
  const first = await send(feed, { prefer: enhanced, 'accept-encoding': 'gzip' });
  assert.equal(await compressions(app, 'gzip'), 1);
  const second = await send(feed, { prefer: enhanced, 'accept-encoding': 'gzip' });
  assert.deepEqual(second.bytes, first.bytes);
  assert.equal(await compressions(app, 'gzip'), 1);
  // Another coding is another representation: compressed once too.
  await send(feed, { prefer: enhanced, 'accept-encoding': 'br' });
  await send(feed, { prefer: enhanced, 'accept-encoding': 'br' });
  assert.equal(await compressions(app, 'br'), 1);
});

test('plain GETs of an upstream that answers the same bytes compress them once', async (t) => {
  const { upstream, feed, app } = await setup(t);
  await send(feed, { 'accept-encoding': 'gzip' });
  await send(feed, { 'accept-encoding': 'gzip' });
  assert.equal(upstream.requests, 2, 'each plain GET read the upstream');
  assert.equal(await compressions(app, 'gzip'), 1);
  // New bytes (a DTSTAMP restamped, same content, same ETag) are a new representation: compressed again.
  upstream.body = Buffer.from(upstream.body.toString('latin1').replaceAll('DTSTAMP:20250101T120000Z', 'DTSTAMP:20250102T120000Z'), 'latin1');
  const restamped = await send(feed, { 'accept-encoding': 'gzip' });
  assert.deepEqual(decoded(restamped), upstream.body);
  assert.equal(await compressions(app, 'gzip'), 2);
});

test('clients polling with the same token share one compressed delta', async (t) => {
  const { upstream, feed, app } = await setup(t);
  const token = header(await send(feed, { prefer: enhanced }), 'sync-token') ?? '';
  upstream.body = Buffer.from(staysCalendar(stays(40, 'Changed')));
  const deltas = [];
  for (let client = 0; client < 3; client++) deltas.push(await send(feed, { prefer: enhanced, 'sync-token': token, 'accept-encoding': 'br' }));
  assert.equal(await compressions(app, 'br'), 1);
  for (const delta of deltas) assert.deepEqual(delta.bytes, deltas[0]!.bytes);
});

test('a body under 1 KiB goes out unencoded, with Vary all the same', async (t) => {
  const { upstream, feed, app } = await setup(t, staysCalendar(stays(2)));
  assert.ok(upstream.body.length < 1024);
  const answer = await send(feed, { 'accept-encoding': 'gzip, br' });
  assert.equal(header(answer, 'content-encoding'), undefined);
  assert.deepEqual(answer.bytes, upstream.body);
  assertVaries(answer);
  assert.equal(await compressions(app, 'gzip') + await compressions(app, 'br'), 0);
});

test('HEAD tells the coding and length a GET gets once that encoding is kept, the identity ones before', async (t) => {
  const { upstream, feed } = await setup(t);
  const before = await send(feed, { 'accept-encoding': 'gzip' }, 'HEAD');
  assert.equal(header(before, 'content-encoding'), undefined, 'nothing read yet');
  const identityHead = async () => send(feed, {}, 'HEAD');
  const got = await send(feed, { 'accept-encoding': 'gzip' });
  const head = await send(feed, { 'accept-encoding': 'gzip' }, 'HEAD');
  assert.equal(head.status, 200);
  assert.equal(header(head, 'content-encoding'), 'gzip');
  assert.equal(header(head, 'content-length'), header(got, 'content-length'));
  assert.equal(header(head, 'etag'), header(got, 'etag'));
  const plainHead = await identityHead();
  assert.equal(header(plainHead, 'content-encoding'), undefined);
  assert.equal(header(plainHead, 'content-length'), String(upstream.body.length));
  // br was never sent for these bytes: the HEAD describes the identity body rather than guess.
  assert.equal(header(await send(feed, { 'accept-encoding': 'br' }, 'HEAD'), 'content-encoding'), undefined);
});

test('an upstream answer with Cache-Control: no-transform goes out unencoded', async (t) => {
  const { upstream, feed } = await setup(t);
  upstream.headers = { 'cache-control': 'private, no-transform' };
  const answer = await send(feed, { 'accept-encoding': 'gzip' });
  assert.equal(header(answer, 'content-encoding'), undefined);
  assert.deepEqual(answer.bytes, upstream.body);
  assertVaries(answer);
});

test('an answer that is not a calendar is passed through as it is, never encoded', async (t) => {
  const { upstream, feed } = await setup(t);
  upstream.status = 404;
  upstream.body = Buffer.from('not here '.repeat(500));
  const answer = await send(feed, { 'accept-encoding': 'gzip' });
  assert.equal(answer.status, 404);
  assert.equal(header(answer, 'content-encoding'), undefined);
  assert.deepEqual(answer.bytes, upstream.body);
});

/** A feed of about `bytes` whose events differ enough that it compresses like a real one (about 5×). */
function bigCalendar(bytes: number): string {
  const out: Stay[] = [];
  let size = 0;
  let seed = 1;
  const word = () => {
    seed = (seed * 48271) % 2147483647;
    return seed.toString(36);
  };
  for (let i = 0; size < bytes; i++) {
    const summary = Array.from({ length: 16 }, word).join(' ');
    out.push({ uid: `${word()}-${i}@example.test`, start: dayFromNow(i % 700), end: dayFromNow((i % 700) + 1), summary });
    size += 130 + summary.length;
  }
  return staysCalendar(out);
}

test('a 5 MiB feed is compressed as a stream, in pieces, then served from the kept encoding', async (t) => {
  const { upstream, feed, app } = await setup(t, bigCalendar(5 * 1024 * 1024));
  assert.ok(upstream.body.length > 5 * 1024 * 1024);
  const streamed = await send(feed, { 'accept-encoding': 'gzip' });
  assert.equal(streamed.status, 200);
  assert.equal(header(streamed, 'content-encoding'), 'gzip');
  // No length up front: the encoding was sent as it came out of zlib, never joined first.
  assert.equal(header(streamed, 'content-length'), undefined);
  assert.equal(header(streamed, 'transfer-encoding'), 'chunked');
  assert.ok(streamed.chunks > 4, `${streamed.chunks} pieces`);
  assert.deepEqual(decoded(streamed), upstream.body);
  assert.equal(await compressions(app, 'gzip'), 1);
  // What came out was kept (it fits the cache's entry bound): the next poll of these bytes has a length.
  const kept = await send(feed, { 'accept-encoding': 'gzip' });
  assert.equal(header(kept, 'content-length'), String(kept.bytes.length));
  assert.deepEqual(kept.bytes, streamed.bytes);
  assert.equal(await compressions(app, 'gzip'), 1);
  // The enhanced full answer of a feed this big is rebuilt in pieces; its encoding is streamed too.
  const full = await send(feed, { prefer: enhanced, 'accept-encoding': 'br' });
  assert.ok(header(full, 'sync-token'), 'a versioned feed');
  assert.equal(header(full, 'content-encoding'), 'br');
  assert.equal(header(full, 'content-length'), undefined);
  assert.deepEqual(decoded(full), (await send(feed, { prefer: enhanced })).bytes);
});

test('a plain GET keeps the upstream\'s Vary and Link beside its own, and no digest or range promise', async (t) => {
  const body = calendarOf(...Array.from({ length: 40 }, (_, i) => stay(`s${i}`, '20270110', '20270112')));
  const upstream = await startServer(t, (_req, res) => {
    res.writeHead(200, {
      'content-type': 'text/calendar', vary: 'Cookie', link: '<https://platform.example/help>; rel="help"',
      'accept-ranges': 'bytes', 'content-md5': 'bm90IGEgcmVhbCBkaWdlc3Q=',
    }).end(body);
  });
  const app = await startApp(t, upstream.url);
  const res = await request(`${app.url}/calendar/a.ics`, { headers: { 'accept-encoding': 'gzip' } });
  assert.equal(res.statusCode, 200);
  assert.equal(res.headers['content-encoding'], 'gzip');
  await res.body.dump();
  assert.equal(res.headers.vary, 'Cookie, Prefer, Sync-Token, If-None-Match, Accept-Encoding');
  assert.match(String(res.headers.link), /^<https:\/\/platform\.example\/help>; rel="help", <http:\/\/[^>]+\/calendar\/a\.ics>; rel="subscribe-enhanced-get/);
  assert.equal(res.headers['accept-ranges'], undefined, 'icalpush answers whole bodies only');
  assert.equal(res.headers['content-md5'], undefined, 'a digest of the identity bytes does not fit the gzip body');
});
