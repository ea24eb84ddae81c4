// The delivery queue on its own: concurrency and capacity bounds, one job per key, retries parked
// on the clock, room reported after a refusal, close() dropping what has not started.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createDeliveryQueue, type DeliveryQueueOptions } from '../../src/hooks/delivery-queue.ts';
import { createFakeClock } from '../store/fake-clock.ts';

/** A job the test finishes by hand: `finish(retryInMs?)`. */
type Gate = { name: string; attempts: number[]; finish: (retryInMs?: number) => void };

function gatedQueue(overrides: Partial<DeliveryQueueOptions<string>> = {}) {
  const clock = createFakeClock();
  const running = new Map<string, Gate>();
  const started: string[] = [];
  let rooms = 0;
  const retries: Array<[string, number, number]> = [];
  const queue = createDeliveryQueue<string>({
    clock,
    concurrency: 2,
    capacity: 4,
    keyOf: (job) => job,
    run: (job, attempt) => new Promise((resolve) => {
      started.push(`${job}#${attempt}`);
      const gate = running.get(job) ?? { name: job, attempts: [], finish: () => {} };
      gate.attempts.push(attempt);
      gate.finish = (retryInMs) => {
        running.delete(job);
        resolve(retryInMs);
      };
      running.set(job, gate);
    }),
    onRoom: () => {
      rooms += 1;
    },
    onRetry: (job, attempt, retryInMs) => retries.push([job, attempt, retryInMs]),
    ...overrides,
  });
  const finish = async (job: string, retryInMs?: number) => {
    const gate = running.get(job);
    assert.ok(gate, `${job} is not running`);
    gate.finish(retryInMs);
    // Let the queue see the settled promise and start what is next (all of it is microtasks).
    await new Promise<void>((resolve) => setImmediate(resolve));
  };
  return { clock, queue, started, running, retries, rooms: () => rooms, finish };
}

test('runs at most `concurrency` jobs at once, in the order they were added', async () => {
  const q = gatedQueue();
  for (const job of ['a', 'b', 'c']) assert.equal(q.queue.add(job), 'queued');
  assert.deepEqual(q.started, ['a#1', 'b#1']);
  await q.finish('a');
  assert.deepEqual(q.started, ['a#1', 'b#1', 'c#1']);
  assert.equal(q.queue.size, 2);
});

test('a job whose key is held is not added twice', () => {
  const q = gatedQueue();
  assert.equal(q.queue.add('a'), 'queued');
  assert.equal(q.queue.add('a'), 'held');
  assert.equal(q.queue.size, 1);
});

test('past its capacity add() answers full, and onRoom is called once half of it is free', async () => {
  const q = gatedQueue();
  for (const job of ['a', 'b', 'c', 'd']) q.queue.add(job);
  assert.equal(q.queue.add('e'), 'full');
  await q.finish('a');
  assert.equal(q.rooms(), 0);
  await q.finish('b');
  assert.equal(q.rooms(), 1);
  await q.finish('c');
  assert.equal(q.rooms(), 1);
});

test('a retry is parked on the clock, reported, and runs again at the back of the queue', async () => {
  const q = gatedQueue({ concurrency: 1 });
  q.queue.add('a');
  q.queue.add('b');
  await q.finish('a', 1_000);
  assert.deepEqual(q.retries, [['a', 1, 1_000]]);
  assert.deepEqual(q.started, ['a#1', 'b#1']);
  q.clock.advance(1_000);
  await q.finish('b');
  assert.deepEqual(q.started, ['a#1', 'b#1', 'a#2']);
  assert.equal(q.queue.size, 1);
});

test('idle() resolves once nothing is waiting, parked or running', async () => {
  const q = gatedQueue();
  let idle = false;
  q.queue.add('a');
  void q.queue.idle().then(() => {
    idle = true;
  });
  await q.finish('a', 500);
  assert.equal(idle, false);
  q.clock.advance(500);
  await q.finish('a');
  assert.equal(idle, true);
});

test('close() drops waiting and parked jobs and waits for the running ones', async () => {
  const q = gatedQueue({ concurrency: 1 });
  q.queue.add('a');
  q.queue.add('b');
  let closed = false;
  const closing = q.queue.close().then(() => {
    closed = true;
  });
  assert.equal(q.queue.add('c'), 'closed');
  await Promise.resolve();
  assert.equal(closed, false);
  await q.finish('a', 1_000);
  await closing;
  assert.deepEqual(q.started, ['a#1']);
  assert.equal(q.queue.size, 0);
  assert.equal(q.clock.pending(), 0);
});
