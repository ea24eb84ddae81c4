// Which replica reads a listing in a watch slot (SPEC "Several replicas": the watch reads each listing once
// per interval across the fleet, and a dead replica's share is taken over within two intervals). The
// listing's owner among the live replicas (rendezvous hashing) takes a lease on it for most of its interval
// (active or idle);
// a replica whose view of the fleet is behind finds the lease taken and skips. With a store of one process,
// every slot is this replica's.
import type { Replicas } from '../store/replicas.ts';
import type { Store } from '../store/store.ts';
import type { ListingPlan } from './plans.ts';

/** The store namespace of the watch's leases. */
export const watchLeaseNamespace = 'push_watch';

/** A lease: who holds it, for which period. */
type WatchLease = { replica: string; periodMs: number };

/** The watch's `mayRead` for this replica: `periodMs` is the listing's interval. */
export function createWatchClaim(store: Store,
  replicas: Replicas): (plan: ListingPlan, periodMs: number) => Promise<boolean> {
  if (!store.shared) return () => Promise.resolve(true);
  const leases = store.namespace(watchLeaseNamespace);
  return async (plan, periodMs) => {
    if (!replicas.owns(plan.id)) return false;
    // Short of a whole period, so the owner's next slot (timers fire a little late or early) finds it free.
    const leaseMs = Math.max(1, periodMs - Math.min(1_000, Math.floor(periodMs / 10)));
    const lease: WatchLease = { replica: replicas.id, periodMs };
    try {
      if (await leases.add(plan.id, lease, leaseMs)) return true;
      // This replica's own lease, taken for a longer period (an idle listing that has just become active): taken
      // again for the shorter one, not waited out. For the same period, it holds: one read per period.
      const held = await leases.get<WatchLease>(plan.id);
      if (held?.replica !== replicas.id || held.periodMs <= periodMs) return false;
      await leases.set(plan.id, lease, leaseMs);
      return true;
    } catch {
      // Redis unreachable: the owner reads anyway (the upstream must still be watched); its peers are
      // told once the outbox can be written.
      return true;
    }
  };
}
