// The write-ahead journal of feed changes (SPEC "Outbound": no kill -9 between "feed changed" and "peers
// notified" may lose a notification). A change is written here before the snapshot that contains it, and
// removed only once everything it causes (iCal Hooks marked due, the push decision and its notifications
// in the outbox) is itself durable; on start, whatever is still here is processed again.
import { randomUUID } from 'node:crypto';
import type { Store, StoreNamespace } from '../store/store.ts';

/** A listing's busy nights as one read saw them (push decides from two of these). */
export type StoredNights = {
  /** The date the nights are counted from, and how many days ahead. */
  today: string;
  days: number;
  /** The IANA zone timed events were dated in; absent: UTC dates. */
  zone?: string;
  /** When the read was made (ms); absent in entries journaled before it was kept. */
  at?: number;
  /** Busy nights, sorted. */
  busy: string[];
  unreadable: number;
  busySafe: number;
  /** How many events make up the run that holds the furthest busy night (up to 2); absent in entries
   * journaled before it was counted. */
  edgeEvents?: number;
};

/** One change of a feed's content, as journaled. */
export type FeedChange = {
  id: string;
  feed: { key: string; target: string; listing: string };
  /** The history's new version; absent for a feed served unversioned. */
  version?: number;
  tag: string;
  at: number;
  /** For a listing's own feed: its nights before (when known) and after the change. */
  nights?: { before?: StoredNights; after: StoredNights };
  /** Set (never stored) when the change is processed again at start, left by a previous run. */
  recovered?: true;
  /** The replica that journaled it (absent in entries journaled before replicas were told apart). */
  replica?: string;
};

/** The journal. */
export type ChangeLog = {
  /** Makes a change durable; resolves once it is in the store. */
  record(change: Omit<FeedChange, 'id'>): Promise<FeedChange>;
  /** Forgets a change whose effects are durable. */
  done(id: string): Promise<void>;
  /**
   * Every change not done yet that nobody is processing, oldest first: with several replicas, those of dead
   * replicas, each claimed for a while by the replica that asked, so no two process one.
   */
  pending(): Promise<FeedChange[]>;
};

/** Who journals, who else is alive (SPEC "Several replicas"), and the time; by default one process alone. */
export type ChangeLogFleet = { replica: string; isAlive(replica: string): boolean; now?(): number };

// A recovered change is this replica's to process for this long; then another may try.
const claimMs = 60_000;
// A dead replica's change is taken over only this long after it was journaled: a replica just back (after an
// outage, its heartbeat expired) is seen alive again by then, and one just started has seen the fleet.
const takeoverGraceMs = 30_000;
// This replica's own change, still in the journal this long after it was journaled, failed to be processed
// (its store went away mid-way): it is processed again.
const ownRetryMs = 5 * 60_000;
// Changes looked at per pass of a shared journal.
const pendingBatch = 1_000;

// A change nobody processed in a week is past helping: the peers have long polled since.
const ttlMs = 7 * 24 * 60 * 60 * 1000;

/** The store namespace of the journal. */
export const changeLogNamespace = 'feed_changes';

/** Creates the journal over `store`. */
export function createChangeLog(store: Store, fleet?: ChangeLogFleet): ChangeLog {
  const journal: StoreNamespace = store.namespace(changeLogNamespace);
  const claims: StoreNamespace = store.namespace(`${changeLogNamespace}_claims`);
  // With several replicas, an index of the journal by time, so a pass reads the journal, not the whole keyspace.
  const index = store.shared ? store.queue(changeLogNamespace) : undefined;
  const now = () => fleet?.now?.() ?? Date.now();
  return {
    async record(change) {
      const entry: FeedChange = { id: randomUUID(), ...change, ...(fleet ? { replica: fleet.replica } : {}) };
      await journal.set(entry.id, entry, ttlMs);
      await index?.schedule(entry.id, entry.at);
      return entry;
    },
    async done(id) {
      await journal.delete(id);
      await index?.remove(id);
    },
    async pending() {
      if (index !== undefined && fleet !== undefined) {
        const orphans: FeedChange[] = [];
        const at = now();
        for (const [id, journaledAt] of await index.list(pendingBatch)) {
          const age = at - journaledAt;
          if (age < takeoverGraceMs) break;
          const change = await journal.get<FeedChange>(id);
          if (change === undefined || typeof change !== 'object' || typeof change.at !== 'number') {
            await index.remove(id);
            continue;
          }
          const mine = change.replica === fleet.replica;
          if (mine ? age < ownRetryMs : change.replica !== undefined && fleet.isAlive(change.replica)) continue;
          if (await claims.add(change.id, fleet.replica, claimMs)) orphans.push(change);
        }
        return orphans;
      }
      const out: FeedChange[] = [];
      for await (const [, change] of journal.entries<FeedChange>()) {
        if (typeof change === 'object' && change !== null && typeof change.at === 'number') out.push(change);
      }
      // One process alone: at start, whatever is here was left by a run before this one.
      return out.sort((a, b) => a.at - b.at || (a.version ?? 0) - (b.version ?? 0));
    },
  };
}
