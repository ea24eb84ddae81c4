// A real CalDAV server as the upstream: Radicale (the Debian package .ci/run installs) behind icalpush.
// CalDAV writes through the sidecar show up in its deltas; the DAV protocol (OPTIONS, PROPFIND, REPORT)
// answers as Radicale does direct. Skipped, with the reason, where Radicale is not installed.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, type TestContext, test } from 'node:test';
import { type Dispatcher, request } from 'undici';
import { startApp } from '../helpers/app.ts';

// The Debian package puts `radicale` on PATH (for the system Python, which a pyenv `python3` may not be).
const radicaleCommand = [['radicale'], ['/usr/bin/python3', '-m', 'radicale'], ['python3', '-m', 'radicale']]
  .find(([command, ...args]) => spawnSync(command!, [...args, '--version']).status === 0);
const skip = radicaleCommand ? false
  : 'Radicale not installed (neither `radicale` nor `python3 -m radicale` runs; .ci/run installs the Debian package)';

const user = 'alice';
const password = 'wonderland';
const basic = `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
const rel = 'rel="subscribe-enhanced-get subscribe-enhanced_get"';
// Headers of one connection or one moment, never the same twice: the rest of an answer must be.
const perConnection = new Set(['date', 'connection', 'keep-alive', 'transfer-encoding']);

/** A running Radicale: its origin, and the end of it. */
type Radicale = { url: string; close(): Promise<void> };

/** Starts Radicale on 127.0.0.1 (any free port) with htpasswd auth, owner-only rights and a temp store;
 * resolves once it logs that it is ready, with the port it logged it listens on. */
async function startRadicale(): Promise<Radicale> {
  const dir = await mkdtemp(join(tmpdir(), 'icalpush-radicale-'));
  await writeFile(join(dir, 'users'), `${user}:${password}\n`);
  await writeFile(join(dir, 'config'), `[server]
hosts = 127.0.0.1:0
[auth]
type = htpasswd
htpasswd_filename = ${join(dir, 'users')}
htpasswd_encryption = plain
[rights]
type = owner_only
[storage]
filesystem_folder = ${join(dir, 'collections')}
[web]
type = none
[logging]
level = info
`);
  const [command, ...args] = radicaleCommand!;
  const child = spawn(command!, [...args, '--config', join(dir, 'config')], { stdio: ['ignore', 'ignore', 'pipe'] });
  // Settles when the process is gone, or could not be started at all.
  const exited = new Promise<void>((resolve) => {
    child.once('exit', () => resolve());
    child.once('error', () => resolve());
  });
  const close = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      await exited;
    }
    await rm(dir, { recursive: true, force: true });
  };
  try {
    return { url: await readiness(child, exited), close };
  } catch (err) {
    await close();
    throw err;
  }
}

/** Radicale's origin once its log says `Listening on '…:port'` then `Radicale server ready`; rejects when it
 * exits first or is not ready within the deadline. Its log keeps being read, so a full pipe never blocks it. */
function readiness(child: ChildProcess, exited: Promise<void>): Promise<string> {
  const log: string[] = [];
  return new Promise<string>((resolve, reject) => {
    let port: string | undefined;
    const deadline = setTimeout(() => reject(new Error(`Radicale not ready in 15 s:\n${log.join('\n')}`)), 15_000);
    const settle = (fn: () => void) => {
      clearTimeout(deadline);
      fn();
    };
    void exited.then(() => settle(() => reject(new Error(`Radicale exited before it was ready:\n${log.join('\n')}`))));
    createInterface({ input: child.stderr! }).on('line', (line) => {
      if (log.length < 200) log.push(line);
      // 3.1 logs `Listening on '[127.0.0.1]:40123'`; other 3.x releases leave out the brackets.
      port ??= /Listening on '?\[?127\.0\.0\.1\]?:(\d+)/.exec(line)?.[1];
      if (!line.includes('Radicale server ready')) return;
      settle(() => (port ? resolve(`http://127.0.0.1:${port}`) : reject(new Error(`no port in:\n${log.join('\n')}`))));
    });
  });
}

/** One HTTP answer, read whole. */
type Answer = { status: number; headers: Dispatcher.ResponseData['headers']; body: Buffer };

/** What to send: alice's credentials unless `anonymous`. */
type Send = { method?: string; headers?: Record<string, string>; body?: string; anonymous?: boolean };

async function send(url: string, options: Send = {}): Promise<Answer> {
  const res = await request(url, {
    method: (options.method ?? 'GET') as Dispatcher.HttpMethod,
    headers: { ...(options.anonymous ? {} : { authorization: basic }), ...options.headers },
    ...(options.body === undefined ? {} : { body: options.body }),
  });
  return { status: res.statusCode, headers: res.headers, body: Buffer.from(await res.body.arrayBuffer()) };
}

/** The same request to Radicale direct and through the sidecar. */
async function both(direct: string, sidecar: string, path: string, options: Send = {}) {
  return { direct: await send(`${direct}${path}`, options), proxied: await send(`${sidecar}${path}`, options) };
}

/** An answer's headers without the per-connection ones. */
function lasting(answer: Answer): Record<string, unknown> {
  return Object.fromEntries(Object.entries(answer.headers).filter(([name]) => !perConnection.has(name)));
}

/** An all-day event as a one-event VCALENDAR, the way a CalDAV client PUTs it. */
function eventIcs(uid: string, start: string, end: string, summary: string): string {
  return ['BEGIN:VCALENDAR', 'VERSION:2.0', 'PRODID:-//icalpush test//CalDAV client//EN',
    'BEGIN:VEVENT', `UID:${uid}`, 'DTSTAMP:20260101T090000Z', `DTSTART;VALUE=DATE:${start}`,
    `DTEND;VALUE=DATE:${end}`, `SUMMARY:${summary}`, 'END:VEVENT', 'END:VCALENDAR', ''].join('\r\n');
}

/** The VEVENT blocks of a calendar text, each as its unfolded lines. */
function vevents(text: string): string[][] {
  const unfolded = text.replace(/\r?\n[ \t]/g, '').split(/\r?\n/);
  const events: string[][] = [];
  let current: string[] | undefined;
  for (const line of unfolded) {
    if (line === 'BEGIN:VEVENT') current = [];
    else if (line === 'END:VEVENT' && current) {
      events.push(current);
      current = undefined;
    } else current?.push(line);
  }
  return events;
}

const calendarBody = '<?xml version="1.0" encoding="utf-8"?>'
  + '<C:mkcalendar xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav"><D:set><D:prop>'
  + '<D:displayname>Stays</D:displayname></D:prop></D:set></C:mkcalendar>';
const xml = { 'content-type': 'application/xml; charset=utf-8' };

describe('Radicale behind icalpush', () => {
  let radicale: Radicale;
  // One Radicale for the file, each test on collections of its own; every test says why it skips.
  before(async () => {
    if (!skip) radicale = await startRadicale();
  });
  after(() => radicale?.close());

  /** The sidecar in front of Radicale, every user's collections `/<user>/<calendar>/` as feeds. */
  const sidecar = async (t: TestContext) => (await startApp(t, radicale.url, { feeds: [{ path: '/*/{listing}/' }] })).url;

  /** Makes the calendar collection `/alice/<name>/` through the sidecar (MKCALENDAR passes through). */
  async function makeCalendar(via: string, name: string): Promise<string> {
    const made = await send(`${via}/${user}/${name}/`, { method: 'MKCALENDAR', headers: xml, body: calendarBody });
    assert.equal(made.status, 201, made.body.toString());
    return `/${user}/${name}/`;
  }

  test('CalDAV PUT and DELETE through the sidecar give an enhanced delta with the new event and a tombstone', { skip }, async (t) => {
    const via = await sidecar(t);
    const path = await makeCalendar(via, 'stays');
    const put = await send(`${via}${path}first.ics`, { method: 'PUT', headers: { 'content-type': 'text/calendar' },
      body: eventIcs('first@icalpush.test', '20270110', '20270113', 'First stay') });
    assert.equal(put.status, 201);

    const full = await send(`${via}${path}`, { headers: { prefer: 'subscribe-enhanced-get' } });
    assert.equal(full.status, 200);
    assert.equal(full.headers['preference-applied'], 'subscribe-enhanced-get');
    const token = String(full.headers['sync-token']);
    assert.match(token, /^"data:,/);
    assert.deepEqual(vevents(full.body.toString()).map((e) => e.find((l) => l.startsWith('UID:'))),
      ['UID:first@icalpush.test']);

    assert.equal((await send(`${via}${path}first.ics`, { method: 'DELETE' })).status, 200);
    assert.equal((await send(`${via}${path}second.ics`, { method: 'PUT', headers: { 'content-type': 'text/calendar' },
      body: eventIcs('second@icalpush.test', '20270201', '20270204', 'Second stay') })).status, 201);

    const delta = await send(`${via}${path}`, { headers: { prefer: 'subscribe-enhanced-get', 'sync-token': token } });
    assert.equal(delta.status, 200);
    assert.match(String(delta.headers['content-type']), /^text\/calendar/);
    const text = delta.body.toString();
    assert.match(text, /^BEGIN:VCALENDAR\r\n/);
    assert.match(text, /END:VCALENDAR\r\n$/);
    const events = vevents(text);
    const byUid = new Map(events.map((e) => [e.find((l) => l.startsWith('UID:')), e]));
    assert.deepEqual([...byUid.keys()].sort(), ['UID:first@icalpush.test', 'UID:second@icalpush.test']);
    assert.ok(byUid.get('UID:second@icalpush.test')?.includes('SUMMARY:Second stay'));
    const tombstone = byUid.get('UID:first@icalpush.test') ?? [];
    assert.ok(tombstone.includes('STATUS:DELETED'), tombstone.join('\n'));
    assert.ok(tombstone.includes('DTSTART;VALUE=DATE:20270110'), tombstone.join('\n'));
    assert.ok(tombstone.some((l) => l.startsWith('DTSTAMP:')), tombstone.join('\n'));
    const next = String(delta.headers['sync-token']);
    assert.notEqual(next, token);

    const quiet = await send(`${via}${path}`, { headers: { prefer: 'subscribe-enhanced-get', 'sync-token': next } });
    assert.equal(quiet.status, 304);
    assert.equal(quiet.headers['sync-token'], next);
  });

  test('a plain GET of a calendar collection through the sidecar is Radicale\'s body byte for byte, and 304 when unchanged', { skip },
    async (t) => {
      const via = await sidecar(t);
      const path = await makeCalendar(via, 'plain');
      await send(`${via}${path}one.ics`, { method: 'PUT', headers: { 'content-type': 'text/calendar' },
        body: eventIcs('one@icalpush.test', '20270301', '20270305', 'One') });

      const { direct, proxied } = await both(radicale.url, via, path);
      assert.equal(proxied.status, direct.status);
      assert.equal(proxied.headers['content-type'], direct.headers['content-type']);
      assert.equal(proxied.headers['content-disposition'], direct.headers['content-disposition']);
      assert.ok(proxied.body.equals(direct.body), 'same bytes');
      assert.match(String(proxied.headers.link), new RegExp(`^<${via}${path}>; ${rel}$`));
      const etag = String(proxied.headers.etag);
      assert.match(etag, /^W\/"/);

      const again = await send(`${via}${path}`, { headers: { 'if-none-match': etag } });
      assert.equal(again.status, 304);
      assert.equal(again.body.length, 0);

      await send(`${via}${path}two.ics`, { method: 'PUT', headers: { 'content-type': 'text/calendar' },
        body: eventIcs('two@icalpush.test', '20270310', '20270312', 'Two') });
      const changed = await send(`${via}${path}`, { headers: { 'if-none-match': etag } });
      assert.equal(changed.status, 200);
      assert.notEqual(changed.headers.etag, etag);
    });

  test('OPTIONS on a calendar collection through the sidecar keeps Radicale\'s Allow and DAV, and adds Link', { skip }, async (t) => {
    const via = await sidecar(t);
    const path = await makeCalendar(via, 'options');
    const { direct, proxied } = await both(radicale.url, via, path, { method: 'OPTIONS' });
    assert.match(String(direct.headers.dav), /calendar-access/);
    assert.equal(proxied.status, direct.status);
    assert.equal(proxied.headers.allow, direct.headers.allow);
    assert.equal(proxied.headers.dav, direct.headers.dav);
    assert.equal(proxied.headers['content-type'], direct.headers['content-type']);
    assert.ok(proxied.body.equals(direct.body));
    assert.match(String(proxied.headers.link), new RegExp(`^<${via}${path}>; ${rel}$`));
  });

  test('PROPFIND (Depth: 1) on a calendar collection answers through the sidecar as Radicale does direct', { skip }, async (t) => {
    const via = await sidecar(t);
    const path = await makeCalendar(via, 'propfind');
    await send(`${via}${path}one.ics`, { method: 'PUT', headers: { 'content-type': 'text/calendar' },
      body: eventIcs('one@icalpush.test', '20270401', '20270403', 'One') });
    const { direct, proxied } = await both(radicale.url, via, path, { method: 'PROPFIND',
      headers: { ...xml, depth: '1' },
      body: '<?xml version="1.0" encoding="utf-8"?><D:propfind xmlns:D="DAV:"><D:prop><D:resourcetype/>'
        + '<D:getetag/><D:getcontenttype/><D:displayname/><D:sync-token/></D:prop></D:propfind>' });
    assert.equal(direct.status, 207);
    assert.equal(proxied.status, direct.status);
    assert.deepEqual(lasting(proxied), lasting(direct));
    assert.equal(proxied.body.toString(), direct.body.toString());
    assert.match(direct.body.toString(), /one\.ics/);
  });

  test('REPORT (calendar-query and sync-collection) answers through the sidecar as Radicale does direct', { skip }, async (t) => {
    const via = await sidecar(t);
    const path = await makeCalendar(via, 'report');
    await send(`${via}${path}one.ics`, { method: 'PUT', headers: { 'content-type': 'text/calendar' },
      body: eventIcs('one@icalpush.test', '20270501', '20270503', 'One') });
    const reports = [
      '<?xml version="1.0" encoding="utf-8"?><C:calendar-query xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">'
      + '<D:prop><D:getetag/><C:calendar-data/></D:prop><C:filter><C:comp-filter name="VCALENDAR">'
      + '<C:comp-filter name="VEVENT"/></C:comp-filter></C:filter></C:calendar-query>',
      '<?xml version="1.0" encoding="utf-8"?><D:sync-collection xmlns:D="DAV:"><D:sync-token/>'
      + '<D:sync-level>1</D:sync-level><D:prop><D:getetag/></D:prop></D:sync-collection>',
    ];
    for (const body of reports) {
      const { direct, proxied } = await both(radicale.url, via, path, { method: 'REPORT', headers: { ...xml, depth: '1' },
        body });
      assert.equal(direct.status, 207, direct.body.toString());
      assert.equal(proxied.status, direct.status);
      assert.deepEqual(lasting(proxied), lasting(direct));
      assert.equal(proxied.body.toString(), direct.body.toString());
      assert.match(direct.body.toString(), /one\.ics/);
    }
  });

  test('HEAD on a Radicale collection passes through until there is a snapshot, then answers from it', { skip }, async (t) => {
    const via = await sidecar(t);
    const path = await makeCalendar(via, 'head');
    await send(`${via}${path}one.ics`, { method: 'PUT', headers: { 'content-type': 'text/calendar' },
      body: eventIcs('one@icalpush.test', '20270601', '20270603', 'One') });

    // Never read through the sidecar: Radicale's own answer, plus Link (it is a calendar).
    const first = await both(radicale.url, via, path, { method: 'HEAD' });
    assert.equal(first.proxied.status, first.direct.status);
    assert.equal(first.proxied.headers['content-type'], first.direct.headers['content-type']);
    assert.equal(first.proxied.headers['content-length'], first.direct.headers['content-length']);
    assert.match(String(first.proxied.headers.link), new RegExp(`^<${via}${path}>; ${rel}$`));

    // A collection that is not there: Radicale's 404, no calendar claimed.
    const missing = await both(radicale.url, via, `/${user}/nothing-here/`, { method: 'HEAD' });
    assert.equal(missing.direct.status, 404);
    assert.equal(missing.proxied.status, 404);
    assert.equal(missing.proxied.headers.link, undefined);

    // Read once: HEAD answers from the snapshot, the ETag the GET gave.
    const get = await send(`${via}${path}`);
    const head = await send(`${via}${path}`, { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(head.headers['content-type'], 'text/calendar; charset=utf-8');
    assert.equal(head.headers.etag, get.headers.etag);
    assert.match(String(head.headers.link), new RegExp(`^<${via}${path}>; ${rel}$`));

    // Without credentials it is another feed, never read: Radicale's 401, not the snapshot of alice's.
    const anonymous = await send(`${via}${path}`, { method: 'HEAD', anonymous: true });
    assert.equal(anonymous.status, 401);
  });

  test('a GET without credentials gets Radicale\'s own 401 through the sidecar', { skip }, async (t) => {
    const via = await sidecar(t);
    const path = await makeCalendar(via, 'private');
    const { direct, proxied } = await both(radicale.url, via, path, { anonymous: true });
    assert.equal(direct.status, 401);
    assert.equal(proxied.status, 401);
    assert.equal(proxied.headers['www-authenticate'], direct.headers['www-authenticate']);
    assert.ok(proxied.body.equals(direct.body));
    assert.equal(proxied.headers['sync-token'], undefined);
  });

  test('an address book under the calendar pattern is passed through as Radicale serves it, never versioned', { skip },
    async (t) => {
      const via = await sidecar(t);
      const made = await send(`${via}/${user}/contacts/`, { method: 'MKCOL', headers: xml,
        body: '<?xml version="1.0" encoding="utf-8"?><D:mkcol xmlns:D="DAV:" xmlns:CR="urn:ietf:params:xml:ns:carddav">'
          + '<D:set><D:prop><D:resourcetype><D:collection/><CR:addressbook/></D:resourcetype></D:prop></D:set></D:mkcol>' });
      assert.equal(made.status, 201, made.body.toString());
      const card = ['BEGIN:VCARD', 'VERSION:3.0', 'UID:guest@icalpush.test', 'FN:A Guest', 'N:Guest;A;;;', 'END:VCARD', '']
        .join('\r\n');
      const put = await send(`${via}/${user}/contacts/guest.vcf`, { method: 'PUT', headers: { 'content-type': 'text/vcard' },
        body: card });
      assert.equal(put.status, 201);

      const { direct, proxied } = await both(radicale.url, via, `/${user}/contacts/`,
        { headers: { prefer: 'subscribe-enhanced-get' } });
      assert.equal(direct.status, 200);
      assert.match(String(direct.headers['content-type']), /^text\/vcard/);
      assert.equal(proxied.status, 200);
      assert.equal(proxied.headers['content-type'], direct.headers['content-type']);
      assert.equal(proxied.headers.etag, direct.headers.etag, 'Radicale\'s own ETag, not a semantic one');
      assert.ok(proxied.body.equals(direct.body));
      assert.equal(proxied.headers['sync-token'], undefined);
      assert.equal(proxied.headers['preference-applied'], undefined);
    });
});
