// Who is in the fleet (SPEC "Several replicas"): each replica keeps a heartbeat entry in the shared store,
// and reads the others' to know which are alive. Work that must be done once across the fleet (the watch
// of a listing) is assigned to one live replica by rendezvous hashing, so when a replica dies its share
// spreads over the others as soon as its heartbeat runs out, with no coordination beyond the store.
// A store of one process has one replica: this one.
import { randomBytes } from 'node:crypto';
import type { Clock, Timer } from '../clock.ts';
import type { Logger } from '../log.ts';
import { fnv1a } from '../util/fnv.ts';
import type { Store, StoreNamespace } from './store.ts';

/** The fleet as this replica sees it. */
export type Replicas = {
  /** This replica's id, unique to this process. */
  readonly id: string;
  /** The live replicas, this one included, as of the last heartbeat. */
  live(): readonly string[];
  /** True when `id` was alive at the last heartbeat (this replica always is). */
  isAlive(id: string): boolean;
  /** True when `key`'s work is this replica's: the live replica whose hash with `key` is highest. */
  owns(key: string): boolean;
  /** Starts the heartbeat; resolves after the first one (or its failure). */
  start(): Promise<void>;
  /** Stops the heartbeat and removes this replica's entry, so the others take over at once. */
  close(): Promise<void>;
};

/** Options of createReplicas. */
export type ReplicasOptions = {
  store: Store;
  clock: Clock;
  logger: Logger;
  /** How often the heartbeat is written and the fleet re-read; its entry lives three times that. */
  heartbeatMs?: number;
};

/** The store namespace of the heartbeats. */
export const replicasNamespace = 'replicas';

type Heartbeat = { at: number; pid: number };

/** Creates this replica's membership; nothing is written before start(). */
export function createReplicas(options: ReplicasOptions): Replicas {
  const { store, clock } = options;
  const heartbeatMs = options.heartbeatMs ?? 2_000;
  const id = `${process.pid.toString(36)}-${randomBytes(6).toString('base64url')}`;
  const log = options.logger.child({ component: 'replicas', replica: id });
  const beats: StoreNamespace = store.namespace(replicasNamespace);
  let live: string[] = [id];
  let timer: Timer | undefined;
  let closed = false;
  let unreachable = false;

  async function beat(): Promise<void> {
    try {
      await beats.set(id, { at: clock.now(), pid: process.pid } satisfies Heartbeat, heartbeatMs * 3);
      const seen: string[] = [];
      for await (const [other] of beats.entries<Heartbeat>()) seen.push(other);
      if (!seen.includes(id)) seen.push(id);
      seen.sort();
      if (seen.join() !== live.join()) log.info({ live: seen.length, replicas: seen }, 'fleet changed');
      live = seen;
      if (unreachable) log.info('heartbeat written again');
      unreachable = false;
    } catch (err) {
      // Unreachable store: the last view stands; leases still keep work from being done twice.
      if (!unreachable) log.warn({ err: { message: (err as Error).message } }, 'heartbeat failed');
      unreachable = true;
    }
  }

  function schedule(): void {
    if (closed) return;
    timer = clock.setTimeout(() => {
      void beat().finally(schedule);
    }, heartbeatMs);
  }

  return {
    id,
    live: () => live,
    isAlive: (other) => other === id || live.includes(other),
    owns(key) {
      if (live.length <= 1) return true;
      let best = id;
      let bestScore = -1;
      for (const replica of live) {
        const score = mix32(fnv1a(`${replica}\u0000${key}`));
        if (score > bestScore || (score === bestScore && replica < best)) {
          best = replica;
          bestScore = score;
        }
      }
      return best === id;
    },
    async start() {
      if (!store.shared || closed) return;
      await beat();
      schedule();
    },
    async close() {
      if (closed) return;
      closed = true;
      clock.clearTimeout(timer);
      if (store.shared) await beats.delete(id).catch(() => false);
    },
  };
}

/** MurmurHash3's finalizer: FNV-1a alone spreads keys that differ in a few characters unevenly over replicas. */
function mix32(h: number): number {
  let x = h;
  x ^= x >>> 16;
  x = Math.imul(x, 0x85ebca6b);
  x ^= x >>> 13;
  x = Math.imul(x, 0xc2b2ae35);
  x ^= x >>> 16;
  return x >>> 0;
}
