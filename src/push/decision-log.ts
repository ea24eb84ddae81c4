// Every push decision, kept per listing (SPEC "Push": every decision is recorded): the last 50, in the
// store, so "why did (or didn't) it notify?" has an answer after a restart too. The same record keeps
// which content the peers were last told about, so that one primary change sends exactly one HEAD to
// each peer however many reads or notifies observe it.
import type { Store, StoreNamespace } from '../store/store.ts';
import { createKeyedQueue } from '../util/keyed-queue.ts';
import type { Decision } from './decide/decide.ts';

/** A decision as logged: with the journaled change it decided (a change replayed after a crash replaces
 * its own entry instead of adding one). Changes in a row that leave the nights as they were (an export
 * rewriting its header on every read) are one entry: the latest, with how many and since when. */
export type LoggedDecision = Decision & { change?: string; repeats?: number; firstAt?: string };

/** The log. */
export type DecisionLog = {
  /**
   * Appends `decision` (keeping the newest `max`). `announced`: the content tag the peers were just told
   * about; `null`: the content changed without them being told; absent: no change to that.
   */
  record(listing: string, decision: LoggedDecision, announced?: string | null): Promise<void>;
  /** The listing's decisions, newest first. */
  list(listing: string): Promise<LoggedDecision[]>;
  /** The content tag the peers were last told about, while nothing changed since. */
  announced(listing: string): Promise<string | undefined>;
};

type Entry = { decisions: LoggedDecision[]; announced?: string };

/** The store namespace of the log: one entry per listing. */
export const decisionLogNamespace = 'push_decisions';

/** Decisions kept per listing. */
export const maxDecisionsPerListing = 50;

// A listing nothing happened to for this long loses its log (a removed listing's must not stay forever).
const ttlMs = 400 * 24 * 60 * 60 * 1000;

/** Creates the log over `store`. */
export function createDecisionLog(store: Store, max = maxDecisionsPerListing): DecisionLog {
  const entries: StoreNamespace = store.namespace(decisionLogNamespace);
  // Read-modify-write per listing, one at a time.
  const serialized = createKeyedQueue();
  const load = async (listing: string): Promise<Entry> => {
    const entry = await entries.get<Entry>(listing);
    return entry && Array.isArray(entry.decisions) ? entry : { decisions: [] };
  };
  return {
    record: (listing, decision, announced) => serialized(listing, async () => {
      const entry = await load(listing);
      const same = decision.change === undefined ? -1 : entry.decisions.findIndex((d) => d.change === decision.change);
      const last = entry.decisions.at(-1);
      if (same >= 0) entry.decisions[same] = decision;
      else if (last && isRepeat(last, decision)) {
        entry.decisions[entry.decisions.length - 1] = { ...decision, repeats: (last.repeats ?? 1) + 1,
          firstAt: last.firstAt ?? last.at };
      } else entry.decisions.push(decision);
      if (entry.decisions.length > max) entry.decisions.splice(0, entry.decisions.length - max);
      if (announced === null) delete entry.announced;
      else if (announced !== undefined) entry.announced = announced;
      await entries.set(listing, entry, ttlMs);
    }),
    async list(listing) {
      return (await load(listing)).decisions.slice().reverse();
    },
    async announced(listing) {
      return (await load(listing)).announced;
    },
  };
}

// Only "nothing changed" repeats: every other decision is news of its own and stays.
function isRepeat(last: LoggedDecision, next: LoggedDecision): boolean {
  return last.rule === 'nights-unchanged' && next.rule === 'nights-unchanged';
}
