// The undici adapter: the one place that builds connection pools and turns undici's errors
// into icalpush error codes. Every outbound request of icalpush goes through a pool made here.
import { Pool } from 'undici';
import { IcalpushError } from '../errors.ts';

/** Options for createUpstreamPool. */
export type UpstreamPoolOptions = {
  /** Origin of the upstream, e.g. `http://127.0.0.1:9000`. */
  origin: string;
  /** TCP (and TLS) connect timeout. */
  connectTimeoutMs: number;
  /** Longest wait for response headers, and longest pause between body chunks. */
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

/** Creates the pool for `origin`. */
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

const timeoutCodes = new Set([
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
]);
const abortCodes = new Set(['UND_ERR_ABORTED', 'ABORT_ERR']);

/** Wraps an undici or socket error as UPSTREAM_TIMEOUT, CLIENT_ABORTED or UPSTREAM_UNREACHABLE. */
export function toUpstreamError(err: unknown): IcalpushError {
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
