// What a reload applies at once and what it names as waiting for a restart (SPEC "Reload").
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { keysNeedingRestart, mapChanges, reloadedConfig } from '../../src/config/reloadable.ts';
import { type ConfigInput, configSchema } from '../../src/config/schema.ts';

const base: ConfigInput = { upstream: 'http://127.0.0.1:9000', store: 'memory', feeds: [{ path: '/c/{listing}.ics' }] };
const config = (extra: Partial<ConfigInput> = {}) => configSchema.parse({ ...base, ...extra });

test('the map, the triggers and the default zone reload; every other change is named for a restart', () => {
  const listings = { a: { peers: [{ url: 'https://x.example/a.ics' }] } };
  assert.deepEqual(keysNeedingRestart(config(), config({ listings, listingsFile: './l.csv',
    push: { triggers: [{ path: '/b/{listing}' }], timezone: 'Europe/Rome' } })), []);
  assert.deepEqual(keysNeedingRestart(config(), config({ upstream: 'http://127.0.0.1:9001', push: { debounce: '1m' },
    timeouts: { upstream: '5s' }, admin: { token: 't' } })), ['admin', 'push.debounce', 'timeouts', 'upstream']);
});

test('map changes count listings added, removed and redefined', async () => {
  const before = config({ listings: { a: {}, b: { timezone: 'Europe/Rome' }, c: {} } }).listings;
  const after = config({ listings: { a: {}, b: { timezone: 'Europe/Paris' }, d: {} } }).listings;
  assert.deepEqual(await mapChanges(before, after), { added: 1, removed: 1, changed: 1 });
  assert.deepEqual(await mapChanges(after, after), { added: 0, removed: 0, changed: 0 });
});

test('the config put in force is the running one with the reloaded keys of the new one', () => {
  const running = config({ push: { timezone: 'Europe/Rome', debounce: '1m' }, timeouts: { upstream: '5s' } });
  const next = config({ feeds: [{ path: '/other/{listing}.ics' }], listings: { a: {} },
    push: { triggers: [{ path: '/b/{listing}' }], debounce: '9m' }, timeouts: { upstream: '50s' } });
  const applied = reloadedConfig(running, next);
  assert.deepEqual(Object.keys(applied.listings), ['a']);
  assert.equal(applied.push.triggers.length, 1);
  // The default zone removed by the new config is removed.
  assert.equal(applied.push.timezone, undefined);
  // The rest is what runs: the feeds patterns the router was built with, the debounce, the timeouts.
  assert.deepEqual(applied.feeds, running.feeds);
  assert.equal(applied.push.debounce, running.push.debounce);
  assert.equal(applied.timeouts.upstream, 5_000);
  // A second reload of the same file still names what waits for a restart, and reverting it names nothing.
  assert.deepEqual(keysNeedingRestart(running, next), ['feeds', 'push.debounce', 'timeouts']);
  assert.deepEqual(keysNeedingRestart(running, running), []);
});
