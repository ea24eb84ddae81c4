// Reading peer feeds: conditional GET, and enhanced GET once a peer advertises it (deltas, tombstones,
// 409 and paging), against a real icalpush in front of a fake platform and against scripted peers.
import assert from 'node:assert/strict';
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { type TestContext, test } from 'node:test';
import { type Clock, systemClock } from '../../src/clock.ts';
import { createOutboundClient } from '../../src/http/clients.ts';
import { createLogger } from '../../src/log.ts';
import { advertisesEnhancedGet, createPeerReader, type Peer, type PeerReader } from '../../src/push/peers.ts';
import { inlineAnalyzer } from '../helpers/analysis.ts';
import { startApp } from '../helpers/app.ts';
import { startServer } from '../helpers/servers.ts';

const today = Date.parse('2030-01-10T12:00:00Z');
const clock: Clock = { ...systemClock, now: () => today };
const rel = 'rel="subscribe-enhanced-get subscribe-enhanced_get"';

const stay = (uid: string, start: string, end: string) => [
  'BEGIN:VEVENT', `UID:${uid}`, 'DTSTAMP:20300101T000000Z', `DTSTART;VALUE=DATE:${start}`, `DTEND;VALUE=DATE:${end}`,
  'SUMMARY:Reserved', 'END:VEVENT',
].join('\r\n');
const calendar = (...events: string[]) =>
  ['BEGIN:VCALENDAR', 'VERSION:2.0', 'PRODID:-//peer//test//EN', ...events, 'END:VCALENDAR', ''].join('\r\n');

function reader(t: TestContext, copyBytes?: number): PeerReader {
  const client = createOutboundClient({ clock, connectTimeoutMs: 2_000 });
  t.after(() => client.close());
  return createPeerReader({
    clock,
    logger: createLogger({ level: 'silent' }),
    client,
    analyzer: inlineAnalyzer(),
    userAgent: 'iPP/0.1 test',
    timeoutMs: 2_000,
    maxBodyBytes: 1024 * 1024,
    ...(copyBytes === undefined ? {} : { copyBytes }),
  });
}

const peerAt = (url: string): Peer => ({ listing: 'beach-house', name: 'peer', url, notify: true });

type Seen = { headers: IncomingHttpHeaders };

/** A scripted peer: `answer` gets each request's headers and the request count, and writes the answer. */
async function scriptedPeer(t: TestContext, answer: (req: IncomingMessage, res: ServerResponse, n: number) => void) {
  const seen: Seen[] = [];
  const server = await startServer(t, (req, res) => {
    seen.push({ headers: req.headers });
    answer(req, res, seen.length);
  });
  return { url: `${server.url}/calendar/beach-house.ics`, seen };
}

test('advertisesEnhancedGet reads either relation spelling, among several relations and Link values', () => {
  assert.equal(advertisesEnhancedGet(`<https://p.example/a.ics>; ${rel}`), true);
  assert.equal(advertisesEnhancedGet('<https://p.example/a.ics>; rel="subscribe-enhanced_get"'), true);
  assert.equal(advertisesEnhancedGet('<https://p.example/a.ics>; rel="alternate Subscribe-Enhanced-Get"'), true);
  assert.equal(advertisesEnhancedGet(['<https://p.example/x>; rel="alternate"', `<https://p.example/a.ics>; ${rel}`]),
    true);
  assert.equal(advertisesEnhancedGet('<https://p.example/a.ics>; rel="alternate"'), false);
  assert.equal(advertisesEnhancedGet('<https://p.example/a.ics>; title="subscribe-enhanced-get"'), false);
  assert.equal(advertisesEnhancedGet(undefined), false);
  assert.equal(advertisesEnhancedGet('<<<; rel='), false);
});

test('an icalpush peer is read by enhanced GET once advertised: deltas add nights, tombstones free them', async (t) => {
  let events = [stay('a', '20300301', '20300304')];
  const platform = await startServer(t, (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/calendar' }).end(calendar(...events));
  });
  const sidecar = await startApp(t, platform.url);
  const peers = reader(t);
  const peer = peerAt(`${sidecar.url}/calendar/beach-house.ics`);

  const first = await peers.read(peer);
  assert.equal(first.outcome, 'changed');
  assert.equal(first.snapshot?.via, 'conditional', 'the first read cannot know the peer offers enhanced GET');
  assert.deepEqual(first.snapshot?.nights, ['2030-03-01', '2030-03-02', '2030-03-03']);

  const second = await peers.read(peer);
  assert.equal(second.outcome, 'unchanged');
  assert.equal(second.snapshot?.via, 'enhanced-full', 'the Link header switched the reader to enhanced GET');

  const third = await peers.read(peer);
  assert.equal(third.outcome, 'unchanged');
  assert.equal(third.snapshot?.via, 'enhanced-full', 'a 304 keeps how the copy was made');

  events = [...events, stay('b', '20300310', '20300312')];
  const added = await peers.read(peer);
  assert.equal(added.outcome, 'changed');
  assert.equal(added.snapshot?.via, 'enhanced-delta');
  assert.deepEqual(added.snapshot?.nights, ['2030-03-01', '2030-03-02', '2030-03-03', '2030-03-10', '2030-03-11']);

  events = [stay('b', '20300310', '20300312')];
  const cancelled = await peers.read(peer);
  assert.equal(cancelled.outcome, 'changed');
  assert.equal(cancelled.snapshot?.via, 'enhanced-delta', 'the cancellation came as a STATUS:DELETED tombstone');
  assert.deepEqual(cancelled.snapshot?.nights, ['2030-03-10', '2030-03-11']);
  assert.deepEqual(Object.keys(cancelled.snapshot?.freed ?? {}).sort(), ['2030-03-01', '2030-03-02', '2030-03-03']);

  // The sidecar answered the two changes as deltas, and the unchanged poll as a 304.
  const metrics = await (await fetch(`${sidecar.url}/_icalpush/metrics`)).text();
  assert.match(metrics, /icalpush_feed_answers_total\{variant="enhanced",answer="delta"\} 2\n/);
  assert.match(metrics, /icalpush_feed_answers_total\{variant="enhanced",answer="not_modified"\} 1\n/);
});

test('enhanced GET sends Prefer and the last Sync-Token, never If-None-Match, to the configured URL', async (t) => {
  const full = calendar(stay('a', '20300301', '20300303'));
  const delta = calendar(stay('b', '20300305', '20300306'));
  const peer = await scriptedPeer(t, (req, res, n) => {
    const link = { link: `<https://elsewhere.example/feed.ics>; ${rel}`, etag: '"e1"' };
    if (n === 1) return res.writeHead(200, { ...link, 'content-type': 'text/calendar' }).end(full);
    if (n === 2) {
      return res.writeHead(200, { ...link, 'content-type': 'text/calendar', 'sync-token': '"data:,t1"',
        'preference-applied': 'subscribe-enhanced-get' }).end(full);
    }
    if (req.headers['sync-token'] === '"data:,t1"') {
      return res.writeHead(200, { ...link, 'content-type': 'text/calendar', 'sync-token': '"data:,t2"',
        'preference-applied': 'subscribe-enhanced-get' }).end(delta);
    }
    res.writeHead(304, { ...link, 'sync-token': '"data:,t2"' }).end();
  });
  const peers = reader(t);
  await peers.read(peerAt(peer.url));
  await peers.read(peerAt(peer.url));
  const third = await peers.read(peerAt(peer.url));
  const fourth = await peers.read(peerAt(peer.url));

  assert.equal(peer.seen.length, 4, 'the Link target (another host) was never fetched');
  assert.equal(peer.seen[0]?.headers.prefer, undefined);
  assert.equal(peer.seen[1]?.headers.prefer, 'subscribe-enhanced-get');
  assert.equal(peer.seen[1]?.headers['sync-token'], undefined, 'no token yet: the whole feed');
  assert.equal(peer.seen[1]?.headers['if-none-match'], undefined);
  assert.equal(peer.seen[2]?.headers['sync-token'], '"data:,t1"');
  assert.equal(peer.seen[3]?.headers['sync-token'], '"data:,t2"');
  assert.equal(third.outcome, 'changed');
  assert.deepEqual(third.snapshot?.nights, ['2030-03-01', '2030-03-02', '2030-03-05']);
  assert.equal(fourth.outcome, 'unchanged');
});

test('a 409 drops the copy and reads the whole feed again at once, without a token', async (t) => {
  const peer = await scriptedPeer(t, (req, res, n) => {
    const common = { link: `<x>; ${rel}`, 'content-type': 'text/calendar' };
    if (n === 1) return res.writeHead(200, common).end(calendar(stay('a', '20300301', '20300303')));
    if (req.headers['sync-token'] === '"data:,old"') return res.writeHead(409, common).end('gone');
    const token = req.headers['sync-token'] === undefined && n === 2 ? '"data:,old"' : '"data:,new"';
    res.writeHead(200, { ...common, 'sync-token': token, 'preference-applied': 'subscribe-enhanced-get' })
      .end(calendar(stay('c', '20300320', '20300321')));
  });
  const peers = reader(t);
  await peers.read(peerAt(peer.url));
  await peers.read(peerAt(peer.url));
  const restarted = await peers.read(peerAt(peer.url));

  assert.deepEqual(peer.seen.map((s) => s.headers['sync-token']), [undefined, undefined, '"data:,old"', undefined]);
  assert.equal(restarted.outcome, 'unchanged');
  assert.equal(restarted.snapshot?.via, 'enhanced-full');
  assert.deepEqual(restarted.snapshot?.nights, ['2030-03-20']);
});

test('a peer that cuts its enhanced answers (limit= applied) is followed page by page in one read', async (t) => {
  const pages = [
    { token: '"data:,p1"', applied: 'subscribe-enhanced-get, limit=1', body: calendar(stay('a', '20300301', '20300302')) },
    { token: '"data:,p2"', applied: 'subscribe-enhanced-get, limit=1', body: calendar(stay('b', '20300303', '20300304')) },
    { token: '"data:,p3"', applied: 'subscribe-enhanced-get', body: calendar(stay('c', '20300305', '20300306')) },
  ];
  const peer = await scriptedPeer(t, (_req, res, n) => {
    const common = { link: `<x>; ${rel}`, 'content-type': 'text/calendar' };
    if (n === 1) return res.writeHead(200, common).end(calendar());
    const page = pages[n - 2];
    if (!page) return res.writeHead(500).end();
    res.writeHead(200, { ...common, 'sync-token': page.token, 'preference-applied': page.applied }).end(page.body);
  });
  const peers = reader(t);
  await peers.read(peerAt(peer.url));
  const paged = await peers.read(peerAt(peer.url));

  assert.deepEqual(peer.seen.map((s) => s.headers['sync-token']), [undefined, undefined, '"data:,p1"', '"data:,p2"']);
  assert.equal(paged.outcome, 'changed');
  assert.deepEqual(paged.snapshot?.nights, ['2030-03-01', '2030-03-03', '2030-03-05']);
});

test('a peer that ignores Prefer is read as a plain feed, and one that stops advertising falls back', async (t) => {
  let events = [stay('a', '20300301', '20300302')];
  let advertise = true;
  const peer = await scriptedPeer(t, (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/calendar', ...(advertise ? { link: `<x>; ${rel}` } : {}) })
      .end(calendar(...events));
  });
  const peers = reader(t);
  await peers.read(peerAt(peer.url));
  events = [stay('b', '20300305', '20300306')];
  const ignored = await peers.read(peerAt(peer.url));
  assert.equal(peer.seen[1]?.headers.prefer, 'subscribe-enhanced-get');
  assert.equal(ignored.outcome, 'changed');
  assert.equal(ignored.snapshot?.via, 'conditional', 'no Preference-Applied: the body is the whole feed');
  assert.deepEqual(ignored.snapshot?.nights, ['2030-03-05']);

  advertise = false;
  await peers.read(peerAt(peer.url));
  await peers.read(peerAt(peer.url));
  assert.equal(peer.seen[3]?.headers.prefer, undefined, 'no Link any more: back to conditional GET');
});

test('a failed enhanced answer keeps the last snapshot and the copy, records the error, resumes next time', async (t) => {
  const peer = await scriptedPeer(t, (_req, res, n) => {
    const common = { link: `<x>; ${rel}`, 'content-type': 'text/calendar' };
    const enhanced = { ...common, 'sync-token': `"data:,${n}"`, 'preference-applied': 'subscribe-enhanced-get' };
    if (n === 1) return res.writeHead(200, common).end(calendar(stay('a', '20300301', '20300302')));
    if (n === 2) return res.writeHead(200, enhanced).end(calendar(stay('a', '20300301', '20300302')));
    if (n === 3) return res.writeHead(200, enhanced).end('BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:cut');
    res.writeHead(200, enhanced).end(calendar(stay('a', '20300301', '20300302')));
  });
  const peers = reader(t);
  await peers.read(peerAt(peer.url));
  await peers.read(peerAt(peer.url));
  const failed = await peers.read(peerAt(peer.url));
  assert.equal(failed.outcome, 'failed');
  assert.deepEqual(failed.snapshot?.nights, ['2030-03-01']);
  assert.equal(failed.snapshot?.lastError?.reason, 'not a complete calendar');

  const next = await peers.read(peerAt(peer.url));
  assert.equal(peer.seen[3]?.headers['sync-token'], '"data:,2"', 'nothing of the failed answer was merged');
  assert.equal(next.outcome, 'unchanged');
  assert.equal(next.snapshot?.lastError, undefined);
});

test('copies past their byte bound are dropped, least recently read first: that peer is read in full', async (t) => {
  const answer = (req: IncomingMessage, res: ServerResponse, name: string) => {
    res.writeHead(200, { link: `<x>; ${rel}`, 'content-type': 'text/calendar', 'sync-token': `"data:,${name}"`,
      'preference-applied': 'subscribe-enhanced-get' }).end(calendar(stay(name, '20300301', '20300302')));
  };
  const small = await scriptedPeer(t, (req, res) => answer(req, res, 'small'));
  const other = await scriptedPeer(t, (req, res) => answer(req, res, 'other'));
  // Room for one copy of these (each ≈ 2 × 200 bytes), not two.
  const peers = reader(t, 600);
  for (let i = 0; i < 2; i++) await peers.read(peerAt(small.url));
  for (let i = 0; i < 2; i++) await peers.read(peerAt(other.url));
  await peers.read(peerAt(small.url));
  await peers.read(peerAt(other.url));

  assert.deepEqual(small.seen.map((s) => s.headers['sync-token']), [undefined, undefined, undefined]);
  assert.deepEqual(other.seen.map((s) => s.headers['sync-token']), [undefined, undefined, undefined]);
});
