// A due queue for the backends of one process (memory, sqlite): members and due times kept durable
// through the backend, an index in memory for the soonest, every operation run one after another, so
// each is atomic. Loaded from the backend on first use.
import { createDueHeap } from '../util/due-heap.ts';
import type { Claim, DueQueue } from './store.ts';

/** What the queue needs of its backend. */
export type LocalQueueBackend = {
  /** Runs a backend operation, turning its failure into STORE_UNAVAILABLE. */
  guard<T>(action: string, run: () => Promise<T>): Promise<T>;
  /** Every stored member with its due time. */
  load(): Promise<[member: string, at: number][]>;
  save(member: string, at: number): Promise<void>;
  remove(member: string): Promise<void>;
};

/** Creates the queue over `backend`. */
export function createLocalDueQueue(backend: LocalQueueBackend): DueQueue {
  const due = new Map<string, number>();
  let heap = createDueHeap();
  let loaded = false;
  let tail: Promise<unknown> = Promise.resolve();

  /** Runs `task` after every operation before it, the index loaded. */
  function serially<T>(action: string, task: () => Promise<T>): Promise<T> {
    const run = tail.then(() => backend.guard(action, async () => {
      if (!loaded) {
        for (const [member, at] of await backend.load()) {
          if (typeof at !== 'number' || !Number.isFinite(at)) continue;
          due.set(member, at);
          heap.push(at, member);
        }
        loaded = true;
      }
      return task();
    }));
    tail = run.catch(() => undefined);
    return run;
  }

  async function put(member: string, at: number): Promise<void> {
    await backend.save(member, at);
    due.set(member, at);
    heap.push(at, member);
    // Items left behind by moves are dropped as they surface; a heap that gathered many is rebuilt.
    if (heap.size() > 2 * due.size + 64) compact();
  }

  function peek(): [string, number] | undefined {
    for (;;) {
      const top = heap.peek();
      if (top === undefined) return undefined;
      if (due.get(top.key) === top.dueAt) return [top.key, top.dueAt];
      heap.pop();
    }
  }

  // A heap that has gathered many stale items is rebuilt from the live ones.
  function compact(): void {
    heap = createDueHeap();
    for (const [member, at] of due) heap.push(at, member);
  }

  return {
    schedule: (member, at) => serially('schedule', async () => {
      if (due.has(member)) return;
      await put(member, at);
    }),
    hasten: (member, at) => serially('hasten', async () => {
      const current = due.get(member);
      if (current !== undefined && current <= at) return;
      await put(member, at);
    }),
    claim: (now, leaseMs, limit) => serially('claim', async () => {
      const taken: Claim[] = [];
      const token = now + leaseMs;
      while (taken.length < limit) {
        const top = peek();
        if (top === undefined || top[1] > now) break;
        heap.pop();
        try {
          await put(top[0], token);
        } catch (err) {
          // Not claimed after all: it stays due where it was.
          heap.push(top[1], top[0]);
          throw err;
        }
        taken.push({ member: top[0], token });
      }
      return taken;
    }),
    complete: (claim) => serially('complete', async () => {
      if (due.get(claim.member) !== claim.token) return false;
      await backend.remove(claim.member);
      due.delete(claim.member);
      return true;
    }),
    retry: (claim, at) => serially('retry', async () => {
      if (due.get(claim.member) !== claim.token) return false;
      await put(claim.member, at);
      return true;
    }),
    remove: (member) => serially('remove', async () => {
      if (!due.has(member)) return;
      await backend.remove(member);
      due.delete(member);
    }),
    next: () => serially('next', async () => peek()?.[1]),
    size: () => serially('size', async () => due.size),
    list: (limit) => serially('list', async () => {
      return [...due].sort((a, b) => a[1] - b[1]).slice(0, Math.max(0, limit));
    }),
  };
}
