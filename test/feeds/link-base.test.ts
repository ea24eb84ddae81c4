// The Link base (SPEC "Which URLs are feeds of their own"): publicBaseUrl, else X-Forwarded-Proto/-Host
// from a trustProxy client, else Host with its port. A client that is no trusted proxy cannot make the
// sidecar advertise another host.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { request } from 'undici';
import { parseConfigText } from '../../src/config/load.ts';
import { startApp } from '../helpers/app.ts';
import { calendarOf, stay } from '../helpers/hostile.ts';
import { startServer } from '../helpers/servers.ts';

const relation = 'rel="subscribe-enhanced-get subscribe-enhanced_get"';
const forwarded = { 'x-forwarded-proto': 'https', 'x-forwarded-host': 'cal.example.com:8443, inner.example' };

async function linkOf(url: string, headers: Record<string, string> = {}): Promise<string | undefined> {
  const res = await request(`${url}/calendar/a.ics`, { headers });
  await res.body.dump();
  const link = res.headers.link;
  return Array.isArray(link) ? link.join(', ') : link;
}

async function upstream(t: Parameters<typeof startServer>[0]) {
  return startServer(t, (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/calendar' }).end(calendarOf(stay('a', '20270110', '20270112')));
  });
}

test('a trusted proxy (loopback by default) sets the scheme and the host, port included', async (t) => {
  const app = await startApp(t, (await upstream(t)).url);
  assert.equal(await linkOf(app.url, forwarded), `<https://cal.example.com:8443/calendar/a.ics>; ${relation}`);
});

test('without forwarded headers the Host is the base, with its port', async (t) => {
  const app = await startApp(t, (await upstream(t)).url);
  const { host } = new URL(app.url);
  assert.match(host, /:\d+$/);
  assert.equal(await linkOf(app.url), `<http://${host}/calendar/a.ics>; ${relation}`);
});

test('forwarded headers from a client that is no trusted proxy are ignored', async (t) => {
  const server = await upstream(t);
  for (const trustProxy of [[], ['10.0.0.0/8', '192.168.1.7']]) {
    const app = await startApp(t, server.url, { trustProxy });
    const { host } = new URL(app.url);
    assert.equal(await linkOf(app.url, forwarded), `<http://${host}/calendar/a.ics>; ${relation}`, JSON.stringify(trustProxy));
  }
});

test('publicBaseUrl wins over everything', async (t) => {
  const app = await startApp(t, (await upstream(t)).url, { publicBaseUrl: 'https://feeds.example.org/' });
  assert.equal(await linkOf(app.url, forwarded), `<https://feeds.example.org/calendar/a.ics>; ${relation}`);
});

test('a forwarded host that is not a plain authority never reaches a header', async (t) => {
  const app = await startApp(t, (await upstream(t)).url);
  assert.equal(await linkOf(app.url, { 'x-forwarded-host': 'evil.example/"><x' }), undefined);
});

test('trustProxy entries must be addresses or CIDR ranges; the error names the entry', () => {
  const result = parseConfigText([
    'upstream: http://127.0.0.1:9000', 'feeds:', '  - path: /calendar/{listing}.ics',
    'trustProxy: [10.0.0.0/8, "::1", fd00::/8, 10.0.0.0/33, proxy.internal]',
  ].join('\n'), { env: {}, sourceName: 'proxy.yaml', baseDir: '.' });
  assert.equal(result.ok, false);
  const problems = result.ok ? [] : result.problems.map((p) => `${p.path}: ${p.message}`);
  assert.deepEqual(problems, [
    'trustProxy[3]: is not an IP address or CIDR range such as 10.0.0.0/8: 10.0.0.0/33',
    'trustProxy[4]: is not an IP address or CIDR range such as 10.0.0.0/8: proxy.internal',
  ]);
});

test('a client that is no trusted proxy cannot hand the platform a forwarded trail of its own', async (t) => {
  const seen: Record<string, string | string[] | undefined>[] = [];
  const server = await startServer(t, (req, res) => {
    seen.push(req.headers);
    const feed = req.url?.endsWith('.ics') === true;
    res.writeHead(200, { 'content-type': feed ? 'text/calendar' : 'text/plain' })
      .end(feed ? calendarOf(stay('a', '20270110', '20270112')) : 'ok');
  });
  const spoofed = { 'x-forwarded-for': '203.0.113.9', 'x-forwarded-host': 'evil.example', 'x-forwarded-proto': 'https' };
  for (const [trustProxy, trusted] of [[[], false], [['127.0.0.1/8'], true]] as const) {
    const app = await startApp(t, server.url, { trustProxy: [...trustProxy] });
    const { host } = new URL(app.url);
    for (const path of ['/calendar/a.ics', '/account/password-reset']) {
      seen.length = 0;
      await (await request(`${app.url}${path}`, { headers: spoofed })).body.dump();
      const got = seen[0] ?? {};
      const expected = trusted
        ? { for: '203.0.113.9, 127.0.0.1', host: `evil.example, ${host}`, proto: 'https, http' }
        : { for: '127.0.0.1', host, proto: 'http' };
      assert.deepEqual({ for: got['x-forwarded-for'], host: got['x-forwarded-host'], proto: got['x-forwarded-proto'] },
        expected, `${path} with trustProxy ${JSON.stringify(trustProxy)}`);
    }
  }
});
