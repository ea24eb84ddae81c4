// proxy.example.yaml is what a newcomer runs first: it must load with an empty environment,
// hold the documented values, and document every key of the schema.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { test } from 'node:test';
import { loadConfigFile } from '../../src/config/load.ts';
import { buildJsonSchema } from '../../src/config/write-json-schema.ts';

const root = resolve(import.meta.dirname, '../..');
const examplePath = resolve(root, 'proxy.example.yaml');

test('proxy.example.yaml loads with an empty environment', async () => {
  const result = await loadConfigFile(examplePath, {});
  assert.ok(result.ok, result.ok ? '' : JSON.stringify(result.problems, null, 2));
});

test('proxy.example.yaml yields the documented values', async () => {
  const result = await loadConfigFile(examplePath, {});
  assert.ok(result.ok);
  assert.deepEqual(result.config, {
    listen: '127.0.0.1:8080',
    upstream: 'http://127.0.0.1:9000',
    store: resolve(root, 'data/icalpush.db'),
    feeds: [{ path: '/calendar/{listing}.ics', maxAge: 0 }],
    snapshots: {
      retention: 30 * 86_400_000,
      maxBodyBytes: 20 * 1024 * 1024,
      maxFeeds: 10_000,
      maxVariantsPerPath: 16,
      maxEntitiesPerFeed: 25_000,
      hold: { span: 2 * 3_600_000, fraction: 0.5 },
    },
    trustProxy: ['127.0.0.1/8', '::1'],
    listings: {
      'beach-house': {
        feed: '/calendar/beach-house.ics?t=demo-token',
        timezone: 'Europe/Rome',
        headers: { Authorization: 'Basic ZGVtbzpkZW1v' },
        peers: [
          {
            name: 'airbnb',
            url: 'https://airbnb.example/calendar/ical/123.ics?s=demo-secret',
            notify: true,
            headers: {},
          },
          { name: 'booking', url: 'https://booking.example/ical/beach-house.ics', notify: false, headers: {} },
        ],
      },
    },
    push: {
      debounce: 300_000,
      retryFor: 86_400_000,
      watch: { intervalMs: 60_000, idleIntervalMs: 60_000, maxRatePerSecond: Infinity, adaptive: false },
      triggers: [{ method: 'POST', path: '/bookings/{listing}/**' }],
      userAgent: 'iPP/0.1',
    },
    refresh: {
      method: 'POST',
      url: 'http://127.0.0.1:9000/admin/sync/{listing}',
      headers: { Authorization: 'Bearer change-me' },
      timeout: 10_000,
    },
    hooks: { enabled: true, allowPrivateNetworks: false, maxPerFeed: 100 },
    admin: { token: 'change-me-admin-token' },
    timeouts: { connect: 5_000, upstream: 30_000, shutdown: 10_000 },
    log: { level: 'info' },
  });
});

test('proxy.example.yaml takes its secrets from the environment when set', async () => {
  const result = await loadConfigFile(examplePath, {
    BEACH_TOKEN: 'b',
    LEGACY_TOKEN: 'l',
    ICALPUSH_ADMIN_TOKEN: 'a',
  });
  assert.ok(result.ok);
  assert.equal(result.config.listings['beach-house']?.feed, '/calendar/beach-house.ics?t=b');
  assert.equal(result.config.refresh?.headers.Authorization, 'Bearer l');
  assert.equal(result.config.admin.token, 'a');
});

test('proxy.example.yaml starts with the editor schema line', async () => {
  const text = await readFile(examplePath, 'utf8');
  assert.equal(text.split('\n')[0], '# yaml-language-server: $schema=./config/schema.json');
});

/** Every property name of the JSON schema, at any depth. */
function schemaKeys(node: unknown, out = new Set<string>()): Set<string> {
  if (Array.isArray(node)) for (const item of node) schemaKeys(item, out);
  else if (typeof node === 'object' && node !== null) {
    const record = node as Record<string, unknown>;
    if (typeof record.properties === 'object' && record.properties !== null) {
      for (const key of Object.keys(record.properties)) out.add(key);
    }
    for (const value of Object.values(record)) schemaKeys(value, out);
  }
  return out;
}

test('proxy.example.yaml documents every key of the schema', async () => {
  const text = await readFile(examplePath, 'utf8');
  const keys = schemaKeys(buildJsonSchema());
  assert.ok(keys.size > 20, 'the walk finds the nested keys');
  for (const key of keys) {
    // Written as a key (possibly a list item), or commented out where it is optional.
    const line = new RegExp(`^\\s*(#\\s*)?(-\\s+)?${key}:`, 'm');
    assert.match(text, line, `proxy.example.yaml does not document ${key}`);
  }
});
