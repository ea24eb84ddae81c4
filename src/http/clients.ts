// The undici adapter: the one place that makes outbound HTTP clients (the upstream pool, the agent for
// peers, refresh calls and notifications, the pinned one-shot connections of iCal Hooks) and turns
// undici's errors into icalpush codes. Every request made here has a total deadline — connect, headers
// and the whole body — not only an idle one, and a byte cap on what it reads (SPEC "Guarantees").
import type { LookupAddress } from 'node:dns';
import { Agent, type Dispatcher, Pool } from 'undici';
import type { Clock } from '../clock.ts';
import { hasCode, IcalpushError } from '../errors.ts';
import { yieldToLoop } from '../util/yield.ts';

/** Options for createUpstreamPool. */
export type UpstreamPoolOptions = {
  /** Origin of the upstream, e.g. `http://127.0.0.1:9000`. */
  origin: string;
  /** TCP (and TLS) connect timeout. */
  connectTimeoutMs: number;
  /** Longest wait for response headers, and longest pause between body chunks (passthrough). */
  timeoutMs: number;
  /** Keep-alive connections kept open to the upstream; bounds upstream concurrency. */
  connections?: number;
};

/** A keep-alive connection pool to one origin. */
export type UpstreamPool = {
  readonly origin: string;
  readonly pool: Pool;
  readonly timeoutMs: number;
  /** Waits for in-flight requests, then closes the connections. */
  close(): Promise<void>;
  /** Aborts in-flight requests and closes at once. */
  destroy(): Promise<void>;
};

/** Creates the pool for `origin`: the passthrough streams through it, feed reads use it with a deadline. */
export function createUpstreamPool(options: UpstreamPoolOptions): UpstreamPool {
  const pool = new Pool(options.origin, {
    connections: options.connections ?? 128,
    pipelining: 1,
    connect: { timeout: options.connectTimeoutMs },
    headersTimeout: options.timeoutMs,
    bodyTimeout: options.timeoutMs,
    keepAliveTimeout: 4_000,
    keepAliveMaxTimeout: 60_000,
  });
  return {
    origin: options.origin,
    pool,
    timeoutMs: options.timeoutMs,
    close: () => pool.close(),
    destroy: () => pool.destroy(),
  };
}

/** One outbound request. */
export type OutboundRequest = {
  method: string;
  headers?: Record<string, string | string[]>;
  /** Total deadline: connect, headers and body together. */
  deadlineMs: number;
  /** Largest body read; 0 reads none (HEAD, or a body nobody needs) and drains it. */
  maxBodyBytes: number;
  /** Aborts the request (a client that went away, shutdown). */
  signal?: AbortSignal;
};

/** What an outbound request came to: an expected result, never a throw. */
export type OutboundResult =
  | { kind: 'answer'; status: number; headers: Record<string, string | string[] | undefined>; body: Buffer }
  | { kind: 'too-large'; status: number }
  | { kind: 'failed'; error: IcalpushError };

/** Makes outbound requests; `close()` ends every one still running. */
export type OutboundClient = {
  /** `target` is a path on the pool's origin (with `via`) or an absolute http(s) URL. */
  request(target: string, options: OutboundRequest & { via?: Dispatcher }): Promise<OutboundResult>;
  /** A HEAD to `url` over a fresh connection to `address`, never to a new lookup of its host. */
  headPinned(url: string, address: { address: string; family: 4 | 6 }, options: Omit<OutboundRequest, 'method' | 'maxBodyBytes'> & {
    headers?: Record<string, string>;
  }): Promise<OutboundResult>;
  /** Aborts every request under way and closes the shared agent. */
  close(): Promise<void>;
};

/** Options for createOutboundClient. */
export type OutboundClientOptions = {
  clock: Clock;
  /** TCP (and TLS) connect timeout, within the total deadline. */
  connectTimeoutMs: number;
  /** Keep-alive connections per origin of the shared agent. */
  connections?: number;
};

/** Creates the outbound client: a shared keep-alive agent for every absolute URL. */
export function createOutboundClient(options: OutboundClientOptions): OutboundClient {
  const { clock } = options;
  const agent = new Agent({ connect: { timeout: options.connectTimeoutMs }, connections: options.connections ?? 16 });
  // Every request under way hangs off this signal: close() aborts them all at once.
  const lifetime = new AbortController();

  async function run(target: string, request: OutboundRequest, dispatcher: Dispatcher): Promise<OutboundResult> {
    if (lifetime.signal.aborted) return { kind: 'failed', error: new IcalpushError('SHUTTING_DOWN', 'closing') };
    const controller = new AbortController();
    const deadline = new IcalpushError('UPSTREAM_TIMEOUT', `no complete answer within ${request.deadlineMs} ms`);
    const timer = clock.setTimeout(() => controller.abort(deadline), request.deadlineMs);
    const onAbort = (source: AbortSignal) => () => controller.abort(source.reason);
    const unlink = [lifetime.signal, request.signal].filter((s) => s !== undefined).map((source) => {
      const listener = onAbort(source);
      if (source.aborted) listener();
      else source.addEventListener('abort', listener, { once: true });
      return () => source.removeEventListener('abort', listener);
    });
    try {
      const absolute = !target.startsWith('/');
      const url = absolute ? new URL(target) : undefined;
      const res = await dispatcher.request({
        // A pool knows its origin; the agent is told it per request.
        ...(url ? { origin: url.origin } : {}),
        path: url ? `${url.pathname}${url.search}` : target,
        method: request.method as Dispatcher.HttpMethod,
        headers: request.headers ?? {},
        signal: controller.signal,
        // The total deadline is ours; undici's idle timeouts only need to be no shorter.
        headersTimeout: request.deadlineMs,
        bodyTimeout: request.deadlineMs,
      });
      if (request.maxBodyBytes === 0) {
        await res.body.dump({ limit: 65_536, signal: controller.signal }).catch(() => undefined);
        return { kind: 'answer', status: res.statusCode, headers: res.headers, body: Buffer.alloc(0) };
      }
      const body = await readCapped(res.body, declaredLength(res.headers), request.maxBodyBytes);
      if (body === undefined) return { kind: 'too-large', status: res.statusCode };
      return { kind: 'answer', status: res.statusCode, headers: res.headers, body };
    } catch (err) {
      const reason: unknown = controller.signal.aborted ? controller.signal.reason : err;
      return { kind: 'failed', error: hasCode(reason, 'UPSTREAM_TIMEOUT') || hasCode(reason, 'SHUTTING_DOWN')
        || hasCode(reason, 'CLIENT_ABORTED') ? reason : toUpstreamError(err) };
    } finally {
      clock.clearTimeout(timer);
      for (const remove of unlink) remove();
    }
  }

  return {
    request: (target, request) => run(target, request, request.via ?? agent),
    async headPinned(url, address, request) {
      const lookup = (_hostname: string, lookupOptions: { all?: boolean }, callback: LookupCallback) => {
        // Node's happy-eyeballs connect asks for `all`; plain connect for one address.
        if (lookupOptions.all === true) callback(null, [address]);
        else callback(null, address.address, address.family);
      };
      // A fresh Agent per HEAD pins the connection to the checked address while Host and TLS SNI keep
      // the URL's hostname; hooks are one-shot, so there is no keep-alive to lose.
      const connect = { lookup, timeout: options.connectTimeoutMs };
      const pinned = new Agent({ connect, connections: 1, pipelining: 0 });
      try {
        return await run(url, { ...request, method: 'HEAD', maxBodyBytes: 0 }, pinned);
      } finally {
        await pinned.destroy().catch(() => undefined);
      }
    },
    async close() {
      lifetime.abort(new IcalpushError('SHUTTING_DOWN', 'closing'));
      await agent.destroy().catch(() => undefined);
    },
  };
}

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;

const timeoutCodes = new Set([
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
]);
const abortCodes = new Set(['UND_ERR_ABORTED', 'ABORT_ERR']);

/** Wraps an undici or socket error as UPSTREAM_TIMEOUT, CLIENT_ABORTED or UPSTREAM_UNREACHABLE. */
export function toUpstreamError(err: unknown): IcalpushError {
  if (hasCode(err, 'UPSTREAM_TIMEOUT') || hasCode(err, 'CLIENT_ABORTED') || hasCode(err, 'SHUTTING_DOWN')) return err;
  const code = (err as { code?: string } | null)?.code ?? '';
  const name = (err as { name?: string } | null)?.name ?? '';
  if (timeoutCodes.has(code)) {
    return new IcalpushError('UPSTREAM_TIMEOUT', 'upstream did not answer in time', { cause: err });
  }
  if (abortCodes.has(code) || name === 'AbortError') {
    return new IcalpushError('CLIENT_ABORTED', 'request aborted', { cause: err });
  }
  if (
    code === 'UND_ERR_REQ_CONTENT_LENGTH_MISMATCH' ||
    code === 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH'
  ) {
    return new IcalpushError('UPSTREAM_PROTOCOL', 'body length did not match Content-Length', {
      cause: err,
    });
  }
  return new IcalpushError('UPSTREAM_UNREACHABLE', 'upstream unreachable', { cause: err });
}

/** Reads `body` to a Buffer, or destroys it and gives undefined once it is past `maxBytes`. A declared
 * length is read straight into one buffer; otherwise the chunks are joined a few MiB at a time, so a
 * 30 MB body never costs the event loop one long copy. */
export async function readCapped(
  body: AsyncIterable<Buffer> & { destroy(err?: Error): unknown; once(event: 'error', listener: () => void): unknown },
  declared: number | undefined,
  maxBytes: number,
): Promise<Buffer | undefined> {
  // Destroying the body aborts the undici request, which closes that connection instead of
  // leaving it busy draining a body nobody reads.
  // undici reports the abort as an 'error' on the body; with no reader left it would be unhandled.
  body.once('error', () => {});
  if (declared !== undefined && declared > maxBytes) {
    body.destroy();
    return undefined;
  }
  const into = declared !== undefined && declared > 0 ? bodyBuffer(declared) : undefined;
  const chunks: Buffer[] = [];
  let length = 0;
  for await (const chunk of body) {
    if (length + chunk.length > maxBytes || (into && length + chunk.length > into.length)) {
      body.destroy();
      // More than it declared: undici reports the mismatch; past the cap, it is too large.
      if (length + chunk.length > maxBytes) return undefined;
      throw new Error('body longer than its Content-Length');
    }
    if (into) chunk.copy(into, length);
    else chunks.push(chunk);
    length += chunk.length;
  }
  if (into) return length === into.length ? into : into.subarray(0, length);
  return joinInSlices(chunks, length);
}

// Bytes copied between two looks at the event loop when chunks are joined.
const joinSliceBytes = 4 * 1024 * 1024;
// Bodies from this size on live in shared memory: the analysis worker reads them where they are, no copy.
const sharedFromBytes = 64 * 1024;

/** A buffer for a body of `length` bytes: shared memory when large (feeds/analyzer.ts sends it as is). */
function bodyBuffer(length: number): Buffer {
  return length >= sharedFromBytes ? Buffer.from(new SharedArrayBuffer(length)) : Buffer.allocUnsafe(length);
}

async function joinInSlices(chunks: Buffer[], length: number): Promise<Buffer> {
  if (length <= sharedFromBytes) return Buffer.concat(chunks, length);
  const out = bodyBuffer(length);
  let at = 0;
  let sinceYield = 0;
  for (const chunk of chunks) {
    chunk.copy(out, at);
    at += chunk.length;
    sinceYield += chunk.length;
    if (sinceYield >= joinSliceBytes) {
      sinceYield = 0;
      await yieldToLoop();
    }
  }
  return out;
}

/** The Content-Length the upstream declared, when it is a plain number. */
export function declaredLength(headers: Record<string, string | string[] | undefined>): number | undefined {
  const value = headers['content-length'];
  return typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : undefined;
}

/** The first value of a header as text (repeated ones joined), or undefined. */
export function headerText(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value.join(', ') : value;
}
