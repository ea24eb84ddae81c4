// The coordination points of several replicas (SPEC "Several replicas"), each against a real redis-server
// with several instances standing for several replicas: the fleet's membership and ownership, the watch's
// leases, the global debounce, the journal's takeover, the outbox's claims (one HEAD per change, a dead
// replica's notification sent by another, notifications kept in memory through an outage) and the hook
// lists written compare-and-set. The multi-process suite (test/e2e/replicas.test.ts) runs them end to end.
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { after, before, describe, test } from 'node:test';
import { systemClock } from '../../src/clock.ts';
import { createChangeLog } from '../../src/feeds/change-log.ts';
import { createHooks } from '../../src/hooks/hooks.ts';
import { createOutboundClient } from '../../src/http/clients.ts';
import { createLogger } from '../../src/log.ts';
import { createRegistry } from '../../src/metrics/registry.ts';
import { createDebounceGate } from '../../src/push/debounce-gate.ts';
import { createNotifier } from '../../src/push/notifier.ts';
import { createOutbox, outboxKey } from '../../src/push/outbox.ts';
import type { ListingPlan } from '../../src/push/plans.ts';
import { createWatchClaim } from '../../src/push/watch-claim.ts';
import { openStore } from '../../src/store/open-store.ts';
import { createReplicas, replicasNamespace } from '../../src/store/replicas.ts';
import type { Store } from '../../src/store/store.ts';
import { type RedisServer, skipWithoutRedis, startRedis } from '../helpers/redis.ts';
import { startServer } from '../helpers/servers.ts';
import { createFakeClock, type FakeClock } from './fake-clock.ts';
import { eventually } from '../helpers/network.ts';

const logger = createLogger({ level: 'silent' });
const settle = () => new Promise((resolve) => setImmediate(resolve));

describe('coordination of several replicas on one Redis', { skip: skipWithoutRedis }, () => {
  let redis: RedisServer;
  before(async () => {
    redis = await startRedis();
  });
  after(() => redis.stop());

  /** `n` stores on the Redis (one per "replica"), emptied first, closed with the test. */
  async function stores(t: { after(fn: () => unknown): void }, n: number, clock?: FakeClock): Promise<Store[]> {
    await redis.flush();
    const opened = await Promise.all(Array.from({ length: n }, () => openStore(redis.url, clock ? { clock } : {})));
    t.after(() => Promise.all(opened.map((s) => s.close())));
    return opened;
  }

  test('the fleet: every replica sees the others, each key has one owner, a dead one’s keys move', async (t) => {
    const clock = createFakeClock();
    const [a, b, c] = await stores(t, 3, clock);
    const fleet = [a!, b!, c!].map((store) => createReplicas({ store, clock, logger, heartbeatMs: 1_000 }));
    await Promise.all(fleet.map((r) => r.start()));
    // The first ones started before the last: one heartbeat later every view is whole.
    clock.advance(1_000);
    await eventually(() => fleet.every((r) => r.live().length === 3), 10_000);
    const keys = Array.from({ length: 300 }, (_, i) => `listing-${i}`);
    const owners = keys.map((key) => fleet.filter((r) => r.owns(key)).length);
    assert.ok(owners.every((n) => n === 1), 'every key is owned by exactly one replica');
    const shares = fleet.map((r) => keys.filter((key) => r.owns(key)).length);
    assert.ok(shares.every((n) => n > 50), `an even spread: ${shares.join(', ')}`);

    // One replica "is killed": its store goes first, so it leaves its heartbeat and its place on the roster
    // behind; its heartbeat expires after 3 heartbeats, then the rest own all.
    const dead = fleet[2]!;
    const deadKeys = keys.filter((key) => dead.owns(key));
    await c!.close();
    await dead.close();
    assert.ok(await a!.namespace(replicasNamespace).get(dead.id) !== undefined, 'the killed one’s heartbeat is left');
    for (let i = 0; i < 4; i += 1) {
      clock.advance(1_000);
      await settle();
    }
    await eventually(() => fleet.slice(0, 2).every((r) => r.live().length === 2), 10_000);
    assert.ok(deadKeys.every((key) => fleet.slice(0, 2).filter((r) => r.owns(key)).length === 1),
      'the dead replica’s keys have one new owner each');
    await Promise.all(fleet.map((r) => r.close()));
  });

  test('the watch: one replica reads a listing per interval, and the lease frees for the next', async (t) => {
    const clock = createFakeClock();
    const opened = await stores(t, 3, clock);
    const fleet = opened.map((store) => createReplicas({ store, clock, logger, heartbeatMs: 1_000 }));
    await Promise.all(fleet.map((r) => r.start()));
    clock.advance(1_000);
    await eventually(() => fleet.every((r) => r.live().length === 3), 10_000);
    const claims = opened.map((store, i) => createWatchClaim(store, fleet[i]!));
    const plans = Array.from({ length: 30 }, (_, i) => ({ id: `l${i}` }) as ListingPlan);
    for (let round = 0; round < 3; round += 1) {
      for (const plan of plans) {
        const taken = await Promise.all(claims.map((claim) => claim(plan, 10_000)));
        assert.equal(taken.filter(Boolean).length, 1, `${plan.id} round ${round}: one reader`);
        assert.equal((await Promise.all(claims.map((claim) => claim(plan, 10_000)))).filter(Boolean).length, 0,
          `${plan.id}: read again within the interval by nobody`);
      }
      clock.advance(10_000);
    }
    // An idle listing (a long lease) that becomes active: its reader takes it for the short period at once, and
    // nobody else does.
    const plan = { id: 'promoted' } as ListingPlan;
    const idle = await Promise.all(claims.map((claim) => claim(plan, 900_000)));
    const reader = idle.indexOf(true);
    assert.ok(reader >= 0 && idle.filter(Boolean).length === 1);
    assert.deepEqual((await Promise.all(claims.map((claim) => claim(plan, 10_000)))).map(Boolean),
      claims.map((_, i) => i === reader), 'the holder alone, for the shorter period');
    assert.equal((await Promise.all(claims.map((claim) => claim(plan, 10_000)))).filter(Boolean).length, 0,
      'and then once per period again');
    await Promise.all(fleet.map((r) => r.close()));
  });

  test('the debounce: one run and one trailing per window, whichever replicas the HEADs reach', async (t) => {
    const clock = createFakeClock();
    const opened = await stores(t, 3, clock);
    const gates = opened.map((store) => createDebounceGate(store, clock, 5_000));
    const entries = await Promise.all(Array.from({ length: 30 }, (_, i) => gates[i % 3]!.enter('x')));
    assert.equal(entries.filter((e) => e.run).length, 1, 'one leading run');
    const waits = entries.flatMap((e) => (e.run ? [] : [e.at]));
    assert.ok(waits.every((at) => at === clock.now() + 5_000), 'the others wait for the window’s end');
    const first = clock.now();
    clock.advance(5_000);
    const trailing = await Promise.all(gates.map((gate) => gate.takeTrailing('x', first)));
    assert.equal(trailing.filter(Boolean).length, 1, 'exactly one replica runs the trailing run');
    assert.deepEqual(await Promise.all(gates.map((gate) => gate.takeTrailing('x', first))), [false, false, false]);
    // The trailing run opened the next window: a HEAD now waits, for that window.
    const next = await gates[1]!.enter('x');
    assert.ok(!next.run && next.window === clock.now());
    // A replica late for the first window (a slow timer) leaves the second window's mark alone.
    clock.advance(10);
    assert.equal(await gates[2]!.takeTrailing('x', first), false, 'a late timer takes no later window’s run');
    clock.advance(4_990);
    assert.equal((await Promise.all(gates.map((gate) => gate.takeTrailing('x', next.window)))).filter(Boolean).length, 1);
    clock.advance(5_001);
    assert.equal((await gates[2]!.enter('x')).run, true, 'a quiet window later, a HEAD runs at once');
  });

  test('the journal: a live replica’s changes are its own; a dead one’s are taken over by one replica', async (t) => {
    const [a, b, c] = await stores(t, 3);
    const alive = new Set(['A', 'B', 'C']);
    const log = (store: Store, replica: string) => createChangeLog(store, { replica, isAlive: (id) => alive.has(id) });
    const change = (n: number) => ({ feed: { key: `/c/${n}.ics`, target: `/c/${n}.ics`, listing: `${n}` }, tag: 't', at: n });
    await log(a!, 'A').record(change(1));
    const orphan = await log(a!, 'D').record(change(2));
    assert.deepEqual((await log(b!, 'B').pending()).map((x) => x.id), [orphan.id], 'only the dead replica’s');
    assert.deepEqual(await log(c!, 'C').pending(), [], 'claimed: not twice');
    alive.delete('A');
    assert.equal((await log(c!, 'C').pending()).length, 1, 'A died: its change is C’s now');
  });

  test('the outbox: one notify, one HEAD from two replicas; a dead replica’s claim is sent by another', async (t) => {
    const [a, b] = await stores(t, 2);
    const heads = new EventEmitter();
    let count = 0;
    const peer = await startServer(t, (req, res) => {
      count += 1;
      heads.emit('head', req.url);
      res.writeHead(200).end();
    });
    const notifiers = [a!, b!].map((store) => {
      const client = createOutboundClient({ clock: systemClock, connectTimeoutMs: 1_000 });
      const notifier = createNotifier({ store, clock: systemClock, logger, registry: createRegistry(), client,
        userAgent: 'iPP/0.1', leaseMs: 400, pollMs: 50 });
      t.after(async () => {
        await notifier.close();
        await client.close();
      });
      return notifier;
    });
    await Promise.all(notifiers.map((n) => n.start()));
    const first = once(heads, 'head');
    await notifiers[0]!.notify([{ listing: 'x', name: 'peer', url: `${peer.url}/x.ics` }], 'booking');
    await first;
    await eventually(async () => (await notifiers[1]!.pending()).length === 0, 10_000);
    await new Promise((resolve) => setTimeout(resolve, 200)); // both poll several times meanwhile
    assert.equal(count, 1, 'one HEAD for one notify across both replicas');

    // A replica took a notification and was killed before sending it: its claim is left in the store.
    const url = `${peer.url}/y.ics`;
    const key = outboxKey('y', url);
    const outbox = createOutbox(a!, () => {});
    const now = Date.now();
    await outbox.put(key, { listing: 'y', name: 'peer', url, reason: 'booking', attempts: 0, dueAt: now, firstQueuedAt: now });
    await outbox.schedule(key, now);
    const [claim] = await outbox.claim(Date.now(), 300, 1);
    assert.equal(claim?.member, key);
    const taken = once(heads, 'head');
    assert.equal(await taken, '/y.ics', 'sent by a live replica once the lease ran out');
    assert.equal(count, 2);
    await eventually(async () => (await notifiers[0]!.pending()).length === 0, 10_000);
  });

  test('an outage: a notification accepted while Redis is down waits in memory and is sent when it is back', async (t) => {
    const [store] = await stores(t, 1);
    const heads = new EventEmitter();
    const peer = await startServer(t, (req, res) => {
      heads.emit('head', req.url);
      res.writeHead(200).end();
    });
    const client = createOutboundClient({ clock: systemClock, connectTimeoutMs: 1_000 });
    const notifier = createNotifier({ store: store!, clock: systemClock, logger, registry: createRegistry(), client,
      userAgent: 'iPP/0.1', pollMs: 50 });
    t.after(async () => {
      await notifier.close();
      await client.close();
    });
    await notifier.start();
    await redis.stop();
    await notifier.notify([{ listing: 'x', name: 'peer', url: `${peer.url}/x.ics` }], 'booking');
    const sent = once(heads, 'head');
    await redis.start();
    assert.equal(await sent, '/x.ics');
  });

  test('hook lists: registrations on two replicas at once both land; a change fires each hook once', async (t) => {
    const clock = createFakeClock();
    const opened = await stores(t, 2, clock);
    let fired = 0;
    const hookServer = await startServer(t, (_req, res) => {
      fired += 1;
      res.writeHead(200).end();
    });
    const all = opened.map((store) => {
      const client = createOutboundClient({ clock, connectTimeoutMs: 1_000 });
      const hooks = createHooks({ store, clock, client, logger, registry: createRegistry(), enabled: true,
        allowPrivateNetworks: true, maxPerFeed: 50, userAgent: 'iPP/0.1', timeoutMs: 2_000,
        lookup: async () => [{ address: '127.0.0.1', family: 4 }] });
      t.after(async () => {
        await client.close();
        await hooks.close();
      });
      return hooks;
    });
    const urls = Array.from({ length: 10 }, (_, i) => `${hookServer.url}/hook/${i}`);
    const results = await Promise.all(urls.map((url, i) => all[i % 2]!.register('/feed.ics', url)));
    assert.ok(results.every((r) => r.ok === true), JSON.stringify(results));
    assert.equal((await all[0]!.list('/feed.ics')).length, 10, 'no registration lost to another');
    await all[1]!.fire('/feed.ics', 'v2');
    await all[1]!.idle();
    // The other replica scans the store for due hooks (as after a restart): the claims keep it from firing twice.
    await all[0]!.start();
    await all[0]!.idle();
    assert.equal(fired, 10);
    assert.deepEqual(await all[0]!.list('/feed.ics'), []);
  });
});

/** The next `event` of `emitter`; rejects after 10 s. */
function once(emitter: EventEmitter, event: string): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${event} within 10 s`)), 10_000);
    emitter.once(event, (value: unknown) => {
      clearTimeout(timer);
      resolve(value);
    });
  });
}
