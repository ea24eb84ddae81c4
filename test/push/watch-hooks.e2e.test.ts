// Through the whole app: push.watch re-reads own feeds on its own and notifies on a primary change;
// an iCal Hooks subscription made on a feed GET gets one HEAD at the feed's next change, and hook
// targets that never answer do not hold up the peers' notification.
import { nightsOfRuns } from '../../src/push/decide/night-runs.ts';
import assert from 'node:assert/strict';
import { type TestContext, test } from 'node:test';
import { request } from 'undici';
import { startApp } from '../helpers/app.ts';
import { eventually } from '../helpers/network.ts';
import { startServer } from '../helpers/servers.ts';

const day = (offset: number) => new Date(Date.now() + offset * 86_400_000).toISOString().slice(0, 10).replaceAll('-', '');
const event = (uid: string, offset: number) => `BEGIN:VEVENT\r\nUID:${uid}\r\nDTSTAMP:20260101T000000Z\r\n`
  + `DTSTART;VALUE=DATE:${day(offset)}\r\nDTEND;VALUE=DATE:${day(offset + 2)}\r\nEND:VEVENT\r\n`;
const calendar = (...events: string[]) => `BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\n${events.join('')}END:VCALENDAR\r\n`;

async function setup(t: TestContext, overrides: Record<string, unknown>, onPeerHead?: () => void) {
  const upstream = { text: calendar(event('a', 10)), reads: 0 };
  const server = await startServer(t, (_req, res) => {
    upstream.reads += 1;
    res.writeHead(200, { 'content-type': 'text/calendar' }).end(upstream.text);
  });
  const heads: string[] = [];
  const peer = await startServer(t, (req, res) => {
    if (req.method === 'HEAD') {
      heads.push(req.url ?? '');
      onPeerHead?.();
    }
    res.writeHead(200, { 'content-type': 'text/calendar' }).end(calendar());
  });
  const app = await startApp(t, server.url, {
    listings: { 'beach-house': { peers: [{ name: 'peer', url: `${peer.url}/peer.ics` }] } },
    ...overrides,
  });
  return { upstream, heads, peer, app };
}

test('push.watch re-reads the own feed on its own and notifies peers of a primary change', async (t) => {
  const { upstream, heads, app } = await setup(t, { push: { watch: '200ms' } });
  await eventually(() => upstream.reads >= 2);
  upstream.text = calendar(event('a', 10), event('b', 20));
  await eventually(() => heads.length === 1);
  assert.deepEqual(heads, ['/peer.ics']);
  const line = await app.waitForLog((l) => l.msg === 'listing change classified' && l.kind === 'primary');
  assert.deepEqual(nightsOfRuns((line.nights as { added: string[] }).added).length, 2);
});

// The watch's spread, bound and back-off are tested on a fake clock in test/push/watch.test.ts.

test('an iCal Hooks subscription gets one HEAD at the next change, and none after', async (t) => {
  const hookHeads: string[] = [];
  const hook = await startServer(t, (req, res) => {
    hookHeads.push(`${req.method} ${req.url}`);
    res.writeHead(200).end();
  });
  const { upstream, app } = await setup(t, { push: { watch: 0 }, hooks: { allowPrivateNetworks: true } });
  const feed = `${app.url}/calendar/beach-house.ics`;
  const first = await request(feed, { headers: { 'x-icalhooks-url': `${hook.url}/hook?x=1` } });
  assert.equal(first.statusCode, 200);
  await first.body.dump();
  // Registration resolves the host after the answer: wait until it is counted.
  for (let i = 0; i < 100; i += 1) {
    const metrics = await (await request(`${app.url}/_icalpush/metrics`)).body.text();
    if (/^icalpush_hook_registrations_total 1$/m.test(metrics)) break;
    await new Promise((r) => setTimeout(r, 10));
  }
  upstream.text = calendar(event('a', 10), event('c', 30));
  await (await request(feed)).body.dump();
  await eventually(() => hookHeads.length === 1);
  assert.deepEqual(hookHeads, ['HEAD /hook?x=1']);
  upstream.text = calendar(event('a', 10));
  await (await request(feed)).body.dump();
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(hookHeads.length, 1);
});

test('a hook URL on loopback is refused by default and the GET is answered as usual', async (t) => {
  const hookHeads: string[] = [];
  const hook = await startServer(t, (req, res) => {
    hookHeads.push(req.method ?? '');
    res.writeHead(200).end();
  });
  const { upstream, app } = await setup(t, { push: { watch: 0 } });
  const feed = `${app.url}/calendar/beach-house.ics`;
  const res = await request(feed, { headers: { 'x-icalhooks-url': `${hook.url}/hook` } });
  assert.equal(res.statusCode, 200);
  assert.match(await res.body.text(), /BEGIN:VCALENDAR/);
  upstream.text = calendar(event('a', 10), event('d', 40));
  await (await request(feed)).body.dump();
  await new Promise((r) => setTimeout(r, 300));
  assert.deepEqual(hookHeads, []);
  const metrics = await (await request(`${app.url}/_icalpush/metrics`)).body.text();
  assert.match(metrics, /icalpush_hook_refusals_total\{reason="private-address"\} 1/);
});

test('hook targets that never answer do not delay the peers\' iPP HEAD', async (t) => {
  const hole = { received: 0, open: 0 };
  const blackHole = await startServer(t, (req) => {
    hole.received += 1;
    hole.open += 1;
    req.socket.once('close', () => {
      hole.open -= 1;
    });
  });
  let answeredAtPeerHead: number | undefined;
  const { upstream, heads, app } = await setup(t, { push: { watch: 0 }, hooks: { allowPrivateNetworks: true } }, () => {
    answeredAtPeerHead ??= hole.received - hole.open;
  });
  const feed = `${app.url}/calendar/beach-house.ics`;
  for (let i = 0; i < 20; i += 1) {
    await (await request(feed, { headers: { 'x-icalhooks-url': `${blackHole.url}/hook-${i}` } })).body.dump();
  }
  await eventually(() => app.logs.filter((l) => l.msg === 'hook registered').length === 20);
  upstream.text = calendar(event('a', 10), event('e', 50));
  await (await request(feed)).body.dump();
  // The old behaviour held the classification until every hook HEAD had timed out (5 s each, 16 at a time).
  await eventually(() => heads.length === 1 && hole.received === 16, 4_000);
  assert.equal(answeredAtPeerHead, 0);
  assert.equal(hole.open, 16);
});
