// The shared backend: the conformance suite against a real redis-server, plus what only a shared store
// must promise: two stores on one Redis see each other's writes, the atomic operations hold under
// concurrent callers, and an unreachable Redis is STORE_UNAVAILABLE at once, then answers again.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { openStore } from '../../src/store/open-store.ts';
import { type RedisServer, skipWithoutRedis, startRedis } from '../helpers/redis.ts';
import { storeConformance } from './conformance.ts';
import { eventually } from '../helpers/network.ts';

describe('redis store', { skip: skipWithoutRedis }, () => {
  let redis: RedisServer;
  before(async () => {
    redis = await startRedis();
  });
  after(() => redis.stop());

  storeConformance('redis', async (t, options) => {
    await redis.flush();
    const store = await openStore(redis.url, options);
    t.after(() => store.close());
    await eventually(() => store.ping().then(() => true, () => false), 10_000);
    return store;
  });

  test('two stores on one Redis see each other’s writes, leases and stamps', async (t) => {
    await redis.flush();
    const a = await openStore(redis.url);
    const b = await openStore(redis.url);
    t.after(() => Promise.all([a.close(), b.close()]));
    await eventually(() => Promise.all([a.ping(), b.ping()]).then(() => true, () => false), 10_000);
    assert.equal(a.shared, true);
    await a.namespace('feeds').set('k', { v: 1 });
    assert.deepEqual(await b.namespace('feeds').get('k'), { v: 1 });
    assert.equal(await a.namespace('leases').add('watch', 'a', 60_000), true);
    assert.equal(await b.namespace('leases').add('watch', 'b', 60_000), false);
    const first = await a.namespace('heads').setIfStamp('h', undefined, { version: 1 });
    assert.ok(first !== undefined);
    const seen = await b.namespace('heads').getStamped('h');
    assert.equal(seen?.stamp, first);
    assert.ok(await b.namespace('heads').setIfStamp('h', first, { version: 2 }));
    assert.equal(await a.namespace('heads').setIfStamp('h', first, { version: 2 }), undefined);
  });

  test('a Redis that stops answering (SIGSTOP: no reset, no reply) fails each call within its deadline', async (t) => {
    await redis.flush();
    const store = await openStore(redis.url);
    t.after(() => store.close());
    await eventually(() => store.ping().then(() => true, () => false), 10_000);
    await store.namespace('feeds').set('k', 1);
    const pid = redis.pid!;
    process.kill(pid, 'SIGSTOP');
    t.after(() => {
      try {
        process.kill(pid, 'SIGCONT');
      } catch {
        // Already gone.
      }
    });
    const started = performance.now();
    await assert.rejects(store.namespace('feeds').get('k'), { code: 'STORE_UNAVAILABLE' });
    await assert.rejects(store.ping(), { code: 'STORE_UNAVAILABLE' });
    const closing = performance.now();
    await store.close();
    process.kill(pid, 'SIGCONT');
    // Bounded, not hung: the command deadline (2 s) each, and a close cut after 1 s.
    assert.ok(closing - started < 6_000, `${Math.round(closing - started)} ms`);
    assert.ok(performance.now() - closing < 3_000);
  });

  test('an unreachable Redis is STORE_UNAVAILABLE at once, and answers again once it is back', async (t) => {
    await redis.flush();
    const store = await openStore(redis.url);
    t.after(() => store.close());
    await eventually(() => store.ping().then(() => true, () => false), 10_000);
    await store.namespace('feeds').set('k', 1);
    await redis.stop();
    const started = performance.now();
    await assert.rejects(store.namespace('feeds').get('k'), { code: 'STORE_UNAVAILABLE' });
    await assert.rejects(store.ping(), { code: 'STORE_UNAVAILABLE' });
    // Refused, not queued: nothing waits on Redis coming back.
    assert.ok(performance.now() - started < 2_500);
    await redis.start();
    await eventually(() => store.ping().then(() => true, () => false), 10_000);
    await store.namespace('feeds').set('k', 2);
    assert.equal(await store.namespace('feeds').get('k'), 2);
  });
});
