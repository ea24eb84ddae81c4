// createCoalesced: runs never overlap; a burst of calls during a run costs one more run, whose result every
// caller of the burst gets; a failed run does not stop the next.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createCoalesced } from '../../src/util/coalesce.ts';

function gatedWork() {
  const gates: Array<() => void> = [];
  let runs = 0;
  let running = 0;
  let overlapped = false;
  const work = async () => {
    runs += 1;
    running += 1;
    if (running > 1) overlapped = true;
    const n = runs;
    await new Promise<void>((resolve) => gates.push(resolve));
    running -= 1;
    if (n === 2 && failSecond) throw new Error('second run failed');
    return n;
  };
  let failSecond = false;
  return { work, open: () => gates.shift()?.(), runs: () => runs, overlapped: () => overlapped,
    failSecond() {
      failSecond = true;
    } };
}

test('a burst during a run shares one more run after it; runs never overlap', async () => {
  const gated = gatedWork();
  const call = createCoalesced(gated.work);
  const first = call();
  const burst = [call(), call(), call()];
  assert.equal(gated.runs(), 1);
  gated.open();
  assert.equal(await first, 1);
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(gated.runs(), 2);
  // A call now (the second run under way) waits for a third.
  const late = call();
  gated.open();
  assert.deepEqual(await Promise.all(burst), [2, 2, 2]);
  await new Promise((resolve) => setImmediate(resolve));
  gated.open();
  assert.equal(await late, 3);
  assert.equal(gated.overlapped(), false);
});

test('a run that fails rejects its callers only; the next call runs again', async () => {
  const gated = gatedWork();
  gated.failSecond();
  const call = createCoalesced(gated.work);
  const first = call();
  const second = call();
  gated.open();
  await first;
  await new Promise((resolve) => setImmediate(resolve));
  gated.open();
  await assert.rejects(second, /second run failed/);
  const third = call();
  gated.open();
  assert.equal(await third, 3);
});
