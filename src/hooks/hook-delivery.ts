// What one iCal Hooks HEAD came to, read from the outbound client's result: an answer of any status
// means the HEAD was sent (the subscriber was told); only a failure on the way is worth a retry.
import type { OutboundResult } from '../http/clients.ts';

/** What one hook HEAD came to (the `outcome` label). */
export type DeliveryOutcome = 'ok' | 'http_error' | 'network_error';

/** The reading of one HEAD's result; `status` when an answer came, `errorCode` when none did. */
export type DeliveryResult = { outcome: DeliveryOutcome; status?: number; errorCode?: string; cause?: string };

/**
 * A 2xx is `ok`; any other status (3xx included: redirects are never followed) is `http_error`;
 * no answer (refused, reset, timed out) is `network_error`, with the icalpush code and the
 * socket's code when there is one.
 */
export function deliveryResult(result: OutboundResult): DeliveryResult {
  if (result.kind === 'failed') {
    const cause = (result.error.cause as { code?: unknown } | undefined)?.code;
    return {
      outcome: 'network_error',
      errorCode: result.error.code,
      ...(typeof cause === 'string' ? { cause } : {}),
    };
  }
  const ok = result.status >= 200 && result.status < 300;
  return { outcome: ok ? 'ok' : 'http_error', status: result.status };
}
