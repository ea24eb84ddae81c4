// iCal Hooks metrics: registrations, refusals by reason, HEAD deliveries by outcome.
// Label values come from fixed lists here, never from request data.
import type { Registry } from '../metrics/registry.ts';
import type { DeliveryOutcome } from './hook-delivery.ts';

/** Why a registration was refused (the `reason` label, and register()'s answer). */
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

/** A delivery outcome, plus `store_error` for a fire whose hooks could not be read or dropped. */
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
  delivered(outcome: HookDeliveryOutcome): void;
};

/** Registers the hook metrics on `registry`. */
export function createHookMetrics(registry: Registry): HookMetrics {
  const registrations = registry.counter(
    'icalpush_hook_registrations_total',
    'X-ICALHOOKS-URL subscriptions stored or refreshed.',
  );
  const refusals = registry.counter(
    'icalpush_hook_refusals_total',
    'X-ICALHOOKS-URL subscriptions refused, by reason.',
    ['reason'],
  );
  const deliveries = registry.counter(
    'icalpush_hook_deliveries_total',
    'iCal Hooks HEAD notifications, by outcome (store_error: a fire that could not read or drop its hooks).',
    ['outcome'],
  );
  const registrationSeries = registrations.labels();
  const refusalSeries = new Map(reasons.map((r) => [r, refusals.labels(r)]));
  const deliverySeries = new Map(outcomes.map((o) => [o, deliveries.labels(o)]));
  return {
    registered: () => registrationSeries.inc(),
    refused: (reason) => refusalSeries.get(reason)?.inc(),
    delivered: (outcome) => deliverySeries.get(outcome)?.inc(),
  };
}
