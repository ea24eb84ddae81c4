// Reload (SPEC "Reload"): the config and its listings file are read again while the sidecar serves. The new map
// takes effect for new work (a listing added is pushed for, a peer moved is told at its new URL, a listing
// removed is left alone), state is kept, and a file with any error is refused whole with every problem, the map
// in force unchanged.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type TestContext, test } from 'node:test';
import { request } from 'undici';
import { type App, createApp, type ReloadOutcome } from '../../src/app.ts';
import { type ConfigResult, formatProblems, loadConfigFile } from '../../src/config/load.ts';
import { loadConfigOffThread } from '../../src/config/load-off-thread.ts';
import { createLogger } from '../../src/log.ts';
import { openStore } from '../../src/store/open-store.ts';
import { testPool } from '../helpers/analysis.ts';
import { dayFromNow, type Stay, staysCalendar } from '../helpers/calendars.ts';
import { eventually } from '../helpers/network.ts';
import { startServer } from '../helpers/servers.ts';

const header = 'listing,peer_name,peer_url,notify,timezone';

/** A legacy platform: each listing's feed, and a booking endpoint that adds a stay; its feed reads counted. */
async function startPlatform(t: TestContext) {
  const stays = new Map<string, Stay[]>();
  const reads = new Map<string, number>();
  const server = await startServer(t, (req, res) => {
    const feed = /^\/calendar\/([^/]+)\.ics$/.exec(req.url ?? '');
    if (feed && req.method === 'GET') {
      const id = feed[1] ?? '';
      reads.set(id, (reads.get(id) ?? 0) + 1);
      res.writeHead(200, { 'content-type': 'text/calendar' }).end(staysCalendar(stays.get(id) ?? []));
      return;
    }
    const booking = /^\/bookings\/([^/]+)\//.exec(req.url ?? '');
    if (booking && req.method === 'POST') {
      const id = booking[1] ?? '';
      const list = stays.get(id) ?? [];
      const n = list.length + 1;
      list.push({ uid: `${id}-${n}@platform`, start: dayFromNow(10 * n), end: dayFromNow(10 * n + 2) });
      stays.set(id, list);
      res.writeHead(201).end();
      return;
    }
    res.writeHead(404).end();
  });
  return { url: server.url, reads: (id: string) => reads.get(id) ?? 0 };
}

/** The OTAs: an empty calendar for every GET, every HEAD recorded by path. */
async function startPeers(t: TestContext) {
  const heads: string[] = [];
  const server = await startServer(t, (req, res) => {
    if (req.method === 'HEAD') {
      heads.push(req.url ?? '');
      res.writeHead(200).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'text/calendar' }).end(staysCalendar([]));
  });
  return { url: server.url, heads };
}

type Rig = {
  app: App;
  url: string;
  writeListings(text: string): Promise<void>;
  writeConfig(extra?: string): Promise<void>;
  reload(): Promise<{ status: number; outcome: ReloadOutcome }>;
  logs: Array<Record<string, unknown>>;
  loads: () => number;
};

/** A sidecar started from a config file naming a listings CSV, reloaded from those files. */
async function startRig(t: TestContext, upstream: string, listings: string,
  options: { offThread?: boolean; watch?: string } = {}): Promise<Rig> {
  const dir = await mkdtemp(join(tmpdir(), 'icalpush-reload-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const configPath = join(dir, 'proxy.yaml');
  const writeConfig = (extra = '') => writeFile(configPath, [
    'listen: 127.0.0.1:0',
    `upstream: ${upstream}`,
    'store: memory',
    'feeds:',
    '  - path: /calendar/{listing}.ics',
    'listingsFile: ./listings.csv',
    'push:',
    `  watch: ${options.watch ?? '0'}`,
    '  debounce: 0',
    '  triggers:',
    '    - path: /bookings/{listing}/**',
    extra,
  ].join('\n'));
  const writeListings = (text: string) => writeFile(join(dir, 'listings.csv'), text);
  await writeConfig();
  await writeListings(listings);
  const first = await loadConfigFile(configPath, {});
  assert.ok(first.ok, first.ok ? '' : formatProblems(first.problems, configPath));
  const logs: Array<Record<string, unknown>> = [];
  const logger = createLogger({ level: 'info', destination: { write: (line: string) => logs.push(JSON.parse(line)) } });
  let loads = 0;
  const app = createApp(first.config, {
    store: await openStore('memory'),
    logger,
    pool: testPool(),
    map: first.map,
    reloadConfig: (): Promise<ConfigResult> => {
      loads += 1;
      return options.offThread ? loadConfigOffThread(configPath, {}) : loadConfigFile(configPath, {});
    },
  });
  const { url } = await app.listen();
  t.after(() => app.close());
  return {
    app, url, writeListings, writeConfig, logs, loads: () => loads,
    async reload() {
      const res = await request(`${url}/_icalpush/reload`, { method: 'POST' });
      return { status: res.statusCode, outcome: await res.body.json() as ReloadOutcome };
    },
  };
}

async function book(rig: Rig, listing: string): Promise<void> {
  const res = await request(`${rig.url}/bookings/${listing}/new`, { method: 'POST' });
  assert.equal(res.statusCode, 201);
  await res.body.dump();
}

async function readFeed(rig: Rig, listing: string): Promise<void> {
  const res = await request(`${rig.url}/calendar/${listing}.ics`);
  assert.equal(res.statusCode, 200);
  await res.body.dump();
}

test('a reload puts the new map in force: a listing added is pushed for, a peer moved is told at its new URL, '
  + 'a listing removed is no longer read', async (t) => {
  const platform = await startPlatform(t);
  const peers = await startPeers(t);
  const rig = await startRig(t, platform.url, `${header}\na,airbnb,${peers.url}/airbnb/a-old.ics,,\n`);
  await readFeed(rig, 'a');
  // Before the reload, b is no listing: a trigger on it re-reads nothing.
  await book(rig, 'b');
  await book(rig, 'a');
  await eventually(() => peers.heads.includes('/airbnb/a-old.ics'));
  assert.equal(platform.reads('b'), 0);

  await rig.writeListings(`${header}\na,airbnb,${peers.url}/airbnb/a-new.ics,,\nb,vrbo,${peers.url}/vrbo/b.ics,,\n`);
  const { status, outcome } = await rig.reload();
  assert.equal(status, 200, JSON.stringify(outcome));
  assert.deepEqual({ ...outcome, at: undefined },
    { ok: true, at: undefined, listings: 2, added: 1, removed: 0, changed: 1, restartNeeded: [] });

  await readFeed(rig, 'b');
  await book(rig, 'b');
  await book(rig, 'a');
  await eventually(() => peers.heads.includes('/vrbo/b.ics') && peers.heads.includes('/airbnb/a-new.ics'));
  assert.equal(peers.heads.filter((h) => h === '/airbnb/a-old.ics').length, 1, 'the old URL is told nothing more');

  // a removed: its trigger re-reads nothing; b's, made after it, is still served.
  await rig.writeListings(`${header}\nb,vrbo,${peers.url}/vrbo/b.ics,,\n`);
  assert.equal((await rig.reload()).outcome.ok, true);
  const readsOfA = platform.reads('a');
  await book(rig, 'a');
  await book(rig, 'b');
  await eventually(() => peers.heads.filter((h) => h === '/vrbo/b.ics').length === 2);
  assert.equal(platform.reads('a'), readsOfA);

  const status2 = await (await request(`${rig.url}/_icalpush/status`)).body.json() as {
    listings: Record<string, unknown>; map: Record<string, unknown>; push: Record<string, unknown>;
  };
  assert.deepEqual(Object.keys(status2.listings), ['b']);
  assert.deepEqual(Object.keys(status2.push), ['b']);
  assert.equal(status2.map.reloads, 2);
  assert.equal(status2.map.listings, 1);
  assert.match(String((status2.map.listingsFile as { path: string }).path), /listings\.csv$/);
  assert.ok(rig.logs.some((l) => l.msg === 'config reloaded' && l.removed === 1));
});

test('a listings file with errors is refused whole with every problem; the map in force stays', async (t) => {
  const platform = await startPlatform(t);
  const peers = await startPeers(t);
  const rig = await startRig(t, platform.url, `${header}\na,airbnb,${peers.url}/airbnb/a.ics,,\n`);
  await rig.writeListings(`${header}\na,airbnb,ftp://nope,,\nc,vrbo,${peers.url}/c.ics,maybe,\n`);
  const { status, outcome } = await rig.reload();
  assert.equal(status, 422);
  assert.equal(outcome.ok, false);
  assert.ok(!outcome.ok);
  assert.equal(outcome.problems.length, 2, outcome.problems.join('\n'));
  assert.match(outcome.problems[0] ?? '', /^listings\.a\.peers\[0\]\.url: must be an http.*listings\.csv line 2\)$/);
  assert.match(outcome.problems[1] ?? '', /^listings\.c\.peers\[0\]\.notify: must be true or false.*listings\.csv line 3\)$/);
  const refused = rig.logs.find((l) => l.msg === 'reload refused: the map in force is kept');
  assert.deepEqual(refused?.problems, outcome.problems);

  // The old map works as before.
  await readFeed(rig, 'a');
  await book(rig, 'a');
  await eventually(() => peers.heads.includes('/airbnb/a.ics'));
  const status2 = await (await request(`${rig.url}/_icalpush/status`)).body.json() as { map: Record<string, unknown> };
  assert.equal(status2.map.reloads, 0);
  assert.equal((status2.map.lastReload as { ok: boolean }).ok, false);
});

test('a reload read by a worker thread; keys that need a restart are named, the map still applied', async (t) => {
  const platform = await startPlatform(t);
  const rig = await startRig(t, platform.url, `${header}\na,,,,\n`, { offThread: true });
  await rig.writeConfig('timeouts:\n  upstream: 5s');
  await rig.writeListings(`${header}\na,,,,\nb,,,,\n`);
  const { outcome } = await rig.reload();
  assert.deepEqual({ ...outcome, at: undefined },
    { ok: true, at: undefined, listings: 2, added: 1, removed: 0, changed: 0, restartNeeded: ['timeouts'] });
  assert.ok(rig.logs.some((l) => l.msg === 'changed keys take effect at the next restart'));
  // The off-thread reader refuses as the in-process one does.
  await rig.writeListings('listing;peer_url\n');
  const refused = await rig.reload();
  assert.equal(refused.status, 422);
  assert.match(JSON.stringify(refused.outcome), /separated by \\";\\"/);
});

test('reloads asked for while one runs share one more run after it', async (t) => {
  const platform = await startPlatform(t);
  const rig = await startRig(t, platform.url, `${header}\na,,,,\n`);
  const outcomes = await Promise.all(Array.from({ length: 6 }, () => rig.app.reload()));
  assert.ok(outcomes.every((o) => o.ok));
  assert.equal(rig.loads(), 2);
});

test('a sidecar started without a config file refuses a reload, saying why', async (t) => {
  const platform = await startPlatform(t);
  const { startApp } = await import('../helpers/app.ts');
  const app = await startApp(t, platform.url);
  const res = await request(`${app.url}/_icalpush/reload`, { method: 'POST' });
  assert.equal(res.statusCode, 422);
  assert.match(await res.body.text(), /not started from a configuration file/);
  const get = await request(`${app.url}/_icalpush/reload`);
  assert.equal(get.statusCode, 405);
  await get.body.dump();
});

test('the watch follows a reload: a listing added is watched, a listing removed is read no more', async (t) => {
  const platform = await startPlatform(t);
  const rig = await startRig(t, platform.url, `${header}\na,,,,\n`, { watch: '100ms' });
  await eventually(() => platform.reads('a') >= 2);
  assert.equal(platform.reads('b'), 0);
  await rig.writeListings(`${header}\nb,,,,\n`);
  assert.equal((await rig.reload()).outcome.ok, true);
  // b is read by the watch alone (nobody GETs it); once it has been read a few times since, a is read no more.
  await eventually(() => platform.reads('b') >= 2);
  const readsOfA = platform.reads('a');
  const readsOfB = platform.reads('b');
  await eventually(() => platform.reads('b') >= readsOfB + 3);
  assert.ok(platform.reads('a') <= readsOfA + 1, `a read ${platform.reads('a') - readsOfA} more times`);
});
