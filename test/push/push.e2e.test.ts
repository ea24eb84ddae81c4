// Push end to end: simulated platforms each behind an icalpush on 127.0.0.1. A booking or a
// cancellation on one reaches the others through iPP HEADs and their refresh action, exactly one
// round of HEADs goes out, and nothing echoes back (iPP §3.3).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { request } from 'undici';
import { runDemo } from '../../src/demo/demo.ts';
import { startApp } from '../helpers/app.ts';
import { eventually, listing, startNetwork } from '../helpers/network.ts';
import { startServer } from '../helpers/servers.ts';

const day = (offset: number) => new Date(Date.now() + offset * 86_400_000).toISOString().slice(0, 10);
const importedBy = (node: { platform: { imported(): Record<string, { start: string }[]> } }, start: string) =>
  Object.values(node.platform.imported()).some((stays) => stays.some((s) => s.start === start));
const metric = async (sidecar: string, pattern: RegExp) => {
  const text = await (await request(`${sidecar}/_icalpush/metrics`)).body.text();
  const match = pattern.exec(text);
  return match ? Number(match[1]) : 0;
};
const sentBy = (sidecar: string) => metric(sidecar, /^icalpush_push_notifications_total\{outcome="sent"\} (\d+)/m);

async function prime(nodes: Awaited<ReturnType<typeof startNetwork>>) {
  // Every platform imports once and every sidecar has read its own feed: the state before a booking.
  for (const node of nodes) await node.platform.syncNow('schedule');
  for (const node of nodes) await (await request(node.feedUrl)).body.dump();
  // Let the sidecars finish classifying those first reads (they read their peers to do it).
  await sleep(500);
}

test('a booking on one platform is imported by the other two through push, once, with no echo', async (t) => {
  const nodes = await startNetwork(t, ['alpha', 'beta', 'gamma']);
  const [alpha, beta, gamma] = nodes as [typeof nodes[0], typeof nodes[0], typeof nodes[0]];
  await prime(nodes);
  const stay = { start: day(20), end: day(23) };
  const res = await request(`${alpha.sidecar}/bookings/${listing}`, { method: 'POST', body: JSON.stringify(stay) });
  assert.equal(res.statusCode, 201);
  await res.body.dump();
  await eventually(() => importedBy(beta, stay.start) && importedBy(gamma, stay.start));
  // The re-reads after a refresh run at 0 and 2 s: give any echo time to show.
  await sleep(2_500);
  assert.equal(await sentBy(alpha.sidecar), 2);
  assert.equal(await sentBy(beta.sidecar), 0);
  assert.equal(await sentBy(gamma.sidecar), 0);
  assert.equal(alpha.headsReceived(), 0);
  assert.equal(beta.headsReceived(), 1);
  assert.equal(gamma.headsReceived(), 1);
  // The propagation histogram saw each stage once per peer: alpha's two HEADs, beta's refresh and import.
  const stage = (sidecar: string, name: string) =>
    metric(sidecar, new RegExp(`^icalpush_push_propagation_seconds_count\\{stage="${name}"\\} (\\d+)`, 'm'));
  assert.equal(await stage(alpha.sidecar, 'notified'), 2);
  assert.equal(await stage(beta.sidecar, 'refreshed'), 1);
  assert.equal(await stage(beta.sidecar, 'imported'), 1);
  assert.equal(await stage(beta.sidecar, 'notified'), 0);
  // beta's import of the stay was classified imported, by dates, and never as primary.
  const classified = beta.logs.filter((l) => l.msg === 'listing change classified');
  assert.ok(classified.every((l) => l.kind !== 'primary'), JSON.stringify(classified));
  assert.ok(classified.some((l) => l.kind === 'imported'
    && JSON.stringify((l.nights as { added: string[] }).added) === JSON.stringify([`${day(20)}/${day(23)}`])
    && (l.evidence as { peer: string; shows: string }[]).every((e) => e.shows === 'busy')));
});

test('a cancellation propagates the same way and frees the nights everywhere', async (t) => {
  const nodes = await startNetwork(t, ['alpha', 'beta']);
  const [alpha, beta] = nodes as [typeof nodes[0], typeof nodes[0]];
  const stay = { start: day(30), end: day(32) };
  // Two stays: cancelling one of two is a change; a feed going empty would be held (snapshots.hold).
  for (const booked of [stay, { start: day(50), end: day(52) }]) {
    await (await request(`${alpha.platform.url}/bookings/${listing}`, { method: 'POST', body: JSON.stringify(booked) }))
      .body.dump();
  }
  await prime(nodes);
  assert.ok(importedBy(beta, stay.start));
  const res = await request(`${alpha.sidecar}/bookings/${listing}/${stay.start}`, { method: 'DELETE' });
  assert.equal(res.statusCode, 204);
  await res.body.dump();
  await eventually(() => !importedBy(beta, stay.start));
  await sleep(2_500);
  assert.equal(await sentBy(alpha.sidecar), 1);
  assert.equal(await sentBy(beta.sidecar), 0);
  assert.equal(alpha.headsReceived(), 0);
});

test('a block the platform imported on its own schedule notifies nobody', async (t) => {
  const nodes = await startNetwork(t, ['alpha', 'beta']);
  const [alpha, beta] = nodes as [typeof nodes[0], typeof nodes[0]];
  await prime(nodes);
  // A booking made on beta without its sidecar seeing the request; beta's sidecar learns of it
  // when alpha's hourly import reads beta's feed through it, and pushes (a primary change there).
  const stay = { start: day(40), end: day(41) };
  await (await request(`${beta.platform.url}/bookings/${listing}`, { method: 'POST', body: JSON.stringify(stay) })).body.dump();
  await alpha.platform.syncNow('schedule');
  assert.ok(importedBy(alpha, stay.start));
  // alpha's sidecar sees the import when its feed is next read (a poller's GET).
  await (await request(alpha.feedUrl)).body.dump();
  await sleep(2_500);
  assert.equal(await sentBy(alpha.sidecar), 0);
  const status = await (await request(`${alpha.sidecar}/_icalpush/status`)).body.json() as {
    push: Record<string, { lastDecision?: { kind: string } }>;
  };
  assert.equal(status.push[listing]?.lastDecision?.kind, 'imported');
});

test('a HEAD flood on one listing: every HEAD answered, at most 2 peer reads and refreshes', async (t) => {
  const peerReads = { a: 0, b: 0 };
  let refreshes = 0;
  const calendar = 'BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\nEND:VCALENDAR\r\n';
  const peerA = await startServer(t, (_req, res) => {
    peerReads.a += 1;
    res.writeHead(200, { 'content-type': 'text/calendar' }).end(calendar);
  });
  const peerB = await startServer(t, (_req, res) => {
    peerReads.b += 1;
    res.writeHead(200, { 'content-type': 'text/calendar' }).end(calendar);
  });
  let upstreamRequests = 0;
  const upstream = await startServer(t, (req, res) => {
    // The listing's own feed is re-read 0, 2, 5… s after its refresh: only the unknown paths are counted.
    if (req.url?.startsWith('/calendar/unknown-')) upstreamRequests += 1;
    if (req.url?.startsWith('/sync/')) refreshes += 1;
    res.writeHead(200, { 'content-type': 'text/calendar' }).end(calendar);
  });
  const { url } = await startApp(t, upstream.url, {
    listings: { [listing]: { peers: [{ url: `${peerA.url}/a.ics` }, { url: `${peerB.url}/b.ics` }] } },
    push: { debounce: '5m', watch: 0 },
    refresh: { url: `${upstream.url}/sync/{listing}` },
  });
  const heads = await Promise.all(Array.from({ length: 2_000 }, () =>
    request(`${url}/calendar/${listing}.ics`, { method: 'HEAD' }).then(async (r) => {
      await r.body.dump();
      return r.statusCode;
    })));
  assert.equal(heads.filter((s) => s === 200).length, 2_000);
  await sleep(300);
  assert.ok(peerReads.a >= 1 && peerReads.a <= 2, `peer a read ${peerReads.a} times`);
  assert.ok(peerReads.b >= 1 && peerReads.b <= 2, `peer b read ${peerReads.b} times`);
  assert.ok(refreshes >= 1 && refreshes <= 2, `${refreshes} refreshes`);

  // HEADs for a listing outside the connection map cost nothing beyond their answer: never read, they are
  // the upstream's HEAD (SPEC "HEAD": no snapshot claims a calendar), one each, and no peer is read.
  const before = { ...peerReads, upstreamRequests };
  await Promise.all(Array.from({ length: 200 }, () =>
    request(`${url}/calendar/unknown-${Math.random()}.ics`, { method: 'HEAD' }).then((r) => r.body.dump())));
  await sleep(200);
  assert.deepEqual({ ...peerReads, upstreamRequests }, { ...before, upstreamRequests: before.upstreamRequests + 200 });
});

test('POST /_icalpush/listings/{id}/changed notifies the listing\'s peers; an unknown id is 404', async (t) => {
  const heads: string[] = [];
  const peer = await startServer(t, (req, res) => {
    heads.push(`${req.method} ${req.headers['user-agent']}`);
    res.writeHead(200).end();
  });
  const upstream = await startServer(t, (_req, res) => res.writeHead(404).end());
  const { url } = await startApp(t, upstream.url, {
    listings: { [listing]: { peers: [{ name: 'peer', url: `${peer.url}/feed.ics` }] } },
    push: { watch: 0 },
  });
  const res = await request(`${url}/_icalpush/listings/${listing}/changed`, { method: 'POST' });
  assert.equal(res.statusCode, 202);
  assert.deepEqual(await res.body.json(), { listing, notified: ['peer'] });
  await eventually(() => heads.length === 1);
  assert.match(heads[0] ?? '', /^HEAD iPP\/0\.1/);
  const unknown = await request(`${url}/_icalpush/listings/nope/changed`, { method: 'POST' });
  assert.equal(unknown.statusCode, 404);
  await unknown.body.dump();
  const get = await request(`${url}/_icalpush/listings/${listing}/changed`);
  assert.equal(get.statusCode, 405);
  await get.body.dump();
});

test('the demo shows propagation to both platforms in well under a second and no echo', async () => {
  const lines: string[] = [];
  const result = await runDemo((line) => lines.push(line));
  assert.equal(result.ok, true, lines.join('\n'));
  assert.equal(result.echoes, 0);
  for (const name of ['beta', 'gamma']) {
    const ms = result.propagationMs[name];
    assert.ok(ms !== undefined && ms < 5_000, `${name}: ${ms}`);
  }
  assert.ok(lines.some((l) => /primary → HEAD to beta and gamma/.test(l)), lines.join('\n'));
  assert.ok(lines.some((l) => /No echo/.test(l)));
});
