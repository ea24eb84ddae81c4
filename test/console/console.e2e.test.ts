// The operator console through the real app in a realistic state (console-mesh.ts): every page answers
// HTML to an admin and a refusal to anyone else, shows what the decision log and status hold (asserted on
// the DOM), and never shows a secret.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseHTML } from 'linkedom';
import { request } from 'undici';
import { meshSecrets, meshToken, startConsoleMesh } from '../helpers/console-mesh.ts';

type Doc = ReturnType<typeof parseHTML>['document'];
type Node = NonNullable<ReturnType<Doc['querySelector']>>;
type Page = { status: number; headers: Record<string, unknown>; text: string; document: Doc };

async function get(url: string, authorization?: string): Promise<Page> {
  const res = await request(url, { headers: authorization ? { authorization } : {} });
  const text = await res.body.text();
  return { status: res.statusCode, headers: res.headers, text, document: parseHTML(text).document };
}

const texts = (doc: Doc | Node, selector: string) => [...doc.querySelectorAll(selector)].map((e) => (e.textContent ?? '').trim());

test('console: every page for an admin, a refusal for others, what the state holds, no secret', async (t) => {
  const mesh = await startConsoleMesh(t);
  const base = `${mesh.app.url}/_icalpush`;
  const pages = [`${base}/`, `${base}/console/listings`, `${base}/console/listings/rome`, `${base}/console/listings/lisbon`,
    `${base}/console/listings/house`];

  await t.test('without the token: 401 with a login prompt; a wrong token: 401', async () => {
    for (const url of pages) {
      const none = await get(url);
      assert.equal(none.status, 401, url);
      assert.match(String(none.headers['www-authenticate']), /^Basic realm="icalpush console"/);
      assert.match(String(none.headers['content-type']), /^text\/html/);
      const wrong = await get(url, 'Bearer nope');
      assert.equal(wrong.status, 401, url);
      for (const secret of meshSecrets) assert.ok(!none.text.includes(secret));
    }
  });

  await t.test('an admin gets every page as HTML, by bearer token or as the Basic password', async () => {
    const basic = `Basic ${Buffer.from(`ops:${meshToken}`).toString('base64')}`;
    for (const url of pages) {
      for (const auth of [mesh.auth, basic]) {
        const page = await get(url, auth);
        assert.equal(page.status, 200, url);
        assert.match(String(page.headers['content-type']), /^text\/html; charset=utf-8/);
        assert.match(String(page.headers['content-security-policy']), /default-src 'none'/);
        assert.equal(page.headers['cache-control'], 'no-store');
        assert.equal(page.document.documentElement.getAttribute('lang'), 'en');
        assert.equal(page.document.querySelectorAll('main h1').length, 1);
        for (const secret of meshSecrets) assert.ok(!page.text.includes(secret), `${url} shows ${secret}`);
      }
    }
  });

  await t.test('the overview counts listings, peers, notifications, held drops and plots the day', async () => {
    const { document } = await get(`${base}/`, mesh.auth);
    const stats = Object.fromEntries([...document.querySelectorAll('.stat')].map((s) =>
      [s.querySelector('dt')?.textContent?.trim(), s.querySelector('dd')?.textContent?.trim()]));
    assert.match(stats.Listings ?? '', /^3/);
    // airbnb (twice), vrbo and booking: four peer calendars.
    assert.match(stats.Peers ?? '', /^4/);
    assert.match(stats['Sent, last hour'] ?? '', /^[1-9]/);
    assert.match(stats['Held drops'] ?? '', /^1/);
    assert.match(stats.Pending ?? '', /^[1-9]/, 'vrbo\'s failed HEAD waits for its retry');
    assert.deepEqual(texts(document, '#held-h + table tbody th, #held-h + table tbody td:first-child'), ['house']);
    const plots = [...document.querySelectorAll('figure.plot svg')];
    assert.equal(plots.length, 4);
    for (const svg of plots) {
      assert.equal(svg.getAttribute('role'), 'img');
      const [titleId, descId] = (svg.getAttribute('aria-labelledby') ?? '').split(' ');
      assert.ok(document.getElementById(titleId ?? '')?.textContent, 'a title');
      assert.ok(document.getElementById(descId ?? '')?.textContent, 'a description');
    }
    const notifications = document.getElementById('plot-notifications-desc')?.textContent ?? '';
    assert.match(notifications, /sent: max [1-9]/);
  });

  await t.test('the listings table: every listing, its last decision and kind, peers\' health; search and paging', async () => {
    const { document } = await get(`${base}/console/listings`, mesh.auth);
    const rows = [...document.querySelectorAll('#listings-table tbody tr')];
    assert.deepEqual(rows.map((r) => r.querySelector('th')?.textContent?.trim()), ['rome', 'lisbon', 'house']);
    const byId = new Map(rows.map((r) => [r.querySelector('th')?.textContent?.trim(), r]));
    assert.equal(byId.get('rome')?.querySelector('.badge')?.textContent, 'primary');
    assert.equal(byId.get('lisbon')?.querySelector('.badge')?.textContent, 'imported');
    assert.equal(byId.get('house')?.querySelector('.badge')?.textContent, 'held');
    assert.deepEqual(texts(byId.get('rome') as Node, '.peers li').map((s) => s.replace(/\s+/g, ' ')),
      ['airbnb: ok', 'vrbo: failing']);
    const searched = await get(`${base}/console/listings?q=LIS`, mesh.auth);
    assert.deepEqual(texts(searched.document, '#listings-table tbody th'), ['lisbon']);
    assert.equal(searched.document.querySelector('input[name=q]')?.getAttribute('value'), 'lis');
    const byPeer = await get(`${base}/console/listings?q=vrbo`, mesh.auth);
    assert.deepEqual(texts(byPeer.document, '#listings-table tbody th'), ['rome']);
    const hostile = await get(`${base}/console/listings?q=${encodeURIComponent('<script>alert(1)</script>')}&page=-4`, mesh.auth);
    assert.equal(hostile.status, 200);
    assert.ok(!hostile.text.includes('<script>alert(1)'), 'the query is escaped');
    assert.match(hostile.document.querySelector('.pager')?.textContent ?? '', /Page 1 of 1/);
  });

  await t.test('one listing: the decision timeline in its time zone, peers, pending retries', async () => {
    const { document } = await get(`${base}/console/listings/rome`, mesh.auth);
    assert.equal(document.querySelector('main h1')?.textContent, 'rome');
    const decisions = [...document.querySelectorAll('.timeline .decision')];
    assert.ok(decisions.length >= 2);
    const newest = decisions[0] as Node;
    assert.equal(newest.querySelector('.badge')?.textContent, 'primary');
    assert.equal(newest.querySelector('.rule')?.textContent, 'unexplained-nights');
    assert.match(newest.textContent ?? '', /airbnb, vrbo/, 'the HEADs it caused');
    // 23:35Z is 00:35 the next day in Rome (CET).
    assert.match(newest.querySelector('time')?.textContent ?? '', /^2026-12-02 00:3\d:\d\d CET$/);
    const peers = texts(document, '#peers-h + table tbody th');
    assert.deepEqual(peers, ['airbnb', 'vrbo']);
    assert.match(document.querySelector('#peers-h + table tbody tr:nth-child(2)')?.textContent ?? '', /503/);
    const pending = texts(document, '#pending-h + table tbody th');
    assert.deepEqual(pending, ['vrbo']);
    const lisbon = await get(`${base}/console/listings/lisbon`, mesh.auth);
    const recent = [...lisbon.document.querySelectorAll('#recent-inbound tbody tr')];
    assert.equal(recent.length, 1, 'its one inbound HEAD, and the refresh it caused');
    assert.match(recent[0]?.textContent ?? '', /2026-12-01 23:35:\d\d WET[\s\S]*not-configured/);
    assert.match(lisbon.document.querySelector('#inbound-h + dl')?.textContent ?? '', /Last inbound HEAD/);
    const house = await get(`${base}/console/listings/house`, mesh.auth);
    assert.match(house.document.querySelector('.timeline .decision .rule')?.textContent ?? '', /drop-held/);
    const missing = await get(`${base}/console/listings/nope`, mesh.auth);
    assert.equal(missing.status, 404);
  });

  await t.test('the overview as JSON for `icalpush status`', async () => {
    const res = await request(`${base}/overview`, { headers: { authorization: mesh.auth } });
    assert.equal(res.statusCode, 200);
    const overview = await res.body.json() as { listings: number; held: unknown[]; notifications: { pending: number } };
    assert.equal(overview.listings, 3);
    assert.equal(overview.held.length, 1);
    assert.ok(overview.notifications.pending >= 1);
  });
});
