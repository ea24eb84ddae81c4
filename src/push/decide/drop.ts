// A sudden drop (SPEC "Guarantees" and "Push": drops are measured in nights): an answer that loses most
// of a listing's future busy nights, or all of them, is held until later reads confirm it; a valid but
// empty export (Booking.com around local midnight, Airbnb for hours) must not become tombstones and
// cancellations. Events replaced one for one (a re-keyed UID, same nights) are never a drop, and a drop
// right after something the sidecar saw change the listing (a trigger's 2xx, an operator notify) is a
// real cancellation: it applies at once.

/** What a read did to a feed. `nights` is known for a listing's own feed: its future busy nights
 * before, and how many the read lost, net (within the days both reads counted; drop-facts.ts). A drop is a read
 * losing more than `fraction` of those nights, or all of them, or (when it lost nights at all) more than
 * `fraction` of its events by count, or every event. */
export type DropFacts = {
  events: { before: number; after: number };
  nights?: { before: number; lost: number };
  /** Milliseconds since the listing's last trigger 2xx or operator notify; absent: none known. */
  touchedAgoMs?: number;
};

/** How the judgement was reached: which measure, and how much of it the read lost. */
export type DropMeasure = { measure: 'nights' | 'events'; lost: number; of: number };

/** Apply the read, or hold it. */
export type DropJudgement =
  | { verdict: 'apply'; rule: 'no-drop' }
  | ({ verdict: 'apply'; rule: 'cancellation-after-trigger' } & DropMeasure)
  | ({ verdict: 'hold'; rule: 'drop-held' } & DropMeasure);

/** A drop this soon after a trigger's 2xx or an operator notify is taken for a real cancellation. */
export const cancellationWindowMs = 60_000;

/** Judges one read: `fraction` is `snapshots.hold.fraction`; a hold span of 0 is the caller's. */
export function judgeDrop(facts: DropFacts, fraction: number): DropJudgement {
  const measure = dropMeasure(facts, fraction);
  if (!measure) return { verdict: 'apply', rule: 'no-drop' };
  if (facts.touchedAgoMs !== undefined && facts.touchedAgoMs >= 0 && facts.touchedAgoMs <= cancellationWindowMs) {
    return { verdict: 'apply', rule: 'cancellation-after-trigger', ...measure };
  }
  return { verdict: 'hold', rule: 'drop-held', ...measure };
}

function dropMeasure(facts: DropFacts, fraction: number): DropMeasure | undefined {
  const { events, nights } = facts;
  // A valid but empty export is the drop that matters most, whatever the nights say.
  if (events.before > 0 && events.after === 0) return { measure: 'events', lost: events.before, of: events.before };
  // Events by count: one replaced by another is no loss.
  const lostEvents = events.before - events.after;
  const eventsDrop = events.before > 0 && lostEvents > 0 && lostEvents > fraction * events.before
    ? { measure: 'events' as const, lost: lostEvents, of: events.before } : undefined;
  if (!nights) return eventsDrop;
  if (nights.before === 0 || nights.lost === 0) return undefined;
  if (nights.lost === nights.before || nights.lost > fraction * nights.before) {
    return { measure: 'nights', lost: nights.lost, of: nights.before };
  }
  // Most events gone while a long far block keeps most nights (a partial export that kept only the
  // block): still a drop, as long as it lost nights at all (past events expiring lose none).
  return eventsDrop;
}
