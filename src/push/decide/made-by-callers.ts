// Decisions the model does not make from two reads: an operator's notify, and a drop held by the feed
// engine. Same shape as decide()'s, so the log, status and the console read one kind of object.
import type { StoredNights } from '../../feeds/change-log.ts';
import type { Decision } from './decide.ts';
import type { DropJudgement } from './drop.ts';
import { rawDiff } from './nights-diff.ts';
import { nightRuns } from './night-runs.ts';

/** An operator said the listing changed (admin POST, `icalpush notify`): always primary, unless the peers
 * were already told about the content the sidecar reads now (one HEAD per change). */
export function operatorDecision(at: number, alreadyTold: boolean): Decision {
  return {
    kind: 'operator',
    rule: alreadyTold ? 'already-notified' : 'operator',
    at: new Date(at).toISOString(),
    nights: { added: [], removed: [] },
    evidence: [],
    notified: [],
    why: alreadyTold
      ? 'operator notify: the peers were already told about this content'
      : 'operator notify: counts as primary',
  };
}

/** A read that dropped most of the listing's nights, held until later reads confirm it. */
export function heldDecision(at: number, judgement: DropJudgement & { verdict: 'hold' }, spanMs: number,
  nights: { before?: StoredNights; after: StoredNights } | undefined): Decision {
  const lost = nights?.before ? rawDiff(nights.before, nights.after).removed : [];
  const runs = nightRuns(lost);
  const minutes = Math.round(spanMs / 60_000);
  return {
    kind: 'held',
    rule: 'drop-held',
    at: new Date(at).toISOString(),
    nights: { added: [], removed: runs.runs },
    evidence: [],
    notified: [],
    drop: { measure: judgement.measure, lost: judgement.lost, of: judgement.of },
    ...(runs.truncated ? { truncated: true as const } : {}),
    why: `the read lost ${judgement.lost} of ${judgement.of} ${judgement.measure} at once: held, applied only if a read ` +
      `${minutes} min or more later still shows it (at once after a trigger or an operator notify)`,
  };
}
