// The `icalpush check` summary: one screen, every listing and peer, never a secret.
import assert from 'node:assert/strict';
import { resolve } from 'node:path';
import { test } from 'node:test';
import { loadConfigFile, parseConfigText } from '../../src/config/load.ts';
import type { Config } from '../../src/config/schema.ts';
import { summarizeConfig } from '../../src/config/summary.ts';

const examplePath = resolve(import.meta.dirname, '../../proxy.example.yaml');

async function exampleConfig(env: Record<string, string> = {}): Promise<Config> {
  const result = await loadConfigFile(examplePath, env);
  assert.ok(result.ok);
  return result.config;
}

function configFrom(text: string): Config {
  const result = parseConfigText(text, { env: {}, sourceName: 'proxy.yaml', baseDir: '/srv' });
  assert.ok(result.ok, result.ok ? '' : JSON.stringify(result.problems));
  return result.config;
}

test('the summary of the example shows no secret', async () => {
  const summary = summarizeConfig(await exampleConfig(), 'proxy.example.yaml');
  for (const secret of ['demo-token', 'demo-secret', 'change-me', 'change-me-admin-token']) {
    assert.ok(!summary.includes(secret), `summary shows ${secret}:\n${summary}`);
  }
});

test('secrets from the environment do not appear either', async () => {
  const env = { BEACH_TOKEN: 'tok-1', LEGACY_TOKEN: 'tok-2', ICALPUSH_ADMIN_TOKEN: 'tok-3' };
  const summary = summarizeConfig(await exampleConfig(env), 'proxy.example.yaml');
  assert.doesNotMatch(summary, /tok-[123]/);
  assert.match(summary, /t=\[REDACTED\]/);
  assert.match(summary, /headers: Authorization/);
  assert.match(summary, /admin\s+token set/);
});

test('the summary of the example names each listing and peer', async () => {
  const summary = summarizeConfig(await exampleConfig(), 'proxy.example.yaml');
  assert.match(
    summary,
    /beach-house\s+feed \/calendar\/beach-house\.ics\?t=\[REDACTED\] \(explicit\)/,
  );
  assert.match(
    summary,
    /airbnb\s+https:\/\/airbnb\.example\/calendar\/ical\/123\.ics\?s=\[REDACTED\]\s+notify on/,
  );
  assert.match(
    summary,
    /booking\s+https:\/\/booking\.example\/ical\/beach-house\.ics\s+notify off/,
  );
  assert.match(summary, /127\.0\.0\.1:9000/);
  assert.match(summary, /triggers\s+POST \/bookings\/\{listing\}\/\*\*/);
});

test('durations are shown back as human durations', async () => {
  const summary = summarizeConfig(await exampleConfig(), 'proxy.example.yaml');
  assert.match(summary, /debounce\s+5m$/m);
  assert.match(summary, /watch\s+1m$/m);
  assert.match(summary, /connect 5s, upstream 30s, shutdown 10s/);
});

test('a listing without an explicit feed shows the path derived from the first pattern', () => {
  const config = configFrom(
    'upstream: http://127.0.0.1:9000\nfeeds:\n  - path: /cal/{listing}.ics\nlistings:\n  lake-cabin:\n    peers:\n      - url: https://vrbo.example/ical/9.ics\n        notify: false\n',
  );
  const summary = summarizeConfig(config, 'proxy.yaml');
  assert.match(summary, /lake-cabin\s+feed \/cal\/lake-cabin\.ics {2}today: conservative \(UTC-12 \/ UTC\+14\)$/m);
  assert.match(summary, /vrbo\.example\s+https:\/\/vrbo\.example\/ical\/9\.ics\s+notify off/);
  assert.match(summary, /admin\s+no token/);
  assert.match(summary, /refresh\s+none/);
});

test('a password in a peer URL is redacted', () => {
  const config = configFrom(
    'upstream: http://127.0.0.1:9000\nfeeds:\n  - path: /c/{listing}.ics\nlistings:\n  a:\n    peers:\n      - url: https://user:hunter2@peer.example/a.ics\n',
  );
  const summary = summarizeConfig(config, 'proxy.yaml');
  assert.doesNotMatch(summary, /hunter2/);
  assert.match(summary, /https:\/\/\[REDACTED\]@peer\.example\/a\.ics/);
});

test('many listings: the first 20 and a count, within one screen', () => {
  const listings = Array.from(
    { length: 45 },
    (_, i) => `  l${i}:\n    peers:\n      - url: https://p.example/${i}.ics\n`,
  ).join('');
  const config = configFrom(
    `upstream: http://127.0.0.1:9000\nfeeds:\n  - path: /c/{listing}.ics\nlistings:\n${listings}`,
  );
  const summary = summarizeConfig(config, 'proxy.yaml');
  assert.match(summary, /^listings: 45$/m);
  assert.match(summary, /^\s+l19\s/m);
  assert.doesNotMatch(summary, /^\s+l20\s/m);
  assert.match(summary, /… and 25 more listings/);
  assert.ok(summary.split('\n').length <= 70);
});

test('the example summary fits in about 40 lines', async () => {
  const summary = summarizeConfig(await exampleConfig(), 'proxy.example.yaml');
  assert.ok(summary.split('\n').length <= 40, summary);
});

test('a {secret} segment of an explicit feed and a token-like peer path are redacted', () => {
  const config = configFrom(
    'upstream: http://127.0.0.1:9000\nfeeds:\n  - path: /ical/{listing}/{secret}.ics\nlistings:\n  a:\n    feed: /ical/a/swordfish.ics\n    peers:\n      - url: https://www.vrbo.com/icalendar/3f2a9c7e1b8d4a6f0e5d.ics?nonTentative\n',
  );
  const summary = summarizeConfig(config, 'proxy.yaml');
  assert.match(summary, /a\s+feed \/ical\/a\/\[REDACTED\]\.ics \(explicit\)/);
  assert.match(summary, /https:\/\/www\.vrbo\.com\/icalendar\/\[REDACTED\]\.ics\?\[REDACTED\]\s+notify on/);
  assert.match(summary, /feeds\s+\/ical\/\{listing\}\/\{secret\}\.ics/);
  assert.doesNotMatch(summary, /swordfish|3f2a9c7e1b8d4a6f0e5d|nonTentative/);
});

test('each listing shows the zone its "today" is taken in: its own, else push.timezone', () => {
  const config = configFrom([
    'upstream: http://127.0.0.1:9000', 'feeds:', '  - path: /cal/{listing}.ics', 'push:', '  timezone: europe/rome',
    'listings:', '  a:', '    timezone: Pacific/Auckland', '  b: {}',
  ].join('\n'));
  const summary = summarizeConfig(config, 'proxy.yaml');
  assert.match(summary, /^\s+a\s+feed \/cal\/a\.ics {2}today: Pacific\/Auckland$/m);
  assert.match(summary, /^\s+b\s+feed \/cal\/b\.ics {2}today: Europe\/Rome$/m);
});
