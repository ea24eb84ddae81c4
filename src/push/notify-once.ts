// One iPP notification attempt (iPP §3.1): a body-less HEAD to the peer's calendar URL, and what it came
// to as a value: delivered, refused for good (4xx), or to retry (the network, a timeout, 408, 429, 5xx,
// with the peer's Retry-After when it sent one). The notifier decides what to do with it.
import type { IcalpushError } from '../errors.ts';
import type { OutboundClient } from '../http/clients.ts';

/** What a HEAD came to. */
export type Attempt =
  | { kind: 'delivered'; status: number }
  | { kind: 'refused'; status: number }
  | { kind: 'retry'; error: string; cause?: string; retryAfterMs?: number };

/** Sends one HEAD to `url` with its total deadline. Never rejects. */
export async function notifyOnce(client: OutboundClient, url: string,
  options: { userAgent: string; timeoutMs: number; now: () => number }): Promise<Attempt> {
  const result = await client.request(url, {
    method: 'HEAD',
    headers: { 'user-agent': options.userAgent },
    deadlineMs: options.timeoutMs,
    maxBodyBytes: 0,
  });
  if (result.kind === 'failed') {
    const { error } = result;
    const cause = causeCode(error);
    return {
      kind: 'retry',
      error: error.code === 'UPSTREAM_TIMEOUT' ? 'timeout' : error.code,
      ...(cause === undefined ? {} : { cause }),
    };
  }
  const { status } = result;
  if (status >= 500 || status === 408 || status === 429) {
    const retryAfterMs = result.kind === 'answer' && (status === 429 || status === 503)
      ? parseRetryAfter(result.headers['retry-after'], options.now())
      : undefined;
    return { kind: 'retry', error: `status ${status}`, ...(retryAfterMs === undefined ? {} : { retryAfterMs }) };
  }
  if (status >= 400) return { kind: 'refused', status };
  return { kind: 'delivered', status };
}

/** `Retry-After` as milliseconds: delta-seconds or an HTTP-date (RFC 9110 §10.2.3). */
export function parseRetryAfter(value: string | string[] | undefined, nowMs: number): number | undefined {
  const raw = Array.isArray(value) ? value[0] : value;
  if (raw === undefined) return undefined;
  const text = raw.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const at = Date.parse(text);
  return Number.isNaN(at) ? undefined : Math.max(0, at - nowMs);
}

/** The code of what an IcalpushError wraps (`ECONNREFUSED`, `ENOTFOUND`, …), for the log line. */
function causeCode(err: IcalpushError): string | undefined {
  const code = (err.cause as { code?: unknown } | null | undefined)?.code;
  return typeof code === 'string' && code !== '' ? code : undefined;
}
