// The refresh action (SPEC "Configuration": `refresh`): the one call that makes the upstream re-import a
// listing now, its calendar import's "sync now". What it came to is a value, never a throw.
import type { Config } from '../config/schema.ts';
import type { OutboundClient } from '../http/clients.ts';

/** `ok`, `not-configured`, `timeout`, an error code, or `status N` for an answer outside 2xx. */
export type RefreshOutcome = string;

/** Calls the refresh action for a listing. */
export type Refresh = (listing: string) => Promise<RefreshOutcome>;

/** Creates the refresh call of `config.refresh` (none configured: every call is `not-configured`). */
export function createRefresh(refresh: Config['refresh'], client: OutboundClient, userAgent: string): Refresh {
  return async (listing) => {
    if (!refresh) return 'not-configured';
    const url = refresh.url.replaceAll('{listing}', encodeURIComponent(listing));
    const result = await client.request(url, {
      method: refresh.method,
      headers: { 'user-agent': `${userAgent} icalpush`, ...refresh.headers },
      deadlineMs: refresh.timeout,
      maxBodyBytes: 0,
    });
    if (result.kind === 'failed') return result.error.code === 'UPSTREAM_TIMEOUT' ? 'timeout' : result.error.code;
    return result.status >= 200 && result.status < 300 ? 'ok' : `status ${result.status}`;
  };
}
