// The transparent passthrough: requests stream to the upstream over the undici pool and answers
// stream back unchanged. WebSocket and other Upgrade requests go through http-proxy-3, kept here.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { createProxyServer } from 'http-proxy-3';
import type { Dispatcher } from 'undici';
import { hasCode, IcalpushError } from '../errors.ts';
import { forwardedRequestHeaders, forwardedResponseHeaders } from './forwarded-headers.ts';
import { sendError } from './respond.ts';
import { toUpstreamError, type UpstreamPool } from './clients.ts';

/** True when the request carries a body to stream (RFC 9112 §6.3). */
function hasBody(req: IncomingMessage): boolean {
  const length = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

/** What became of one passed-through request. */
export type PassthroughOutcome =
  | { ok: true; statusCode: number }
  | { ok: false; error: IcalpushError; statusCode?: number };

/** What a caller adds to one passed-through answer (OPTIONS and HEAD on feed paths). */
export type PassthroughDecoration = {
  /** Headers to set on the upstream's answer, given its status and headers. */
  headers?: (status: number, headers: Record<string, string | string[]>) => Record<string, string>;
  /** The upstream failed before answering: answer locally instead of the error (true when it did). */
  onFailure?: (res: ServerResponse, error: IcalpushError) => boolean;
};

/** The passthrough engine. */
export type Passthrough = {
  /** Streams `req` to the upstream and its answer to `res`; never throws, never rejects. */
  web(req: IncomingMessage, res: ServerResponse, decoration?: PassthroughDecoration): Promise<PassthroughOutcome>;
  /** Tunnels an Upgrade request (WebSocket) to the upstream; errors close the socket. */
  upgrade(
    req: IncomingMessage,
    socket: Duplex,
    head: Buffer,
    onError: (err: IcalpushError) => void,
  ): void;
};

/** Creates the passthrough to `upstream`. */
export function createPassthrough(upstream: UpstreamPool,
  isTrusted?: (address: string | undefined) => boolean): Passthrough {
  // http-proxy-3 is only used for Upgrade tunnels; plain requests take the faster undici path.
  const tunnel = createProxyServer({
    target: upstream.origin,
    ws: true,
    xfwd: true,
    proxyTimeout: upstream.timeoutMs,
  });
  // Errors are handled per call below; this listener only keeps a stray one from crashing us.
  tunnel.on('error', () => {});

  return {
    web(req, res, decoration) {
      return new Promise<PassthroughOutcome>((resolve) => {
        // A dispatch handler of our own rather than pool.stream(): no AbortSignal per request
        // (its EventTarget listeners cost more CPU than the rest of the proxy, measured).
        let controller: Dispatcher.DispatchController | undefined;
        let statusCode: number | undefined;
        let settled = false;
        const settle = (outcome: PassthroughOutcome) => {
          if (settled) return;
          settled = true;
          res.off('close', onClose);
          resolve(outcome);
        };
        const fail = (error: IcalpushError) => {
          const local = statusCode === undefined && !res.headersSent && !res.destroyed &&
            decoration?.onFailure?.(res, error) === true;
          if (local) {
            settle({ ok: true, statusCode: res.statusCode });
            return;
          }
          if (!res.destroyed) sendError(res, error);
          settle({ ok: false, error, ...(statusCode === undefined ? {} : { statusCode }) });
        };
        // The client went away before its answer was complete: stop the upstream work too.
        const onClose = () => {
          if (res.writableFinished) return;
          const error = new IcalpushError('CLIENT_ABORTED', 'client closed the request');
          if (controller && !controller.aborted) controller.abort(error);
          settle({ ok: false, error, ...(statusCode === undefined ? {} : { statusCode }) });
        };
        res.on('close', onClose);
        upstream.pool.dispatch(
          {
            path: req.url ?? '/',
            method: req.method ?? 'GET',
            headers: forwardedRequestHeaders(req, isTrusted),
            body: hasBody(req) ? req : null,
          },
          {
            onRequestStart(c) {
              controller = c;
              if (res.destroyed)
                c.abort(new IcalpushError('CLIENT_ABORTED', 'client closed the request'));
            },
            onResponseStart(_c, status, headers) {
              // 1xx answers (103 Early Hints) are not relayed; the final answer follows.
              if (status < 200) return;
              statusCode = status;
              const forwarded = forwardedResponseHeaders(headers);
              res.writeHead(status, { ...forwarded, ...decoration?.headers?.(status, forwarded) });
              // A small answer's headers, body and end usually arrive in this same tick: cork so
              // they leave in one write, and uncork next tick so a long body still streams.
              res.cork();
              process.nextTick(() => res.uncork());
            },
            onResponseData(c, chunk) {
              if (!res.write(chunk)) {
                c.pause();
                res.once('drain', () => c.resume());
              }
            },
            onResponseEnd() {
              res.end();
              settle({ ok: true, statusCode: statusCode ?? 0 });
            },
            onResponseError(_c, err) {
              if (settled) return;
              fail(hasCode(err, 'CLIENT_ABORTED') ? err : toUpstreamError(err));
            },
          },
        );
      });
    },
    upgrade(req, socket, head, onError) {
      tunnel.ws(req, socket, head, {}, (err) => {
        onError(toUpstreamError(err));
        socket.destroy();
      });
    },
  };
}
