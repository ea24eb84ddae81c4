// Classifying a listing's journaled change (SPEC "Push"): the pure decision (decide/decide.ts) fed with
// what only the running sidecar knows: the peers' feeds as evidence (stale ones re-read before a change
// is called primary, iPP §3.3), "today" for the listing, and the time since the previous read.
import type { Clock } from '../clock.ts';
import type { FeedChange } from '../feeds/change-log.ts';
import { daysBetween } from './decide/dates.ts';
import { type Decision, decide, type PeerEvidenceSource } from './decide/decide.ts';
import { todayFor } from './decide/today.ts';
import type { PeerReader } from './peers.ts';
import type { ListingPlan } from './plans.ts';

/** Decides one change of a listing's own feed. */
export type Classifier = (plan: ListingPlan, change: FeedChange) => Promise<Decision>;

// A peer snapshot older than this is re-read before a change is declared primary.
const peerFreshMs = 30_000;
// A change decided this long after its read is late (recovered after a crash): see below.
const lateDecisionMs = 2 * 60_000;
const dayMs = 86_400_000;

/** Creates the classifier over the peers' reader. */
export function createClassifier(peers: PeerReader, clock: Clock): Classifier {
  /** The peers' feeds as evidence, as last read; with `readBy`, only reads made by then. */
  function evidenceOf(plan: ListingPlan, readBy = Number.POSITIVE_INFINITY): PeerEvidenceSource[] {
    return plan.peers.flatMap((peer) => {
      const snap = peers.snapshot(peer);
      return snap && snap.readAt <= readBy
        ? [{ name: peer.name, busy: snap.nights, freed: snap.freed, readAt: snap.readAt }] : [];
    });
  }

  return async (plan, change) => {
    const { before, after } = change.nights ?? {};
    const at = after?.at ?? change.at;
    if (!after) {
      // Nights could not be counted for this read (the analysis failed): nothing to compare.
      return decide({ before: undefined, after: { today: '1970-01-01', days: 0, busy: [], unreadable: 0, busySafe: 0 },
        peers: [], today: todayFor(at, plan.zone), elapsedMs: 0, at });
    }
    // A change recovered at start (journaled before a crash), or decided long after it was read: a peer read
    // since may show the nights because that peer imported them from us meanwhile. Only reads made by
    // the change explain it then; a false alarm is cheaper than a peer never told.
    const late = change.recovered === true || clock.now() - change.at > lateDecisionMs;
    const input = () => ({ before, after, peers: evidenceOf(plan, late ? change.at : undefined),
      today: todayFor(at, plan.zone),
      // Since the previous read (the engine gives the last read that showed the nights before); entries
      // journaled before reads were timed: by the dates the two counts started on.
      elapsedMs: before === undefined ? 0
        : before.at === undefined ? daysBetween(before.today, after.today) * dayMs : at - before.at, at });
    let decision = decide(input());
    if (decision.kind === 'primary' && plan.peers.length > 0) {
      const now = clock.now();
      const stale = plan.peers.filter((peer) => {
        const snap = peers.snapshot(peer);
        return !snap || now - snap.readAt >= peerFreshMs;
      });
      if (stale.length > 0) {
        await Promise.all(stale.map((peer) => peers.read(peer)));
        decision = decide(input());
      }
    }
    return { ...decision, ...(change.version === undefined ? {} : { version: change.version }), tag: change.tag };
  };
}
