// The worker pool: tasks run on worker threads, a task past its deadline costs its worker (replaced, the
// next task runs), a full queue answers busy at once, and close() ends everything still waiting.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { systemClock } from '../../src/clock.ts';
import { feedWorkerEntry } from '../../src/app.ts';
import { createWorkerPool } from '../../src/work/pool.ts';

const spin = (ms: number) => ({ type: 'spin', payload: { ms } });

test('a task runs on a worker and its value comes back', async (t) => {
  const pool = createWorkerPool({ entry: feedWorkerEntry, clock: systemClock, size: 1 });
  t.after(() => pool.close());
  assert.deepEqual(await pool.run(spin(1), { deadlineMs: 10_000 }), { kind: 'done', value: 1 });
});

test('a task past its deadline is a timeout, its worker is replaced, and the next task runs', async (t) => {
  const replaced: string[] = [];
  const onReplace = (reason: string) => replaced.push(reason);
  const pool = createWorkerPool({ entry: feedWorkerEntry, clock: systemClock, size: 1, onReplace });
  t.after(() => pool.close());
  // A thread stuck in a loop for an hour: only terminating it gives it back.
  assert.deepEqual(await pool.run(spin(3_600_000), { deadlineMs: 200 }), { kind: 'timeout' });
  assert.deepEqual(replaced, ['timeout']);
  assert.deepEqual(await pool.run(spin(1), { deadlineMs: 10_000 }), { kind: 'done', value: 1 });
});

test('a full queue answers busy at once; a task waiting past its deadline is busy too', async (t) => {
  const pool = createWorkerPool({ entry: feedWorkerEntry, clock: systemClock, size: 1, maxQueue: 1 });
  t.after(() => pool.close());
  const running = pool.run(spin(400), { deadlineMs: 10_000 });
  const waiting = pool.run(spin(1), { deadlineMs: 100 });
  assert.deepEqual(await pool.run(spin(1), { deadlineMs: 10_000 }), { kind: 'busy' });
  assert.deepEqual(await waiting, { kind: 'busy' });
  assert.equal((await running).kind, 'done');
});

test('an unknown task fails with its message, and the worker stays usable', async (t) => {
  const pool = createWorkerPool({ entry: feedWorkerEntry, clock: systemClock, size: 1 });
  t.after(() => pool.close());
  assert.deepEqual(await pool.run({ type: 'nope', payload: {} }, { deadlineMs: 10_000 }),
    { kind: 'failed', message: 'unknown task nope' });
  assert.equal((await pool.run(spin(1), { deadlineMs: 10_000 })).kind, 'done');
});

test('close() ends running and waiting tasks as closed, and later runs too', async () => {
  const pool = createWorkerPool({ entry: feedWorkerEntry, clock: systemClock, size: 1 });
  const running = pool.run(spin(3_600_000), { deadlineMs: 3_600_000 });
  const waiting = pool.run(spin(1), { deadlineMs: 3_600_000 });
  assert.deepEqual(pool.stats(), { workers: 1, running: 1, queued: 1 });
  await pool.close();
  assert.deepEqual(await running, { kind: 'closed' });
  assert.deepEqual(await waiting, { kind: 'closed' });
  assert.deepEqual(await pool.run(spin(1), { deadlineMs: 1_000 }), { kind: 'closed' });
});

test('two tasks run at once on a pool of two', async (t) => {
  const pool = createWorkerPool({ entry: feedWorkerEntry, clock: systemClock, size: 2 });
  t.after(() => pool.close());
  await Promise.all([pool.run(spin(1), { deadlineMs: 10_000 }), pool.run(spin(1), { deadlineMs: 10_000 })]);
  const both = [pool.run(spin(150), { deadlineMs: 10_000 }), pool.run(spin(150), { deadlineMs: 10_000 })];
  assert.equal(pool.stats().running, 2);
  await Promise.all(both);
});

test('a worker that dies mid-task fails that task and is replaced', async (t) => {
  const replaced: string[] = [];
  const onReplace = (reason: string) => replaced.push(reason);
  const pool = createWorkerPool({ entry: feedWorkerEntry, clock: systemClock, size: 1, onReplace });
  t.after(() => pool.close());
  const died = await pool.run({ type: 'crash', payload: {} }, { deadlineMs: 10_000 });
  assert.equal(died.kind, 'failed');
  assert.deepEqual(replaced, ['crash']);
  assert.equal((await pool.run(spin(1), { deadlineMs: 10_000 })).kind, 'done');
});
