// Which headers cross the proxy (RFC 9110 §7.6.1): hop-by-hop ones stay behind, the
// X-Forwarded-* trail is appended. Shared by the passthrough and the feed reads.
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';

/** Headers that describe one connection, not the message (RFC 9110 §7.6.1): never forwarded. */
const hopByHop = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  // Node answers `Expect: 100-continue` itself before the body is read; undici refuses it.
  'expect',
]);

/** Names listed in a Connection header are hop-by-hop for this message too. */
function connectionTokens(value: string | string[] | undefined): Set<string> | undefined {
  if (value === undefined) return undefined;
  const tokens = (Array.isArray(value) ? value.join(',') : value)
    .split(',')
    .map((t) => t.trim().toLowerCase())
    .filter((t) => t !== '' && t !== 'close' && t !== 'keep-alive');
  return tokens.length ? new Set(tokens) : undefined;
}

function appendForwarded(existing: string | string[] | undefined, value: string): string {
  if (existing === undefined || existing === '') return value;
  return `${Array.isArray(existing) ? existing.join(', ') : existing}, ${value}`;
}

/** The end-to-end headers of a message: hop-by-hop ones and those its Connection names removed. */
function endToEndHeaders(headers: IncomingHttpHeaders): Record<string, string | string[]> {
  const extra = connectionTokens(headers.connection);
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || hopByHop.has(name) || extra?.has(name)) continue;
    out[name] = value;
  }
  return out;
}

/** The request headers sent upstream: hop-by-hop removed, X-Forwarded-For/-Host/-Proto added. The
 * client's own X-Forwarded-* trail is kept (and appended to) only when `isTrusted` says the client is a
 * proxy of ours (`trustProxy`); anyone else's is dropped, so a client cannot tell the platform it came
 * through another host. */
export function forwardedRequestHeaders(req: IncomingMessage,
  isTrusted: (address: string | undefined) => boolean = () => true): Record<string, string | string[]> {
  const out = endToEndHeaders(req.headers);
  if (!isTrusted(req.socket.remoteAddress)) {
    for (const name of ['x-forwarded-for', 'x-forwarded-host', 'x-forwarded-proto', 'forwarded']) delete out[name];
    const { 'x-forwarded-for': _for, 'x-forwarded-host': _host, 'x-forwarded-proto': _proto, ...own } = req.headers;
    return withTrail(out, { ...own }, req);
  }
  return withTrail(out, req.headers, req);
}

function withTrail(out: Record<string, string | string[]>, headers: IncomingMessage['headers'],
  req: IncomingMessage): Record<string, string | string[]> {
  const proto = (req.socket as { encrypted?: boolean }).encrypted ? 'https' : 'http';
  out['x-forwarded-for'] = appendForwarded(
    headers['x-forwarded-for'],
    req.socket.remoteAddress ?? '',
  );
  out['x-forwarded-host'] = appendForwarded(
    headers['x-forwarded-host'],
    req.headers.host ?? '',
  );
  out['x-forwarded-proto'] = appendForwarded(headers['x-forwarded-proto'], proto);
  return out;
}

/** The response headers sent to the client: hop-by-hop removed, repeated headers kept. */
export function forwardedResponseHeaders(
  headers: IncomingHttpHeaders,
): Record<string, string | string[]> {
  return endToEndHeaders(headers);
}
