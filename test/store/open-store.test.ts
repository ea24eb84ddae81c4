// openStore: which spec opens which backend, and what it refuses.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { openStore } from '../../src/store/open-store.ts';
import { closedPort } from '../helpers/servers.ts';

test('openStore opens the memory store for `memory`', async (t) => {
  const store = await openStore('memory');
  t.after(() => store.close());
  assert.equal(store.kind, 'memory');
});

test('openStore opens the sqlite store for a file path', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'icalpush-open-store-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const store = await openStore(join(dir, 'state.db'));
  t.after(() => store.close());
  assert.equal(store.kind, 'sqlite');
  await store.ping();
});

test('openStore opens a redis URL at once, reachable or not: calls reject until Redis answers', async (t) => {
  const port = await closedPort();
  for (const spec of [`redis://127.0.0.1:${port}`, `REDIS://127.0.0.1:${port}/0`]) {
    const store = await openStore(spec);
    t.after(() => store.close());
    assert.equal(store.kind, 'redis');
    assert.equal(store.shared, true);
    await assert.rejects(store.ping(), { code: 'STORE_UNAVAILABLE' }, spec);
    await assert.rejects(store.namespace('feeds').get('k'), { code: 'STORE_UNAVAILABLE' }, spec);
    await store.close();
  }
});

test('openStore refuses other URL schemes rather than taking them for paths', async () => {
  await assert.rejects(openStore('sqlite:///var/lib/icalpush.db'), {
    code: 'STORE_UNAVAILABLE',
    message: /unsupported store URL scheme sqlite/,
  });
});

test('openStore refuses a memory bound that is not a positive integer', async () => {
  await assert.rejects(openStore('memory', { maxMemoryEntries: 0 }), RangeError);
});
