// Regression: "why did (or didn't) it notify?" had no answer after a restart: push decisions lived in
// memory only (the last one per listing, for status), so a deploy wiped the evidence of a missed
// booking. Now (SPEC "Push": every decision is recorded) each classification, with its nights, rule,
// evidence and the peers it notified, is kept per listing in the store (the last 50) and served newest
// first at `GET /_icalpush/listings/{id}`, behind the admin guard (401 without the token when one is
// set), 404 for a listing not in the map. Through the real app on a sqlite store file and a fake clock,
// closed and started again on the same file.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type TestContext, test } from 'node:test';
import { request } from 'undici';
import type { ConfigInput } from '../../src/config/schema.ts';
import { openStore } from '../../src/store/open-store.ts';
import { startApp, type TestApp } from '../helpers/app.ts';
import { calendarOf, stay } from '../helpers/hostile.ts';
import { eventually } from '../helpers/network.ts';
import { startServer } from '../helpers/servers.ts';
import { createFakeClock, type FakeClock } from '../store/fake-clock.ts';

const listing = 'x';
const token = 'decision-log-test-token';
const auth = { authorization: `Bearer ${token}` };

type Decision = {
  kind: string;
  evidence: Array<{ peer: string; night: string; shows: string; readAt: string }>;
  rule: string;
  at: string;
  nights: { added: string[]; removed: string[] };
  notified: string[];
  version?: number;
  why: string;
};

type ListingJson = { id: string; decisions: Decision[]; pending: unknown[] };

async function setup(t: TestContext) {
  const dir = await mkdtemp(join(tmpdir(), 'icalpush-decisions-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const path = join(dir, 'icalpush.db');
  const feed = { text: calendarOf(stay('a@test', '20270110', '20270115')) };
  const upstream = await startServer(t, (req, res) => {
    if (req.method === 'GET' && req.url?.split('?')[0] === `/calendar/${listing}.ics`) {
      res.writeHead(200, { 'content-type': 'text/calendar; charset=utf-8' }).end(feed.text);
      return;
    }
    res.writeHead(404).end();
  });
  const heads: number[] = [];
  const peerFeed = { text: calendarOf() };
  const peer = await startServer(t, (req, res) => {
    if (req.method === 'HEAD') {
      heads.push(Date.now());
      res.writeHead(200).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'text/calendar' }).end(peerFeed.text);
  });
  const config: Partial<ConfigInput> = {
    listings: { [listing]: { peers: [{ name: 'peer', url: `${peer.url}/ical/${listing}.ics` }] } },
    push: { watch: 0 },
    admin: { token },
  };
  const start = async (clock: FakeClock): Promise<TestApp> =>
    startApp(t, upstream.url, config, await openStore(path), clock);
  return { feed, peerFeed, heads, start };
}

const decisionsLogged = (app: TestApp) =>
  app.logs.filter((l) => l.msg === 'listing change classified') as unknown as Decision[];

async function read(app: TestApp, n: number): Promise<Decision> {
  const res = await request(`${app.url}/calendar/${listing}.ics`);
  assert.equal(res.statusCode, 200);
  await res.body.dump();
  await eventually(() => decisionsLogged(app).length >= n, 10_000);
  return decisionsLogged(app)[n - 1] as Decision;
}

async function listingJson(app: TestApp, id = listing): Promise<ListingJson> {
  const res = await request(`${app.url}/_icalpush/listings/${id}`, { headers: auth });
  assert.equal(res.statusCode, 200);
  return await res.body.json() as ListingJson;
}

/** The fields a decision is checked by. */
const brief = (d: Decision) => ({ kind: d.kind, rule: d.rule, nights: d.nights, notified: d.notified });

test('the decision log is in the store: after a restart the same decisions, newest first', async (t) => {
  const { feed, peerFeed, heads, start } = await setup(t);
  const clock = createFakeClock(Date.UTC(2026, 11, 1, 12));
  const first = await start(clock);
  assert.equal((await read(first, 1)).rule, 'first-read');

  clock.advance(60_000);
  feed.text = calendarOf(stay('a@test', '20270110', '20270115'), stay('b@test', '20270301', '20270306'));
  assert.equal((await read(first, 2)).kind, 'primary');
  clock.advance(10);
  await eventually(() => heads.length === 1, 10_000);
  await eventually(() => first.logs.some((l) => l.msg === 'push notification sent'), 10_000);

  // The exporter re-mints the stays under new UIDs with a new summary: the same nights.
  clock.advance(60_000);
  feed.text = calendarOf(
    stay('a2@test', '20270110', '20270115').replace('SUMMARY:Reserved', 'SUMMARY:Booked'),
    stay('b2@test', '20270301', '20270306').replace('SUMMARY:Reserved', 'SUMMARY:Booked'),
  );
  assert.equal((await read(first, 3)).kind, 'no-night-change');

  // A booking made on the peer, imported by the upstream under its own UID: explained, no HEAD.
  clock.advance(60_000);
  peerFeed.text = calendarOf(stay('peer-42', '20270401', '20270404'));
  feed.text = calendarOf(
    stay('a2@test', '20270110', '20270115').replace('SUMMARY:Reserved', 'SUMMARY:Booked'),
    stay('b2@test', '20270301', '20270306').replace('SUMMARY:Reserved', 'SUMMARY:Booked'),
    stay('imported-1@test', '20270401', '20270404'),
  );
  const imported = await read(first, 4);
  assert.equal(imported.kind, 'imported', imported.why);
  assert.deepEqual(imported.evidence.map((e) => [e.peer, e.night, e.shows]), [['peer', '2027-04-01/2027-04-04', 'busy']]);

  clock.advance(60_000);
  const changed = await request(`${first.url}/_icalpush/listings/${listing}/changed`, { method: 'POST', headers: auth });
  assert.equal(changed.statusCode, 202);
  assert.deepEqual((await changed.body.json() as { notified: string[] }).notified, ['peer']);
  clock.advance(10);
  await eventually(() => heads.length === 2, 10_000);
  await eventually(() => first.logs.filter((l) => l.msg === 'push notification sent').length === 2, 10_000);

  const before = (await listingJson(first)).decisions;
  assert.deepEqual(before.map(brief), [
    { kind: 'operator', rule: 'operator', nights: { added: [], removed: [] }, notified: ['peer'] },
    { kind: 'imported', rule: 'peers-explain', nights: { added: ['2027-04-01/2027-04-04'], removed: [] },
      notified: [] },
    { kind: 'no-night-change', rule: 'nights-unchanged', nights: { added: [], removed: [] }, notified: [] },
    { kind: 'primary', rule: 'unexplained-nights', nights: { added: ['2027-03-01/2027-03-06'], removed: [] },
      notified: ['peer'] },
    { kind: 'no-night-change', rule: 'first-read', nights: { added: [], removed: [] }, notified: [] },
  ]);
  // Newest first by time too.
  const times = before.map((d) => Date.parse(d.at));
  assert.deepEqual(times, [...times].sort((a, b) => b - a));
  await first.app.close();

  const second = await start(createFakeClock(Date.UTC(2026, 11, 2, 12)));
  const after = (await listingJson(second)).decisions;
  assert.deepEqual(after, before, 'the same decisions, whole (evidence and all), in the same order');
  assert.equal(after[1]?.evidence[0]?.readAt, imported.evidence[0]?.readAt);
  // The restarted sidecar knows what the peers were told: a notify for the same content sends nothing.
  const again = await request(`${second.url}/_icalpush/listings/${listing}/changed`, { method: 'POST', headers: auth });
  assert.equal(again.statusCode, 202);
  assert.deepEqual((await again.body.json() as { notified: string[] }).notified, []);
  assert.equal(heads.length, 2);
});

test('at most the last 50 decisions are kept, newest first, across a restart', async (t) => {
  const { feed, start } = await setup(t);
  const clock = createFakeClock(Date.UTC(2026, 11, 1, 12));
  const app = await start(clock);
  await read(app, 1);
  // 60 changes, each news: a second stay booked, then cancelled, then booked again…
  const first = stay('a@test', '20270110', '20270115');
  for (let i = 1; i <= 60; i += 1) {
    clock.advance(60_000);
    feed.text = i % 2 === 1 ? calendarOf(first, stay('b@test', '20270301', '20270303')) : calendarOf(first);
    const decision = await read(app, i + 1);
    assert.equal(decision.kind, 'primary');
  }
  const kept = (await listingJson(app)).decisions;
  assert.equal(kept.length, 50);
  const versions = kept.map((d) => d.version);
  assert.deepEqual(versions, Array.from({ length: 50 }, (_, i) => 61 - i), 'the newest 50, newest first');
  await app.app.close();

  const restarted = await start(createFakeClock(Date.UTC(2026, 11, 2, 12)));
  assert.deepEqual((await listingJson(restarted)).decisions, kept);
});

test('changes in a row that leave the nights as they were are one entry, with how many and since when', async (t) => {
  const { feed, heads, start } = await setup(t);
  const clock = createFakeClock(Date.UTC(2026, 11, 1, 12));
  const app = await start(clock);
  await read(app, 1);
  const firstAt = new Date(clock.now() + 60_000).toISOString();
  // 60 changes that change no night: only the summary does (an export rewriting its text on every read).
  for (let i = 1; i <= 60; i += 1) {
    clock.advance(60_000);
    feed.text = calendarOf(stay('a@test', '20270110', '20270115').replace('SUMMARY:Reserved', `SUMMARY:Reserved ${i}`));
    assert.equal((await read(app, i + 1)).rule, 'nights-unchanged');
  }
  const kept = (await listingJson(app)).decisions as (Decision & { repeats?: number; firstAt?: string })[];
  assert.deepEqual(kept.map((d) => [d.rule, d.repeats, d.firstAt]),
    [['nights-unchanged', 60, firstAt], ['first-read', undefined, undefined]]);
  assert.equal(kept[0]?.version, 61, 'the latest of them');
  assert.equal(heads.length, 0);
});

test('the listing endpoint: 404 for a listing not in the map, 401 without the admin token', async (t) => {
  const { start } = await setup(t);
  const app = await start(createFakeClock(Date.UTC(2026, 11, 1, 12)));
  await read(app, 1);

  const unknown = await request(`${app.url}/_icalpush/listings/no-such-listing`, { headers: auth });
  assert.equal(unknown.statusCode, 404);
  await unknown.body.dump();
  const unknownNotify = await request(`${app.url}/_icalpush/listings/no-such-listing/changed`,
    { method: 'POST', headers: auth });
  assert.equal(unknownNotify.statusCode, 404);
  await unknownNotify.body.dump();

  for (const headers of [{}, { authorization: 'Bearer wrong-token' }, { authorization: token }]) {
    const res = await request(`${app.url}/_icalpush/listings/${listing}`, { headers });
    assert.equal(res.statusCode, 401, JSON.stringify(headers));
    const body = await res.body.text();
    assert.ok(!body.includes('first-read'), 'no decision shown without the token');
    // Nor for an unknown listing: an unauthorized client cannot map which ids exist.
    const other = await request(`${app.url}/_icalpush/listings/no-such-listing`, { headers });
    assert.equal(other.statusCode, 401);
    await other.body.dump();
  }
  const refused = await request(`${app.url}/_icalpush/listings/${listing}/changed`, { method: 'POST' });
  assert.equal(refused.statusCode, 401);
  await refused.body.dump();

  const ok = await listingJson(app);
  assert.equal(ok.id, listing);
  assert.equal(ok.decisions.length, 1);
  assert.equal(ok.decisions[0]?.rule, 'first-read');
});
