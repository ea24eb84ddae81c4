// iCal Hooks end to end against real hook servers on 127.0.0.1: one-shot HEADs, expiry, the
// per-feed cap, the SSRF refusals (at registration and again at delivery), the pinned address, no
// redirects, delivery in the background (due marks, bounded queue, retries, crash and restart),
// metrics and logs.
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import type { IncomingHttpHeaders, ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { test, type TestContext } from 'node:test';
import type { HostLookup } from '../../src/hooks/address-policy.ts';
import { createHooks, type Hooks, hooksNamespace, hookTtlMs, type HooksOptions } from '../../src/hooks/hooks.ts';
import { createOutboundClient, type OutboundClient } from '../../src/http/clients.ts';
import { createLogger } from '../../src/log.ts';
import { renderExposition } from '../../src/metrics/exposition.ts';
import { createRegistry, type Registry } from '../../src/metrics/registry.ts';
import { openStore } from '../../src/store/open-store.ts';
import type { Store } from '../../src/store/store.ts';
import { closedPort, type FakeServer, readBody, startServer } from '../helpers/servers.ts';
import { createFakeClock, type FakeClock } from '../store/fake-clock.ts';

const feed = '/calendar/42.ics?s=feed-secret';
const otherFeed = '/calendar/7.ics';
const userAgent = 'iPP/0.1 icalpush';
const timeoutMs = 2_000;

/** Tests never use the real resolver: a lookup nobody injected fails loudly. */
const noDns: HostLookup = async (hostname) => {
  throw new Error(`unexpected DNS lookup of ${hostname}`);
};

type LogLine = Record<string, unknown>;

type Harness = {
  hooks: Hooks;
  registry: Registry;
  clock: FakeClock;
  store: Store;
  client: OutboundClient;
  logs: LogLine[];
  logText(): string;
  /** Resolves with the first log line (past or future) that `match` accepts. */
  waitForLog(match: (line: LogLine) => boolean): Promise<LogLine>;
};

/**
 * A hooks module over a memory store (or `overrides.store`) and its own outbound client, both on
 * the fake clock; torn down with the test: the client first (in-flight HEADs end), then the module.
 */
async function harness(
  t: TestContext,
  overrides: Partial<Omit<HooksOptions, 'clock' | 'client'>> & { clock?: FakeClock } = {},
): Promise<Harness> {
  const clock = overrides.clock ?? createFakeClock();
  const own = overrides.store === undefined ? await openStore('memory', { clock }) : undefined;
  const store = overrides.store ?? (own as Store);
  const lines: string[] = [];
  const written = new EventEmitter();
  const destination = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      lines.push(...chunk.toString('utf8').split('\n').filter((l) => l !== ''));
      written.emit('line');
      callback();
    },
  });
  const parsed = () => lines.map((l) => JSON.parse(l) as LogLine);
  const registry = createRegistry();
  const client = createOutboundClient({ clock, connectTimeoutMs: 1_000 });
  const hooks = createHooks({
    logger: createLogger({ level: 'debug', destination }),
    registry,
    enabled: true,
    allowPrivateNetworks: true,
    maxPerFeed: 10,
    userAgent,
    timeoutMs,
    lookup: noDns,
    ...overrides,
    store,
    clock,
    client,
  });
  t.after(async () => {
    await client.close();
    await hooks.close();
    await own?.close();
  });
  return {
    hooks,
    registry,
    clock,
    store,
    client,
    get logs() {
      return parsed();
    },
    logText: () => lines.join('\n'),
    waitForLog(match) {
      return new Promise((resolve) => {
        const check = () => {
          const found = parsed().find(match);
          if (found === undefined) return;
          written.off('line', check);
          resolve(found);
        };
        written.on('line', check);
        check();
      });
    },
  };
}

/** Resolves once `check` holds, re-checked on every request any of `servers` receives. */
function until(servers: FakeServer[], check: () => boolean): Promise<void> {
  return new Promise((resolve) => {
    const listener = () => {
      if (!check()) return;
      for (const { server } of servers) server.off('request', listener);
      resolve();
    };
    for (const { server } of servers) server.on('request', listener);
    listener();
  });
}

/** The value of a metric series in the exposition text (0 when absent). */
function metric(registry: Registry, series: string): number {
  const line = renderExposition(registry).split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? 0 : Number(line.slice(series.length + 1));
}

type Received = { method: string; url: string; headers: IncomingHttpHeaders; body: Buffer };

/** A hook server on 127.0.0.1 that records every request and answers `status`. */
async function hookServer(t: TestContext, status = 200, extraHeaders: Record<string, string> = {}) {
  const received: Received[] = [];
  const server = await startServer(t, (req, res) => {
    void readBody(req).then((body) => {
      received.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
      res.writeHead(status, extraHeaders).end();
    });
  });
  return { ...server, received };
}

test('a fired hook gets exactly one HEAD with the User-Agent and no body', async (t) => {
  const h = await harness(t);
  const server = await hookServer(t);
  assert.deepEqual(await h.hooks.register(feed, `${server.url}/hook?token=abc`), { ok: true });
  await h.hooks.fire(feed);
  await h.hooks.idle();
  assert.equal(server.received.length, 1);
  const [head] = server.received;
  assert.equal(head?.method, 'HEAD');
  assert.equal(head?.url, '/hook?token=abc');
  assert.equal(head?.headers['user-agent'], userAgent);
  assert.equal(head?.body.length, 0);
  assert.equal(head?.headers['content-length'] ?? '0', '0');
  assert.equal(head?.headers['transfer-encoding'], undefined);
});

test('a hook is forgotten after firing: a second fire sends nothing', async (t) => {
  const h = await harness(t);
  const server = await hookServer(t);
  await h.hooks.register(feed, `${server.url}/hook`);
  await h.hooks.fire(feed);
  await h.hooks.idle();
  await h.hooks.fire(feed);
  await h.hooks.idle();
  assert.equal(server.received.length, 1);
  assert.deepEqual(await h.hooks.list(feed), []);
});

test('a hook whose HEAD failed on the network 3 times is forgotten and logged', async (t) => {
  const h = await harness(t);
  const port = await closedPort();
  await h.hooks.register(feed, `http://127.0.0.1:${port}/path-secret?token=hook-secret`);
  await h.hooks.fire(feed);
  const first = await h.waitForLog((l) => l.msg === 'hook delivery retried');
  assert.equal((first.hook as { attempt: number; retryInMs: number }).retryInMs, 1_000);
  h.clock.advance(1_000);
  const second = await h.waitForLog((l) => l.msg === 'hook delivery retried' && (l.hook as { attempt: number }).attempt === 2);
  assert.equal((second.hook as { retryInMs: number }).retryInMs, 10_000);
  h.clock.advance(10_000);
  await h.hooks.idle();
  assert.deepEqual(await h.hooks.list(feed), []);
  assert.equal(metric(h.registry, 'icalpush_hook_deliveries_total{outcome="network_error"}'), 1);
  assert.equal(metric(h.registry, 'icalpush_hook_delivery_retries_total'), 2);
  const failed = h.logs.filter((l) => l.msg === 'hook delivery failed');
  assert.equal(failed.length, 1);
  assert.deepEqual(failed[0]?.hook, {
    feed: '/calendar/42.ics?s=[REDACTED]',
    host: `127.0.0.1:${port}`,
    outcome: 'network_error',
    code: 'UPSTREAM_UNREACHABLE',
    cause: 'ECONNREFUSED',
    attempt: 3,
  });
  assert.doesNotMatch(h.logText(), /hook-secret|path-secret|feed-secret/);
});

test('a HEAD that failed on the network is sent again 1 s later and the hook forgotten once answered', async (t) => {
  const h = await harness(t);
  const port = await closedPort();
  await h.hooks.register(feed, `http://127.0.0.1:${port}/hook`);
  await h.hooks.fire(feed);
  await h.waitForLog((l) => l.msg === 'hook delivery retried');
  assert.equal((await h.hooks.list(feed))[0]?.due, true);
  const received: string[] = [];
  await startServer(t, (req, res) => {
    received.push(`${req.method} ${req.url}`);
    res.end();
  }, port);
  h.clock.advance(999);
  assert.deepEqual(received, []);
  h.clock.advance(1);
  await h.hooks.idle();
  assert.deepEqual(received, ['HEAD /hook']);
  assert.deepEqual(await h.hooks.list(feed), []);
  assert.equal(metric(h.registry, 'icalpush_hook_deliveries_total{outcome="ok"}'), 1);
  assert.equal(metric(h.registry, 'icalpush_hook_deliveries_total{outcome="network_error"}'), 0);
  assert.equal(metric(h.registry, 'icalpush_hook_delivery_retries_total'), 1);
});

test('fire on a feed without hooks resolves and sends nothing', async (t) => {
  const h = await harness(t);
  await h.hooks.fire('/calendar/none.ics');
  await h.hooks.idle();
  assert.doesNotMatch(renderExposition(h.registry), /icalpush_hook_deliveries_total\{outcome="ok"\} [1-9]/);
});

test('a hook expires after 7 days and is never fired', async (t) => {
  const h = await harness(t);
  const server = await hookServer(t);
  await h.hooks.register(feed, `${server.url}/hook`);
  h.clock.advance(hookTtlMs + 1);
  assert.deepEqual(await h.hooks.list(feed), []);
  await h.hooks.fire(feed);
  await h.hooks.idle();
  assert.equal(server.received.length, 0);
});

test('a hook still fires just before its 7 days are up', async (t) => {
  const h = await harness(t);
  const server = await hookServer(t);
  await h.hooks.register(feed, `${server.url}/hook`);
  h.clock.advance(hookTtlMs - 1);
  await h.hooks.fire(feed);
  await h.hooks.idle();
  assert.equal(server.received.length, 1);
});

test('registering the same URL again refreshes its expiry without adding a second hook', async (t) => {
  const h = await harness(t);
  const server = await hookServer(t);
  await h.hooks.register(feed, `${server.url}/hook`);
  const [first] = await h.hooks.list(feed);
  h.clock.advance(60_000);
  await h.hooks.register(feed, ` ${server.url}/hook `);
  const listed = await h.hooks.list(feed);
  assert.equal(listed.length, 1);
  assert.equal(listed[0]?.expiresAt, (first?.expiresAt ?? 0) + 60_000);
  await h.hooks.fire(feed);
  await h.hooks.idle();
  assert.equal(server.received.length, 1);
});

test('a refreshed hook outlives the first registration\'s 7 days', async (t) => {
  const h = await harness(t);
  const server = await hookServer(t);
  await h.hooks.register(feed, `${server.url}/hook`);
  h.clock.advance(hookTtlMs - 1_000);
  await h.hooks.register(feed, `${server.url}/hook`);
  h.clock.advance(2_000);
  await h.hooks.fire(feed);
  await h.hooks.idle();
  assert.equal(server.received.length, 1);
});

test('beyond maxPerFeed a new URL is refused as feed-full, a known one still refreshes', async (t) => {
  const h = await harness(t, { maxPerFeed: 2 });
  const server = await hookServer(t);
  assert.deepEqual(await h.hooks.register(feed, `${server.url}/a`), { ok: true });
  assert.deepEqual(await h.hooks.register(feed, `${server.url}/b`), { ok: true });
  assert.deepEqual(await h.hooks.register(feed, `${server.url}/c`), { ok: false, reason: 'feed-full' });
  assert.deepEqual(await h.hooks.register(feed, `${server.url}/a`), { ok: true });
  assert.deepEqual(await h.hooks.register('/calendar/other.ics', `${server.url}/c`), { ok: true });
  assert.equal((await h.hooks.list(feed)).length, 2);
});

test('concurrent registrations of one feed all land (no lost read-modify-write)', async (t) => {
  const h = await harness(t);
  const server = await hookServer(t);
  const results = await Promise.all(
    Array.from({ length: 8 }, (_, i) => h.hooks.register(feed, `${server.url}/hook-${i}`)),
  );
  assert.ok(results.every((r) => r.ok === true));
  assert.equal((await h.hooks.list(feed)).length, 8);
});

const refusedTargets: Array<[label: string, header: string, reason: string]> = [
  ['IPv4 loopback', 'http://127.0.0.1/', 'private-address'],
  ['short IPv4 loopback', 'http://127.1/', 'private-address'],
  ['hex IPv4 loopback', 'http://0x7f.1/', 'private-address'],
  ['decimal IPv4 loopback', 'http://2130706433/', 'private-address'],
  ['IPv6 loopback', 'http://[::1]/', 'private-address'],
  ['RFC 1918', 'http://10.1.2.3/', 'private-address'],
  ['RFC 1918 172.16/12', 'https://172.20.0.1/', 'private-address'],
  ['RFC 1918 192.168/16', 'http://192.168.1.1:8080/', 'private-address'],
  ['cloud metadata (link-local)', 'http://169.254.169.254/latest/meta-data', 'private-address'],
  ['IPv4-mapped loopback', 'http://[::ffff:127.0.0.1]/', 'private-address'],
  ['IPv4-mapped public address', 'http://[::ffff:93.184.216.34]/', 'private-address'],
  ['unspecified IPv4', 'http://0.0.0.0/', 'private-address'],
  ['unspecified IPv6', 'http://[::]/', 'private-address'],
  ['carrier-grade NAT', 'http://100.64.0.1/', 'private-address'],
  ['IPv6 link-local', 'http://[fe80::1]/', 'private-address'],
  ['IPv6 unique-local', 'http://[fd12:3456::1]/', 'private-address'],
  ['NAT64 embedding of loopback', 'http://[64:ff9b::7f00:1]/', 'private-address'],
  ['6to4 embedding', 'http://[2002:7f00:1::1]/', 'private-address'],
  ['Teredo', 'http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/', 'private-address'],
  ['IPv6 documentation', 'http://[2001:db8::1]/', 'private-address'],
  ['IPv4 documentation', 'http://192.0.2.10/', 'private-address'],
  ['multicast', 'http://224.0.0.1/', 'private-address'],
  ['broadcast', 'http://255.255.255.255/', 'private-address'],
  ['a hostname resolving to loopback', 'http://sneaky.test/', 'private-address'],
  ['a hostname resolving to one public and one private address', 'http://mixed.test/', 'private-address'],
  ['a hostname that does not resolve', 'http://nowhere.test/', 'unresolvable'],
  ['ftp', 'ftp://example.com/', 'scheme'],
  ['javascript', 'javascript:alert(1)', 'scheme'],
  ['userinfo', 'http://user:pw@example.com/', 'userinfo'],
  ['user only', 'http://user@example.com/', 'userinfo'],
  ['CRLF', 'http://a.example/\r\nX: y', 'malformed'],
  ['a tab', 'http://a.example/\tx', 'malformed'],
  ['two URLs in one value', 'http://a.example/x, http://b.example/y', 'malformed'],
  ['a 3000-character URL', `http://a.example/${'x'.repeat(3000 - 17)}`, 'too-long'],
  ['garbage', 'not a url at all', 'malformed'],
  ['garbage without spaces', '::::', 'malformed'],
];

const testLookup: HostLookup = async (hostname) => {
  if (hostname === 'sneaky.test') return [{ address: '127.0.0.1', family: 4 }];
  if (hostname === 'mixed.test') {
    return [
      { address: '93.184.216.34', family: 4 },
      { address: '10.0.0.5', family: 4 },
    ];
  }
  if (hostname === 'public.test') return [{ address: '93.184.216.34', family: 4 }];
  throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' });
};

for (const [label, header, reason] of refusedTargets) {
  test(`refuses ${label} when private networks are not allowed`, async (t) => {
    const h = await harness(t, { allowPrivateNetworks: false, lookup: testLookup });
    assert.deepEqual(await h.hooks.register(feed, header), { ok: false, reason });
    assert.deepEqual(await h.hooks.list(feed), []);
  });
}

test('the 3000-character test URL really is 3000 characters', () => {
  const long = refusedTargets.find(([label]) => label === 'a 3000-character URL')?.[1] ?? '';
  assert.equal(long.length, 3000);
});

test('accepts a hostname resolving to a public address (never fired)', async (t) => {
  const h = await harness(t, { allowPrivateNetworks: false, lookup: testLookup });
  assert.deepEqual(await h.hooks.register(feed, 'https://public.test/hooks/ical?k=secret'), { ok: true });
  const listed = await h.hooks.list(feed);
  assert.equal(listed.length, 1);
  assert.equal(listed[0]?.url, 'https://public.test/hooks/ical?k=[REDACTED]');
});

test('accepts a public IPv6 literal (never fired)', async (t) => {
  const h = await harness(t, { allowPrivateNetworks: false });
  assert.deepEqual(await h.hooks.register(feed, 'http://[2606:4700:4700::1111]/x'), { ok: true });
});

test('a lookup that never answers is refused as unresolvable within the lookup timeout', async (t) => {
  const h = await harness(t, {
    allowPrivateNetworks: false,
    lookupTimeoutMs: 50,
    lookup: () => new Promise(() => {}),
  });
  const registration = h.hooks.register(feed, 'http://slow.test/');
  h.clock.advance(50);
  assert.deepEqual(await registration, { ok: false, reason: 'unresolvable' });
});

test('the HEAD goes to the checked address with the URL\'s Host, without resolving again', async (t) => {
  let resolveTo: 'loopback' | 'fail' = 'loopback';
  const lookups: string[] = [];
  const h = await harness(t, {
    lookup: async (hostname) => {
      lookups.push(hostname);
      if (resolveTo === 'fail') throw Object.assign(new Error('ENOTFOUND'), { code: 'ENOTFOUND' });
      return [{ address: '127.0.0.1', family: 4 }];
    },
  });
  const server = await hookServer(t);
  assert.deepEqual(await h.hooks.register(feed, `http://hook.test:${server.port}/x`), { ok: true });
  assert.deepEqual(lookups, ['hook.test']);
  resolveTo = 'fail';
  await h.hooks.fire(feed);
  await h.hooks.idle();
  assert.equal(server.received.length, 1);
  assert.equal(server.received[0]?.headers.host, `hook.test:${server.port}`);
  assert.equal(server.received[0]?.url, '/x');
  assert.deepEqual(lookups, ['hook.test']);
});

test('a redirect answer is not followed and counts as an http error', async (t) => {
  const h = await harness(t);
  const elsewhere = await hookServer(t);
  const redirecting = await hookServer(t, 302, { location: `${elsewhere.url}/landed` });
  await h.hooks.register(feed, `${redirecting.url}/hook`);
  await h.hooks.fire(feed);
  await h.hooks.idle();
  assert.equal(redirecting.received.length, 1);
  assert.equal(elsewhere.received.length, 0);
  assert.match(renderExposition(h.registry), /icalpush_hook_deliveries_total\{outcome="http_error"\} 1/);
});

test('a 5xx answer counts as an http error and the hook is still forgotten', async (t) => {
  const h = await harness(t);
  const server = await hookServer(t, 503);
  await h.hooks.register(feed, `${server.url}/hook`);
  await h.hooks.fire(feed);
  await h.hooks.idle();
  await h.hooks.fire(feed);
  await h.hooks.idle();
  assert.equal(server.received.length, 1);
  assert.match(renderExposition(h.registry), /icalpush_hook_deliveries_total\{outcome="http_error"\} 1/);
});

test('many hooks of one feed are fired at most 16 at a time', async (t) => {
  const h = await harness(t, { maxPerFeed: 20 });
  let inFlight = 0;
  let maxInFlight = 0;
  let total = 0;
  const held: Array<() => void> = [];
  const server = await startServer(t, (_req, res) => {
    inFlight += 1;
    total += 1;
    maxInFlight = Math.max(maxInFlight, inFlight);
    held.push(() => {
      inFlight -= 1;
      res.end();
    });
    // Once the bound is reached, give a 17th request a moment to (wrongly) arrive, then release.
    if (held.length === 16) setTimeout(() => held.splice(0).forEach((release) => release()), 50);
    else if (total > 16) held.splice(0).forEach((release) => release());
  });
  for (let i = 0; i < 20; i += 1) await h.hooks.register(feed, `${server.url}/h${i}`);
  await h.hooks.fire(feed);
  await h.hooks.idle();
  assert.equal(total, 20);
  assert.equal(maxInFlight, 16);
});

test('disabled hooks refuse a header with \'disabled\' and ignore a missing one', async (t) => {
  const h = await harness(t, { enabled: false });
  assert.deepEqual(await h.hooks.register(feed, 'http://127.0.0.1:1/'), { ok: false, reason: 'disabled' });
  assert.deepEqual(await h.hooks.register(feed, undefined), { ok: 'absent' });
  assert.match(renderExposition(h.registry), /icalpush_hook_refusals_total\{reason="disabled"\} 1/);
});

test('a missing or empty header is absent, not a refusal', async (t) => {
  const h = await harness(t);
  assert.deepEqual(await h.hooks.register(feed, undefined), { ok: 'absent' });
  assert.deepEqual(await h.hooks.register(feed, '   '), { ok: 'absent' });
  assert.deepEqual(await h.hooks.register(feed, []), { ok: 'absent' });
  assert.doesNotMatch(renderExposition(h.registry), /icalpush_hook_refusals_total\{reason="[a-z-]+"\} [1-9]/);
});

test('several header values are refused as malformed; a single-element array is used', async (t) => {
  const h = await harness(t);
  const server = await hookServer(t);
  assert.deepEqual(await h.hooks.register(feed, [`${server.url}/a`, `${server.url}/b`]), {
    ok: false,
    reason: 'malformed',
  });
  assert.deepEqual(await h.hooks.register(feed, [`${server.url}/a`]), { ok: true });
});

test('a refusal is logged once with the feed redacted and the URL\'s host only', async (t) => {
  const h = await harness(t, { allowPrivateNetworks: false });
  await h.hooks.register(feed, 'http://10.1.2.3:8080/path-secret?token=hook-secret');
  const refusals = h.logs.filter((l) => l.msg === 'hook refused');
  assert.equal(refusals.length, 1);
  assert.deepEqual(refusals[0]?.hook, {
    feed: '/calendar/42.ics?s=[REDACTED]',
    reason: 'private-address',
    host: '10.1.2.3:8080',
  });
  assert.doesNotMatch(h.logText(), /hook-secret|path-secret|feed-secret/);
});

test('delivery logs never carry the hook URL\'s path or query', async (t) => {
  const h = await harness(t);
  const server = await hookServer(t, 500);
  await h.hooks.register(feed, `${server.url}/path-secret?token=hook-secret`);
  await h.hooks.fire(feed);
  await h.hooks.idle();
  assert.ok(h.logs.some((l) => l.msg === 'hook delivery failed'));
  assert.doesNotMatch(h.logText(), /hook-secret|path-secret|feed-secret/);
});

test('the metrics text shows registrations, refusals by reason and deliveries by outcome', async (t) => {
  const h = await harness(t, { allowPrivateNetworks: true });
  const server = await hookServer(t);
  await h.hooks.register(feed, `${server.url}/a`);
  await h.hooks.register(feed, `${server.url}/b`);
  await h.hooks.register(feed, 'ftp://example.com/');
  await h.hooks.register(feed, 'garbage');
  await h.hooks.fire(feed);
  await h.hooks.idle();
  const text = renderExposition(h.registry);
  assert.match(text, /^# TYPE icalpush_hook_registrations_total counter$/m);
  assert.match(text, /^icalpush_hook_registrations_total 2$/m);
  assert.match(text, /^icalpush_hook_refusals_total\{reason="scheme"\} 1$/m);
  assert.match(text, /^icalpush_hook_refusals_total\{reason="malformed"\} 1$/m);
  assert.match(text, /^icalpush_hook_refusals_total\{reason="feed-full"\} 0$/m);
  assert.match(text, /^icalpush_hook_deliveries_total\{outcome="ok"\} 2$/m);
  assert.match(text, /^icalpush_hook_deliveries_total\{outcome="network_error"\} 0$/m);
});

/** A store whose every operation fails, as an unreachable backend would. */
function brokenStore(): Store {
  const fail = async () => {
    throw Object.assign(new Error('store down'), { code: 'STORE_UNAVAILABLE' });
  };
  return {
    kind: 'broken',
    namespace: () => ({
      get: fail,
      set: fail,
      delete: fail,
      clear: fail,
      add: fail,
      deleteIf: fail,
      increment: fail,
      getStamped: fail,
      setIfStamp: fail,
      entries: () => ({
        [Symbol.asyncIterator]: () => ({ next: fail }),
      }),
    }),
    shared: false,
    queue: () => ({ schedule: fail, hasten: fail, claim: fail, complete: fail, retry: fail, remove: fail, next: fail,
      size: fail, list: fail }),
    ping: fail,
    close: async () => {},
  };
}

test('a store error is a refusal on register, and on fire a counted failure that rejects (the change stays journaled)', async (t) => {
  const h = await harness(t, { store: brokenStore() });
  assert.deepEqual(await h.hooks.register(feed, 'http://127.0.0.1:1/x'), { ok: false, reason: 'store-error' });
  await assert.rejects(h.hooks.fire(feed));
  await h.hooks.idle();
  assert.deepEqual(await h.hooks.list(feed), []);
  const text = renderExposition(h.registry);
  assert.match(text, /^icalpush_hook_refusals_total\{reason="store-error"\} 1$/m);
  assert.match(text, /^icalpush_hook_deliveries_total\{outcome="store_error"\} 1$/m);
  assert.ok(h.logs.some((l) => l.msg === 'hook registration failed' && l.err !== undefined));
});

test('hooks survive a new hooks instance over the same store (they live in the store)', async (t) => {
  const clock = createFakeClock();
  const store = await openStore('memory', { clock });
  t.after(() => store.close());
  const first = await harness(t, { store, clock });
  const server = await hookServer(t);
  await first.hooks.register(feed, `${server.url}/hook`);
  const second = await harness(t, { store, clock });
  await second.hooks.fire(feed);
  await second.hooks.idle();
  assert.equal(server.received.length, 1);
});

/** A hook server that records every request and answers only once `release()` was called. */
async function heldServer(t: TestContext) {
  const held: ServerResponse[] = [];
  const received: Array<{ url: string; userAgent: string | undefined }> = [];
  let released = false;
  const server = await startServer(t, (req, res) => {
    received.push({ url: req.url ?? '', userAgent: req.headers['user-agent'] });
    if (released) res.end();
    else held.push(res);
  });
  return {
    ...server,
    received,
    release() {
      released = true;
      for (const res of held.splice(0)) res.end();
    },
  };
}

/** A hook server that takes every request and never answers it. */
async function blackHole(t: TestContext) {
  const state = { received: 0 };
  const server = await startServer(t, () => {
    state.received += 1;
  });
  return Object.assign(state, server);
}

test('fire() resolves once the hooks are marked due in the store, before any HEAD is answered', async (t) => {
  const h = await harness(t, { maxPerFeed: 100 });
  const hole = await blackHole(t);
  for (let i = 0; i < 100; i += 1) await h.hooks.register(feed, `${hole.url}/h${i}`);
  await h.hooks.fire(feed);
  // The target never answers and the clock has not moved, so no HEAD can have ended: fire()
  // did not wait for one.
  const stored = await h.store.namespace(hooksNamespace).get<Array<{ due?: boolean }>>(feed);
  assert.equal(stored?.length, 100);
  assert.ok(stored?.every((hook) => hook.due === true));
  for (const outcome of ['ok', 'http_error', 'network_error']) {
    assert.equal(metric(h.registry, `icalpush_hook_deliveries_total{outcome="${outcome}"}`), 0);
  }
  await until([hole], () => hole.received === 16);
  assert.equal(metric(h.registry, 'icalpush_hook_pending_deliveries'), 100);
});

test('100 hooks at a target that never answers do not starve an unrelated feed\'s hook', async (t) => {
  const h = await harness(t, { maxPerFeed: 100 });
  const hole = await blackHole(t);
  const good = await hookServer(t);
  for (let i = 0; i < 100; i += 1) await h.hooks.register(feed, `${hole.url}/h${i}`);
  await h.hooks.register(otherFeed, `${good.url}/unrelated`);
  await h.hooks.fire(feed);
  await h.hooks.fire(otherFeed);
  // 16 at a time, each cut at its deadline: once the 100 first attempts are through, the
  // unrelated hook (queued before any retry) gets its turn.
  let expected = 16;
  for (let round = 0; good.received.length === 0; round += 1) {
    assert.ok(round < 10, `unrelated hook still waiting after ${round} deadlines`);
    await until([hole, good], () => hole.received >= expected || good.received.length > 0);
    if (good.received.length > 0) break;
    h.clock.advance(timeoutMs);
    expected += 16;
  }
  await until([good], () => good.received.length === 1);
  assert.equal(good.received[0]?.url, '/unrelated');
  assert.ok(hole.received <= 112, `${hole.received} HEADs at the black hole`);
});

test('at most 16 HEADs are in flight across all feeds together', async (t) => {
  const h = await harness(t);
  const target = await heldServer(t);
  for (const name of [feed, otherFeed, '/calendar/9.ics']) {
    for (let i = 0; i < 10; i += 1) await h.hooks.register(name, `${target.url}${name}/h${i}`);
  }
  await h.hooks.fire(feed);
  await h.hooks.fire(otherFeed);
  await h.hooks.fire('/calendar/9.ics');
  await until([target], () => target.received.length === 16);
  assert.equal(metric(h.registry, 'icalpush_hook_pending_deliveries'), 30);
  target.release();
  await h.hooks.idle();
  assert.equal(new Set(target.received.map((r) => r.url)).size, 30);
  assert.equal(metric(h.registry, 'icalpush_hook_pending_deliveries'), 0);
});

test('a crash while HEADs are in flight loses no hook: the next start() delivers every one', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'icalpush-hooks-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'icalpush.db');
  const clock = createFakeClock();
  const target = await heldServer(t);
  const crashed = await openStore(file, { clock });
  const before = await harness(t, { store: crashed, clock, maxPerFeed: 100 });
  for (let i = 0; i < 100; i += 1) await before.hooks.register(feed, `${target.url}/h${i}`);
  await before.hooks.fire(feed);
  await until([target], () => target.received.length === 16);
  // The crash: nothing waits for a delivery, and the store goes away under the HEADs in flight.
  void before.hooks.close();
  await crashed.close();

  const reopened = await openStore(file, { clock });
  const after = await harness(t, { store: reopened, clock, maxPerFeed: 100, userAgent: 'iPP/0.1 after-restart' });
  t.after(() => reopened.close());
  await after.hooks.start();
  assert.ok(after.logs.some((l) => l.msg === 'hook deliveries resumed' && (l.hook as { due: number }).due === 100));
  target.release();
  await after.hooks.idle();
  const delivered = new Set(target.received.filter((r) => r.userAgent === 'iPP/0.1 after-restart').map((r) => r.url));
  assert.ok(delivered.size >= 100, `${delivered.size} distinct hooks delivered after the restart`);
  assert.deepEqual(await after.hooks.list(feed), []);
  assert.equal(await reopened.namespace(hooksNamespace).get(feed), undefined);
});

test('a hook stored while private networks were allowed is refused at delivery once they are not', async (t) => {
  const clock = createFakeClock();
  const store = await openStore('memory', { clock });
  const server = await hookServer(t);
  const before = await harness(t, { store, clock, allowPrivateNetworks: true });
  assert.deepEqual(await before.hooks.register(feed, `${server.url}/path-secret?token=hook-secret`), { ok: true });
  const after = await harness(t, { store, clock, allowPrivateNetworks: false });
  t.after(() => store.close());
  await after.hooks.fire(feed);
  await after.hooks.idle();
  assert.equal(server.received.length, 0);
  assert.deepEqual(await after.hooks.list(feed), []);
  assert.equal(metric(after.registry, 'icalpush_hook_refusals_total{reason="private-address"}'), 1);
  assert.equal(metric(after.registry, 'icalpush_hook_deliveries_total{outcome="ok"}'), 0);
  const refusals = after.logs.filter((l) => l.msg === 'hook refused');
  assert.equal(refusals.length, 1);
  assert.equal(refusals[0]?.level, 'info');
  assert.deepEqual(refusals[0]?.hook, {
    feed: '/calendar/42.ics?s=[REDACTED]',
    host: `127.0.0.1:${server.port}`,
    reason: 'private-address',
    stage: 'delivery',
  });
  assert.doesNotMatch(after.logText(), /hook-secret|path-secret|feed-secret/);
});

test('re-registering a due URL keeps it due: it gets its one HEAD, then is forgotten', async (t) => {
  const h = await harness(t);
  const target = await heldServer(t);
  await h.hooks.register(feed, `${target.url}/hook`);
  await h.hooks.fire(feed);
  await until([target], () => target.received.length === 1);
  assert.deepEqual(await h.hooks.register(feed, `${target.url}/hook`), { ok: true });
  assert.deepEqual((await h.hooks.list(feed)).map((hook) => hook.due), [true]);
  target.release();
  await h.hooks.idle();
  assert.equal(target.received.length, 1);
  assert.deepEqual(await h.hooks.list(feed), []);
});

test('a hook registered while others of its feed are in flight is kept for the next change', async (t) => {
  const h = await harness(t);
  const target = await heldServer(t);
  await h.hooks.register(feed, `${target.url}/first`);
  await h.hooks.fire(feed);
  await until([target], () => target.received.length === 1);
  await h.hooks.register(feed, `${target.url}/second`);
  target.release();
  await h.hooks.idle();
  assert.deepEqual((await h.hooks.list(feed)).map((hook) => [hook.url, hook.due]), [[`${target.url}/second`, false]]);
  await h.hooks.fire(feed);
  await h.hooks.idle();
  assert.deepEqual(target.received.map((r) => r.url), ['/first', '/second']);
});

test('past the queue bound due hooks wait in the store and are delivered as room frees', async (t) => {
  const h = await harness(t, { maxQueued: 4, concurrency: 2 });
  let inFlight = 0;
  let maxInFlight = 0;
  const received: string[] = [];
  const server = await startServer(t, (req, res) => {
    inFlight += 1;
    maxInFlight = Math.max(maxInFlight, inFlight);
    received.push(req.url ?? '');
    setImmediate(() => {
      inFlight -= 1;
      res.end();
    });
  });
  for (const name of [feed, otherFeed]) {
    for (let i = 0; i < 10; i += 1) await h.hooks.register(name, `${server.url}${name}/h${i}`);
  }
  await h.hooks.fire(feed);
  await h.hooks.fire(otherFeed);
  assert.equal(metric(h.registry, 'icalpush_hook_pending_deliveries'), 4);
  assert.equal(metric(h.registry, 'icalpush_hook_deferred_deliveries_total'), 16);
  await h.hooks.idle();
  assert.equal(new Set(received).size, 20);
  assert.equal(received.length, 20);
  assert.ok(maxInFlight <= 2, `${maxInFlight} in flight`);
  assert.deepEqual(await h.hooks.list(feed), []);
  assert.deepEqual(await h.hooks.list(otherFeed), []);
  assert.equal(h.logs.filter((l) => l.msg === 'hook deliveries deferred: queue full').length >= 1, true);
});

test('close() waits for the HEADs in flight and leaves the queued due hooks for the next start()', async (t) => {
  const clock = createFakeClock();
  const store = await openStore('memory', { clock });
  const target = await heldServer(t);
  const first = await harness(t, { store, clock, concurrency: 4 });
  const second = await harness(t, { store, clock, userAgent: 'iPP/0.1 second' });
  t.after(() => store.close());
  for (let i = 0; i < 10; i += 1) await first.hooks.register(feed, `${target.url}/h${i}`);
  await first.hooks.fire(feed);
  await until([target], () => target.received.length === 4);
  const closing = first.hooks.close();
  target.release();
  await closing;
  // The 4 answered HEADs are forgotten by the time close() resolves; the 6 queued stay due.
  const left = await first.hooks.list(feed);
  assert.equal(left.length, 6);
  assert.ok(left.every((hook) => hook.due));
  assert.equal(target.received.length, 4);
  // fire() after close() still marks, and delivers nothing.
  await first.hooks.register(feed, `${target.url}/late`);
  await first.hooks.fire(feed);
  await first.hooks.idle();
  assert.equal(target.received.length, 4);
  assert.equal((await first.hooks.list(feed)).length, 7);

  await second.hooks.start();
  await second.hooks.idle();
  assert.equal(new Set(target.received.map((r) => r.url)).size, 11);
  assert.equal(target.received.filter((r) => r.userAgent === 'iPP/0.1 second').length, 7);
  assert.deepEqual(await second.hooks.list(feed), []);
});

test('hooks stored before due marks existed are read, left alone by start() and fired on a change', async (t) => {
  const h = await harness(t);
  const server = await hookServer(t);
  const legacy = { url: `${server.url}/old`, address: '127.0.0.1', family: 4, expiresAt: h.clock.now() + hookTtlMs };
  await h.store.namespace(hooksNamespace).set(feed, [legacy], hookTtlMs);
  await h.hooks.start();
  await h.hooks.idle();
  assert.equal(server.received.length, 0);
  assert.deepEqual(await h.hooks.list(feed), [{ url: `${server.url}/old`, expiresAt: legacy.expiresAt, due: false }]);
  await h.hooks.fire(feed);
  await h.hooks.idle();
  assert.equal(server.received.length, 1);
  assert.deepEqual(await h.hooks.list(feed), []);
});

test('start() with nothing due queues nothing', async (t) => {
  const h = await harness(t);
  const server = await hookServer(t);
  await h.hooks.register(feed, `${server.url}/hook`);
  await h.hooks.start();
  await h.hooks.idle();
  assert.equal(server.received.length, 0);
  assert.equal((await h.hooks.list(feed)).length, 1);
  assert.ok(!h.logs.some((l) => l.msg === 'hook deliveries resumed'));
});
