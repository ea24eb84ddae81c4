// The undici adapter of iCal Hooks: one HEAD to a hook URL, connected to the address that was
// checked at registration (SPEC "iCal Hooks": the address checked is the address used).
import type { LookupAddress } from 'node:dns';
import { Agent } from 'undici';

/** What one hook HEAD came to (the `outcome` label). */
export type DeliveryOutcome = 'ok' | 'http_error' | 'network_error';

/** One HEAD to send. */
export type HookHead = {
  url: string;
  /** The address checked at registration; the connection goes here, never to a fresh lookup. */
  address: string;
  family: 4 | 6;
  userAgent: string;
  timeoutMs: number;
};

/** The result of sendHookHead; `status` when an answer came. */
export type DeliveryResult = { outcome: DeliveryOutcome; status?: number; errorCode?: string };

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;

/**
 * Sends one HEAD with no body and no redirect following (undici follows none unless told to):
 * a 3xx counts as `http_error`. A fresh Agent per HEAD pins the connection to the stored
 * address while Host and TLS SNI keep the URL's hostname; hooks are one-shot, so there is
 * no keep-alive to lose. Never throws.
 */
export async function sendHookHead(head: HookHead): Promise<DeliveryResult> {
  const { address, family } = head;
  const lookup = (_hostname: string, options: { all?: boolean }, callback: LookupCallback) => {
    // Node's happy-eyeballs connect asks for `all`; plain connect for one address.
    if (options.all === true) callback(null, [{ address, family }]);
    else callback(null, address, family);
  };
  const agent = new Agent({
    connect: { lookup, timeout: head.timeoutMs },
    headersTimeout: head.timeoutMs,
    bodyTimeout: head.timeoutMs,
    connections: 1,
    pipelining: 0,
  });
  try {
    const url = new URL(head.url);
    const response = await agent.request({
      origin: url.origin,
      path: `${url.pathname}${url.search}`,
      method: 'HEAD',
      headers: { 'user-agent': head.userAgent },
      signal: AbortSignal.timeout(head.timeoutMs),
    });
    await response.body.dump();
    const ok = response.statusCode >= 200 && response.statusCode < 300;
    return { outcome: ok ? 'ok' : 'http_error', status: response.statusCode };
  } catch (err) {
    const code = (err as { code?: unknown } | null)?.code;
    return { outcome: 'network_error', errorCode: typeof code === 'string' ? code : 'UNKNOWN' };
  } finally {
    await agent.destroy().catch(() => {});
  }
}
