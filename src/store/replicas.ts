// Who is in the fleet (SPEC "Several replicas"): each replica keeps a heartbeat entry in the shared store and
// its id in one roster entry (compare-and-set), and reads the others' heartbeats, one per replica, to know which
// are alive: no scan of the store, whatever it holds. Work that must be done once across the fleet (the watch
// of a listing) is assigned to one live replica by rendezvous hashing, so when a replica dies its share
// spreads over the others as soon as its heartbeat runs out, with no coordination beyond the store.
// A store of one process has one replica: this one.
import { randomBytes } from 'node:crypto';
import type { Clock, Timer } from '../clock.ts';
import { briefError } from '../errors.ts';
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

// The roster's key, and how long a replica is kept on it after its heartbeat was last seen.
const rosterKey = '~roster';
const rosterGraceMs = 10 * 60_000;
type Roster = Record<string, number>;

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

  /** Changes the roster compare-and-set (a few tries; a lost race only delays a change to the next beat). */
  async function updateRoster(change: (roster: Roster) => Roster | undefined): Promise<Roster> {
    for (let attempt = 0; ; attempt += 1) {
      const stamped = await beats.getStamped<Roster>(rosterKey);
      const roster = stamped?.value ?? {};
      const next = change(roster);
      if (next === undefined) return roster;
      if (await beats.setIfStamp(rosterKey, stamped?.stamp, next) !== undefined || attempt >= 4) return next;
    }
  }

  async function beat(): Promise<void> {
    try {
      const now = clock.now();
      await beats.set(id, { at: now, pid: process.pid } satisfies Heartbeat, heartbeatMs * 3);
      const roster = await updateRoster((current) => (current[id] === undefined
        ? { ...current, [id]: now } : undefined));
      const seen: string[] = [id];
      const gone: string[] = [];
      for (const [other, since] of Object.entries(roster)) {
        if (other === id) continue;
        const heartbeat = await beats.get<Heartbeat>(other);
        if (heartbeat !== undefined) seen.push(other);
        else if (now - since > rosterGraceMs) gone.push(other);
      }
      // Replicas dead for long leave the roster; one seen again keeps its place (its heartbeat refreshes it).
      const stale = now - (roster[id] ?? now) > rosterGraceMs / 2;
      if (gone.length > 0 || stale) {
        await updateRoster((current) => {
          const next = { ...current, [id]: now };
          for (const other of gone) delete next[other];
          for (const other of seen) next[other] = now;
          return next;
        });
      }
      seen.sort();
      if (seen.join() !== live.join()) log.info({ live: seen.length, replicas: seen }, 'fleet changed');
      live = seen;
      if (unreachable) log.info('heartbeat written again');
      unreachable = false;
    } catch (err) {
      // Unreachable store: the last view stands; leases still keep work from being done twice.
      if (!unreachable) log.warn({ err: briefError(err) }, 'heartbeat failed');
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
      if (!store.shared) return;
      await beats.delete(id).catch(() => false);
      await updateRoster((current) => {
        if (current[id] === undefined) return undefined;
        const next = { ...current };
        delete next[id];
        return next;
      }).catch(() => undefined);
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
