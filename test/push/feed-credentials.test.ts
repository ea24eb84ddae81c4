// Feeds and peers behind credentials (SPEC "Configuration": listings.<id>.headers, peers[].headers): the
// sidecar's own reads send the listing's headers, peer reads the peer's, a refusal is logged with the
// status and the listing, the values never appear anywhere, and a client without them never gets what
// they unlock by sharing the sidecar's fetch.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { request } from 'undici';
import { summarizeConfig } from '../../src/config/summary.ts';
import { startApp } from '../helpers/app.ts';
import { calendarOf, stay } from '../helpers/hostile.ts';
import { eventually } from '../helpers/network.ts';
import { startServer } from '../helpers/servers.ts';

const secret = 'Basic c2lkZWNhcjpzM2NyM3QtdmFsdWU=';
const peerSecret = 'peer-key-0f9e8d7c6b5a';

test('own reads send listings.<id>.headers, peer reads peers[].headers; values never shown', async (t) => {
  const seen: { url: string; authorization?: string | undefined }[] = [];
  const upstream = await startServer(t, (req, res) => {
    seen.push({ url: req.url ?? '', authorization: req.headers.authorization });
    if (req.headers.authorization !== secret) {
      res.writeHead(401, { 'www-authenticate': 'Basic realm="feeds"' }).end('no');
      return;
    }
    res.writeHead(200, { 'content-type': 'text/calendar' }).end(calendarOf(stay('a', '20270110', '20270112')));
  });
  const peerKeys: (string | undefined)[] = [];
  const peer = await startServer(t, (req, res) => {
    if (req.method === 'HEAD') {
      res.writeHead(200).end();
      return;
    }
    peerKeys.push(req.headers['x-api-key'] as string | undefined);
    res.writeHead(200, { 'content-type': 'text/calendar' }).end(calendarOf());
  });
  const app = await startApp(t, upstream.url, {
    listings: { x: { headers: { Authorization: secret },
      peers: [{ name: 'peer', url: `${peer.url}/x.ics`, headers: { 'X-Api-Key': peerSecret } }] } },
    push: { watch: 0 },
  });
  // An operator notify makes the sidecar read the feed itself: with the listing's credentials.
  const changed = await request(`${app.url}/_icalpush/listings/x/changed`, { method: 'POST' });
  assert.equal(changed.statusCode, 202);
  await changed.body.dump();
  assert.deepEqual(seen.map((s) => s.authorization), [secret]);
  // An inbound HEAD makes it read the peer: with the peer's headers.
  await (await request(`${app.url}/calendar/x.ics`, { method: 'HEAD' })).body.dump();
  await eventually(() => peerKeys.length >= 1);
  assert.deepEqual(peerKeys, [peerSecret]);
  // A client without credentials gets the upstream's refusal, never the sidecar's calendar.
  const anonymous = await request(`${app.url}/calendar/x.ics`);
  assert.equal(anonymous.statusCode, 401);
  await anonymous.body.dump();

  const status = await (await request(`${app.url}/_icalpush/status`)).body.text();
  const listing = await (await request(`${app.url}/_icalpush/listings/x`)).body.text();
  for (const text of [status, listing, app.logText(), summarizeConfig(app.config, 'proxy.yaml')]) {
    assert.ok(!text.includes('c2lkZWNhcjpzM2NyM3QtdmFsdWU'), 'the listing credential is never shown');
    assert.ok(!text.includes(peerSecret), 'the peer credential is never shown');
  }
  assert.match(summarizeConfig(app.config, 'proxy.yaml'), /headers: Authorization/);
  assert.match(summarizeConfig(app.config, 'proxy.yaml'), /headers: X-Api-Key/);
});

test('concurrent reads with and without the listing\'s credential header (any name) never share one upstream fetch', async (t) => {
  let release: () => void = () => {};
  const gate = new Promise<void>((resolve) => {
    release = resolve;
  });
  const seen: (string | undefined)[] = [];
  const upstream = await startServer(t, async (req, res) => {
    seen.push(req.headers['x-feed-key'] as string | undefined);
    await gate;
    if (req.headers['x-feed-key'] !== secret) {
      res.writeHead(401).end('no');
      return;
    }
    res.writeHead(200, { 'content-type': 'text/calendar' }).end(calendarOf(stay('a', '20270110', '20270112')));
  });
  const app = await startApp(t, upstream.url, {
    listings: { x: { headers: { 'X-Feed-Key': secret } } }, push: { watch: 0 },
  });
  const own = request(`${app.url}/_icalpush/listings/x/changed`, { method: 'POST' });
  await eventually(() => seen.length >= 1);
  const anonymous = request(`${app.url}/calendar/x.ics`);
  await eventually(() => seen.length >= 2);
  release();
  const [ownRes, anonRes] = await Promise.all([own, anonymous]);
  await ownRes.body.dump();
  assert.equal(anonRes.statusCode, 401);
  await anonRes.body.dump();
  assert.deepEqual([...seen].sort(), [secret, undefined].sort());
});

test('a feed refusing the sidecar\'s credentials is logged with the status and the listing', async (t) => {
  const upstream = await startServer(t, (_req, res) => {
    res.writeHead(403, { 'content-type': 'text/plain' }).end('forbidden');
  });
  const app = await startApp(t, upstream.url, {
    listings: { x: { headers: { Authorization: secret } } }, push: { watch: 0 },
  });
  await (await request(`${app.url}/_icalpush/listings/x/changed`, { method: 'POST' })).body.dump();
  const line = await app.waitForLog((l) => l.msg === 'own feed read refused: check listings.<id>.headers');
  assert.equal(line.listing, 'x');
  assert.equal(line.status, 403);
  assert.deepEqual(line.headers, ['Authorization']);
});

test('what the sidecar read with the listing\'s credentials is never answered to a client without them', async (t) => {
  const upstream = await startServer(t, (req, res) => {
    if (req.headers.authorization !== secret) {
      res.writeHead(401, { 'www-authenticate': 'Basic realm="feeds"' }).end('no');
      return;
    }
    res.writeHead(200, { 'content-type': 'text/calendar' }).end(calendarOf(stay('private', '20270110', '20270112')));
  });
  const app = await startApp(t, upstream.url, {
    feeds: [{ path: '/calendar/{listing}.ics', maxAge: '1h' }],
    listings: { x: { headers: { Authorization: secret } } }, push: { watch: 0 },
  });
  await (await request(`${app.url}/_icalpush/listings/x/changed`, { method: 'POST' })).body.dump();
  const listing = await (await request(`${app.url}/_icalpush/listings/x`)).body.json() as { snapshot?: { version?: number } };
  assert.equal(listing.snapshot?.version, 1, 'the sidecar read the feed with its credentials');
  // maxAge would answer from a fresh snapshot: not from this one.
  for (const headers of [{}, { prefer: 'subscribe-enhanced-get' }]) {
    const res = await request(`${app.url}/calendar/x.ics`, { headers });
    assert.equal(res.statusCode, 401, JSON.stringify(headers));
    assert.doesNotMatch(await res.body.text(), /private/);
    assert.equal(res.headers['sync-token'], undefined);
  }
  const head = await request(`${app.url}/calendar/x.ics`, { method: 'HEAD' });
  await head.body.dump();
  assert.equal(head.statusCode, 401, 'HEAD claims no calendar for a client without credentials');
  // A client with the very credentials reads the calendar itself.
  const allowed = await request(`${app.url}/calendar/x.ics`, { headers: { authorization: secret } });
  assert.equal(allowed.statusCode, 200);
  assert.match(await allowed.body.text(), /private/);
});
