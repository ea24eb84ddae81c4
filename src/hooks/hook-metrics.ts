// iCal Hooks metrics: registrations, refusals by reason, fired hooks by final outcome, retries,
// deliveries deferred by a full queue and deliveries pending. Label values come from fixed lists
// here, never from request data.
import type { Registry } from '../metrics/registry.ts';
import type { DeliveryOutcome } from './hook-delivery.ts';

/**
 * Why a hook was refused (the `reason` label, and register()'s answer). All are refusals at
 * registration, except `private-address`, which is also how a stored hook whose address the
 * current config no longer allows is refused at delivery.
 */
export type HookRefusal =
  | 'disabled'
  | 'malformed'
  | 'scheme'
  | 'too-long'
  | 'userinfo'
  | 'unresolvable'
  | 'private-address'
  | 'feed-full'
  | 'store-error';

/** A delivery outcome, plus `store_error` for a fire or a forget that could not read or write its hooks. */
export type HookDeliveryOutcome = DeliveryOutcome | 'store_error';

const reasons = [
  'disabled', 'malformed', 'scheme', 'too-long', 'userinfo', 'unresolvable', 'private-address', 'feed-full',
  'store-error',
] as const satisfies readonly HookRefusal[];
const outcomes = ['ok', 'http_error', 'network_error', 'store_error'] as const satisfies readonly HookDeliveryOutcome[];

/** Records what the hooks module did. */
export type HookMetrics = {
  registered(): void;
  refused(reason: HookRefusal): void;
  /** A fired hook's final outcome (after its retries), or a store failure. */
  delivered(outcome: HookDeliveryOutcome): void;
  /** A HEAD that failed on the network and will be sent again. */
  retried(): void;
  /** A due hook left in the store for later because the delivery queue was full. */
  deferred(): void;
};

/** Registers the hook metrics on `registry`; `pending` samples the deliveries held (queued, retrying, in flight). */
export function createHookMetrics(registry: Registry, pending: () => number): HookMetrics {
  const registrations = registry.counter(
    'icalpush_hook_registrations_total',
    'X-ICALHOOKS-URL subscriptions stored or refreshed.',
  );
  const refusals = registry.counter(
    'icalpush_hook_refusals_total',
    'X-ICALHOOKS-URL subscriptions refused, by reason (private-address also counts hooks refused at delivery).',
    ['reason'],
  );
  const deliveries = registry.counter(
    'icalpush_hook_deliveries_total',
    'Fired iCal Hooks by final outcome: ok and http_error (the HEAD was answered), network_error (no answer '
      + 'after every attempt), store_error (a fire or a forget that could not read or write its hooks).',
    ['outcome'],
  );
  const retries = registry.counter(
    'icalpush_hook_delivery_retries_total',
    'iCal Hooks HEADs that failed on the network and were scheduled again.',
  );
  const deferrals = registry.counter(
    'icalpush_hook_deferred_deliveries_total',
    'Due iCal Hooks left in the store for later because the delivery queue was full.',
  );
  registry.gauge(
    'icalpush_hook_pending_deliveries',
    'Due iCal Hooks held for delivery: queued, waiting for a retry or in flight.',
    [],
    (gauge) => gauge.labels().set(pending()),
  );
  const registrationSeries = registrations.labels();
  const retrySeries = retries.labels();
  const deferralSeries = deferrals.labels();
  const refusalSeries = new Map(reasons.map((r) => [r, refusals.labels(r)]));
  const deliverySeries = new Map(outcomes.map((o) => [o, deliveries.labels(o)]));
  return {
    registered: () => registrationSeries.inc(),
    refused: (reason) => refusalSeries.get(reason)?.inc(),
    delivered: (outcome) => deliverySeries.get(outcome)?.inc(),
    retried: () => retrySeries.inc(),
    deferred: () => deferralSeries.inc(),
  };
}
