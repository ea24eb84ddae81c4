// What a reload applies at once and what it names as waiting for a restart (SPEC "Reload").
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { keysNeedingRestart, mapChanges } from '../../src/config/reloadable.ts';
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
