// The push decision (SPEC "Push"): from two reads of a listing's own feed, the peers' evidence, "today"
// and the time elapsed, what kind of change it was and why. Pure: no I/O, no clock, no randomness; the
// same inputs give the same Decision, in the sidecar, in `icalpush replay` and in the tests.
//
// The rules, in the order they are tried:
// 1. first-read          no earlier read to compare with: the baseline.
// 2. nights-unchanged    the same busy nights over the days both reads counted (DTSTAMP churn, re-keyed
//                        UIDs, past events expiring, nights entering the far end of the window).
// 3. night-passing       only nights no longer ahead changed (a stay trimmed to start today).
// 4. peers-explain       every changed night is explained by a peer: imported (iPP §3.3, matched by
//                        dates, never by UID).
// 5. window-roll         the unexplained nights only move the edge block later (edge-block.ts).
// 6. unexplained-nights  anything else: primary, however far ahead.
import type { StoredNights } from '../../feeds/change-log.ts';
import { daysBetween, utcDate } from './dates.ts';
import { edgeBlock, isWindowRoll } from './edge-block.ts';
import { countedDiff, isEmptyDiff, type NightsDiff } from './nights-diff.ts';
import { nightRuns } from './night-runs.ts';
import type { Today } from './today.ts';

/** What a change was. `operator` and `held` are made by the callers (an operator notify, a drop held). */
export type DecisionKind = 'primary' | 'imported' | 'roll' | 'no-night-change' | 'operator' | 'held';

/** The rule that decided (see the list above; `operator`, `already-notified` and `drop-held` are the
 * callers'). */
export type DecisionRule =
  | 'first-read' | 'nights-unchanged' | 'night-passing' | 'peers-explain' | 'window-roll' | 'unexplained-nights'
  | 'operator' | 'already-notified' | 'drop-held';

/** A peer's feed as evidence: its busy nights as of its last read, and the nights it freed lately. */
export type PeerEvidenceSource = {
  name: string;
  /** Busy nights, sorted. */
  busy: readonly string[];
  /** Nights the peer stopped showing busy, with when that read was (ms). */
  freed: Readonly<Record<string, number>>;
  /** When the peer was last read (ms). */
  readAt: number;
};

/** One peer explaining a run of changed nights. */
export type Evidence = {
  peer: string;
  /** A run of nights, `from/to` (night-runs.ts). */
  night: string;
  /** The peer shows these nights busy (explaining a booking) or freed them (explaining a cancellation). */
  shows: 'busy' | 'free';
  /** When the peer's read that shows it was made (ISO). */
  readAt: string;
};

/** Nights as runs (night-runs.ts). */
export type NightRunsDiff = { added: string[]; removed: string[] };

/** A decision: the same object in the log line, the decision log, status and `replay --json`. */
export type Decision = {
  kind: DecisionKind;
  rule: DecisionRule;
  /** When the read decided on was made (ISO). */
  at: string;
  /** Every night that became busy (added) or free (removed) and counts as news, as runs. */
  nights: NightRunsDiff;
  /** Which peer explained which nights (imported ones). */
  evidence: Evidence[];
  /** The peers notified because of it (names). */
  notified: string[];
  /** For a primary change with some nights explained: the nights nobody explains. */
  primary?: NightRunsDiff;
  /** Nights that changed but are no longer ahead: they notify nobody. */
  passed?: NightRunsDiff;
  /** For a held drop: what it lost (drop.ts). */
  drop?: { measure: 'nights' | 'events'; lost: number; of: number };
  /** A list was cut at night-runs.ts's bound. */
  truncated?: true;
  /** One sentence for people. */
  why: string;
  version?: number;
  tag?: string;
};

/** Everything a decision depends on. */
export type DecideInput = {
  /** The nights of the previous read, if any. */
  before: StoredNights | undefined;
  after: StoredNights;
  peers: readonly PeerEvidenceSource[];
  today: Today;
  /** Milliseconds between the two reads. */
  elapsedMs: number;
  /** When the `after` read was made (ms). */
  at: number;
};

const dayMs = 24 * 60 * 60 * 1000;

/** Decides one change. */
export function decide(input: DecideInput): Decision {
  const { before, after, today } = input;
  const at = new Date(input.at).toISOString();
  if (!before) return made({ kind: 'no-night-change', rule: 'first-read', at, why: 'first read: the baseline' });
  const diff = countedDiff(before, after, today);
  const passed = isEmptyDiff(diff.passed) ? undefined : diff.passed;
  if (isEmptyDiff(diff)) {
    return passed
      ? made({ kind: 'no-night-change', rule: 'night-passing', at, passed,
          why: `only nights no longer ahead changed (${describe(passed)})` })
      : made({ kind: 'no-night-change', rule: 'nights-unchanged', at, why: 'the same busy nights' });
  }
  const { evidence, unexplained } = explain(diff, input.peers);
  if (isEmptyDiff(unexplained)) {
    return made({ kind: 'imported', rule: 'peers-explain', at, diff, evidence, passed,
      why: `${describe(diff)}, all shown by ${peersOf(evidence)}` });
  }
  // The whole days elapsed since the previous read (a move of n days is within "elapsed + 2" iff
  // n ≤ floor(elapsed) + 2: 60 s is 0 days, not 1), or the UTC dates the two reads crossed, whichever is more.
  const elapsed = Math.max(0, input.elapsedMs);
  const crossed = daysBetween(utcDate(input.at - elapsed), utcDate(input.at));
  const elapsedDays = Math.max(Math.floor(elapsed / dayMs), crossed);
  if (isWindowRoll(unexplained, edgeBlock(before), edgeBlock(after), elapsedDays)) {
    return made({ kind: 'roll', rule: 'window-roll', at, diff, evidence, passed,
      why: `the far edge block moved later (${describe(unexplained)}): the window roll` });
  }
  const some = evidence.length > 0;
  return made({ kind: 'primary', rule: 'unexplained-nights', at, diff, evidence, passed,
    ...(some ? { primary: unexplained } : {}),
    why: `${describe(unexplained)} no peer explains${some ? `; the rest shown by ${peersOf(evidence)}` : ''}` });
}

/** Splits a diff into the nights a peer explains (with the evidence) and the others. A night a peer shows
 * busy explains a booking; a night a peer freed explains a cancellation; the first peer in order wins. */
type Explained = { evidence: Evidence[]; unexplained: NightsDiff };

function explain(diff: NightsDiff, peers: readonly PeerEvidenceSource[]): Explained {
  const busySets = peers.map((peer) => new Set(peer.busy));
  const explained: { peer: number; night: string; shows: 'busy' | 'free'; readAt: number }[] = [];
  const unexplained: NightsDiff = { added: [], removed: [] };
  for (const night of diff.added) {
    const i = busySets.findIndex((set) => set.has(night));
    if (i < 0) unexplained.added.push(night);
    else explained.push({ peer: i, night, shows: 'busy', readAt: (peers[i] as PeerEvidenceSource).readAt });
  }
  for (const night of diff.removed) {
    const i = peers.findIndex((peer) => peer.freed[night] !== undefined);
    if (i < 0) unexplained.removed.push(night);
    else explained.push({ peer: i, night, shows: 'free', readAt: (peers[i] as PeerEvidenceSource).freed[night] as number });
  }
  return { evidence: evidenceRuns(explained, peers), unexplained };
}

// Consecutive nights one peer explains the same way, from the same read, become one entry.
function evidenceRuns(items: { peer: number; night: string; shows: 'busy' | 'free'; readAt: number }[],
  peers: readonly PeerEvidenceSource[]): Evidence[] {
  const groups = new Map<string, string[]>();
  for (const item of items) {
    const key = `${item.peer}\u0000${item.shows}\u0000${item.readAt}`;
    let nights = groups.get(key);
    if (!nights) groups.set(key, (nights = []));
    nights.push(item.night);
  }
  const out: Evidence[] = [];
  for (const [key, nights] of groups) {
    const [peer, shows, readAt] = key.split('\u0000') as [string, 'busy' | 'free', string];
    for (const run of nightRuns(nights.sort()).runs) {
      out.push({ peer: (peers[Number(peer)] as PeerEvidenceSource).name, night: run, shows,
        readAt: new Date(Number(readAt)).toISOString() });
    }
  }
  return out.sort((a, b) => (a.night < b.night ? -1 : a.night > b.night ? 1 : 0));
}

const maxEvidence = 64;

type Parts = {
  kind: DecisionKind;
  rule: DecisionRule;
  at: string;
  why: string;
  diff?: NightsDiff;
  evidence?: Evidence[];
  primary?: NightsDiff;
  passed?: NightsDiff | undefined;
};

function made(parts: Parts): Decision {
  let truncated = false;
  const runs = (diff: NightsDiff): NightRunsDiff => {
    const added = nightRuns(diff.added);
    const removed = nightRuns(diff.removed);
    truncated ||= added.truncated || removed.truncated;
    return { added: added.runs, removed: removed.runs };
  };
  const decision: Decision = {
    kind: parts.kind,
    rule: parts.rule,
    at: parts.at,
    nights: runs(parts.diff ?? { added: [], removed: [] }),
    evidence: parts.evidence ?? [],
    notified: [],
    ...(parts.primary ? { primary: runs(parts.primary) } : {}),
    ...(parts.passed ? { passed: runs(parts.passed) } : {}),
    why: parts.why,
  };
  if (decision.evidence.length > maxEvidence) {
    decision.evidence = decision.evidence.slice(0, maxEvidence);
    truncated = true;
  }
  if (truncated) decision.truncated = true;
  return decision;
}

/** "2 nights became busy (2027-08-01/2027-08-03), 1 night became free (2027-09-04/2027-09-05)" */
export function describe(diff: NightsDiff): string {
  const parts: string[] = [];
  const list = (nights: string[]) => {
    const { runs, truncated } = nightRuns(nights, 3);
    return `${runs.join(', ')}${truncated ? ', …' : ''}`;
  };
  if (diff.added.length > 0) parts.push(`${count(diff.added.length)} became busy (${list(diff.added)})`);
  if (diff.removed.length > 0) parts.push(`${count(diff.removed.length)} became free (${list(diff.removed)})`);
  return parts.join(', ');
}

function count(n: number): string {
  return n === 1 ? '1 night' : `${n} nights`;
}

function peersOf(evidence: Evidence[]): string {
  return [...new Set(evidence.map((e) => e.peer))].join(', ');
}
