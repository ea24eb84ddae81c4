// Admin endpoints under /_icalpush/: liveness and readiness, open because orchestrators probe
// them without credentials, and metrics behind the admin guard (SPEC "Admin").
import type { IncomingMessage, ServerResponse } from 'node:http';
import { type Clock, systemClock, type Timer } from '../clock.ts';
import { IcalpushError } from '../errors.ts';
import { expositionContentType, renderExposition } from '../metrics/exposition.ts';
import type { Registry } from '../metrics/registry.ts';
import type { Store } from '../store/store.ts';
import type { ConsoleHandler } from '../console/console-handler.ts';
import { createAdminGuard } from './admin-guard.ts';
import { sendError, sendJson, sendText } from './respond.ts';

/** What the admin endpoints need to know about the running app. */
export type AdminDeps = {
  store: Store;
  /** What /_icalpush/metrics renders. */
  registry: Registry;
  /** What /_icalpush/status renders (JSON). */
  status(): Promise<unknown>;
  /** POST /_icalpush/listings/{id}/changed: an operator says the listing changed; undefined: unknown id. */
  changed?: (listing: string) => Promise<{ notified: string[] } | undefined>;
  /** POST /_icalpush/reload: re-read the config and its listings file (SPEC "Reload"). */
  reload?: () => Promise<{ ok: boolean }>;
  /** GET /_icalpush/listings/{id}: the listing, its peers and its decision log; undefined: unknown id. */
  listing?: (id: string) => Promise<unknown>;
  /** The operator console (/_icalpush/ and its pages), behind the same guard. */
  console?: ConsoleHandler;
  /** `admin.token`; without one the guarded endpoints answer loopback clients only. */
  token?: string | undefined;
  /** True once shutdown began: readiness fails so load balancers drain us. */
  isClosing(): boolean;
  /** Bound on the store round trip of readyz. */
  readyTimeoutMs?: number;
  /** Where the bounds' timers come from; the system clock by default. */
  clock?: Clock;
};

/** Handles one request under the admin prefix. */
export type AdminHandler = (
  req: IncomingMessage,
  res: ServerResponse,
  path: string,
) => Promise<void>;

/** A path segment percent-decoded; as it came when it does not decode (it then names nothing). */
export function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

/** Creates the admin handler. */
export function createAdminHandler(deps: AdminDeps): AdminHandler {
  const readyTimeoutMs = deps.readyTimeoutMs ?? 2_000;
  const clock = deps.clock ?? systemClock;
  function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
    let timer: Timer | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = clock.setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
    });
    return Promise.race([promise, timeout]).finally(() => clock.clearTimeout(timer));
  }
  const guard = createAdminGuard(deps.token);
  async function listingChanged(req: IncomingMessage, res: ServerResponse, listing: string): Promise<void> {
    if (req.method !== 'POST') {
      res.writeHead(405, { allow: 'POST', 'content-length': 0 });
      res.end();
      return;
    }
    // The body, if any, means nothing here; it is drained so the connection can be reused.
    req.resume();
    const done = await deps.changed?.(listing);
    if (!done) {
      sendError(res, new IcalpushError('ADMIN_NOT_FOUND', 'no such listing'));
      return;
    }
    sendJson(res, 202, { listing, notified: done.notified });
  }

  /** 200 with what the reload did; 422 with every problem when the new config is refused (the old one stays). */
  async function reload(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (req.method !== 'POST') {
      res.writeHead(405, { allow: 'POST', 'content-length': 0 });
      res.end();
      return;
    }
    req.resume();
    if (!deps.reload) {
      sendError(res, new IcalpushError('ADMIN_NOT_FOUND', 'no such admin endpoint'));
      return;
    }
    const outcome = await deps.reload();
    sendJson(res, outcome.ok ? 200 : 422, outcome);
  }

  async function listing(req: IncomingMessage, res: ServerResponse, id: string): Promise<void> {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-length': 0 });
      res.end();
      return;
    }
    let found: unknown;
    try {
      found = await withTimeout(deps.listing?.(id) ?? Promise.resolve(undefined), readyTimeoutMs);
    } catch (err) {
      sendError(res, new IcalpushError('STORE_UNAVAILABLE', 'listing not readable', { cause: err }));
      return;
    }
    if (found === undefined) {
      sendError(res, new IcalpushError('ADMIN_NOT_FOUND', 'no such listing'));
      return;
    }
    sendJson(res, 200, found);
  }

  return async (req, res, path) => {
    const isProbe = path === '/_icalpush/healthz' || path === '/_icalpush/readyz';
    // Guard before the 404, so an unauthorized client cannot map which endpoints exist.
    const refusal = isProbe ? undefined : guard(req);
    const isConsole = deps.console?.handles(path) === true;
    if (refusal !== undefined) {
      if (isConsole) deps.console?.refuse(req, res, refusal);
      else sendError(res, refusal);
      return;
    }
    if (isConsole) {
      try {
        await withTimeout(deps.console?.handle(req, res, path) ?? Promise.resolve(), readyTimeoutMs);
      } catch (err) {
        sendError(res, new IcalpushError('STORE_UNAVAILABLE', 'console not readable', { cause: err }));
      }
      return;
    }
    const changedMatch = /^\/_icalpush\/listings\/([^/]+)\/changed$/.exec(path);
    if (changedMatch) {
      await listingChanged(req, res, decodeSegment(changedMatch[1] ?? ''));
      return;
    }
    if (path === '/_icalpush/reload') {
      await reload(req, res);
      return;
    }
    const listingMatch = /^\/_icalpush\/listings\/([^/]+)$/.exec(path);
    if (listingMatch) {
      await listing(req, res, decodeSegment(listingMatch[1] ?? ''));
      return;
    }
    if (!isProbe && path !== '/_icalpush/metrics' && path !== '/_icalpush/status') {
      sendError(res, new IcalpushError('ADMIN_NOT_FOUND', 'no such admin endpoint'));
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-length': 0 });
      res.end();
      return;
    }
    if (path === '/_icalpush/metrics') {
      sendText(res, 200, expositionContentType, renderExposition(deps.registry));
      return;
    }
    if (path === '/_icalpush/status') {
      try {
        sendJson(res, 200, await withTimeout(deps.status(), readyTimeoutMs));
      } catch (err) {
        sendError(res, new IcalpushError('STORE_UNAVAILABLE', 'status not readable', { cause: err }));
      }
      return;
    }
    if (path === '/_icalpush/healthz') {
      sendJson(res, 200, { status: 'ok' });
      return;
    }
    if (deps.isClosing()) {
      sendJson(res, 503, { status: 'not ready', reason: 'shutting down' });
      return;
    }
    try {
      await withTimeout(deps.store.ping(), readyTimeoutMs);
      sendJson(res, 200, { status: 'ready', store: deps.store.kind });
    } catch {
      sendJson(res, 503, {
        status: 'not ready',
        reason: 'store unreachable',
        store: deps.store.kind,
      });
    }
  };
}
