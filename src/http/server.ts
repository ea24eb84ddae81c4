// The HTTP server's lifecycle: one log line per request, in-flight accounting, and a graceful,
// bounded drain on shutdown (stop accepting, let in-flight requests finish, then cut the rest).
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { IcalpushError } from '../errors.ts';
import type { Logger } from '../log.ts';
import { systemErrorText } from '../util/system-error.ts';

/** A running HTTP server with a graceful drain. */
export type HttpServer = {
  readonly server: Server;
  /** True once drain() began. */
  isClosing(): boolean;
  /** Requests received and not yet answered. */
  inflight(): number;
  /**
   * Binds `host:port` (port 0: any free port) and resolves with the bound address; rejects with
   * LISTEN_UNAVAILABLE saying where and why (`cannot listen on 127.0.0.1:8080: address already in use`).
   */
  listen(host: string, port: number): Promise<{ host: string; port: number }>;
  /**
   * Stops accepting, waits up to `timeoutMs` for in-flight requests, then closes every
   * remaining connection (idle keep-alive sockets at once, upgraded tunnels at the end).
   */
  drain(timeoutMs: number): Promise<{ unfinished: number }>;
};

/** Options for createHttpServer. */
export type HttpServerOptions = {
  logger: Logger;
  onRequest(req: IncomingMessage, res: ServerResponse): Promise<void>;
  onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void;
};

/** Creates the server; nothing listens until listen(). */
export function createHttpServer(options: HttpServerOptions): HttpServer {
  let closing = false;
  let inflight = 0;
  let idleWaiter: (() => void) | undefined;
  const tunnels = new Set<Duplex>();
  const server = createServer({ keepAliveTimeout: 5_000 }, (req, res) => {
    inflight += 1;
    if (closing) res.setHeader('connection', 'close');
    res.once('close', () => {
      inflight -= 1;
      if (closing) {
        server.closeIdleConnections();
        if (inflight === 0) idleWaiter?.();
      }
    });
    options.onRequest(req, res).catch((err: unknown) => {
      options.logger.error({ err }, 'request handler failed');
      if (!res.headersSent) {
        res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' });
        res.end('internal error\n');
      } else {
        res.destroy();
      }
    });
  });
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    tunnels.add(socket);
    socket.once('close', () => tunnels.delete(socket));
    options.onUpgrade(req, socket, head);
  });
  // A malformed request line or headers: answer 400 and drop the socket, never crash.
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
    options.logger.debug({ err: { code: err.code, message: err.message } }, 'client error');
    if (socket.writable && !socket.destroyed) {
      socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
    } else {
      socket.destroy();
    }
  });

  return {
    server,
    isClosing: () => closing,
    inflight: () => inflight,
    listen(host, port) {
      return new Promise((resolve, reject) => {
        const onError = (err: Error) => reject(listenError(host, port, err));
        server.once('error', onError);
        server.listen(port, host, () => {
          server.off('error', onError);
          const address = server.address();
          if (address === null || typeof address === 'string') {
            reject(new Error('server has no TCP address'));
            return;
          }
          resolve({ host: address.address, port: address.port });
        });
      });
    },
    async drain(timeoutMs) {
      closing = true;
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      if (inflight > 0) {
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([
          new Promise<void>((resolve) => {
            idleWaiter = resolve;
          }),
          new Promise<void>((resolve) => {
            timer = setTimeout(resolve, timeoutMs);
          }),
        ]);
        clearTimeout(timer);
      }
      const unfinished = inflight;
      server.closeAllConnections();
      for (const socket of tunnels) socket.destroy();
      await closed;
      return { unfinished };
    },
  };
}

function listenError(host: string, port: number, err: Error): IcalpushError {
  const where = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
  return new IcalpushError('LISTEN_UNAVAILABLE', `cannot listen on ${where}: ${systemErrorText(err, { withCode: true })}`,
    { cause: err });
}
