// Real servers on 127.0.0.1:0 for tests, closed by the test's own teardown.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { TestContext } from 'node:test';
import { freePort } from '../../src/demo/mesh.ts';

/** A plain node:http server standing in for an upstream or a peer. */
export type FakeServer = { server: Server; url: string; port: number };

/** Starts `handler` on 127.0.0.1 (`port` 0, any free one, by default) and registers its teardown on `t`. */
export async function startServer(
  t: TestContext,
  handler: (req: IncomingMessage, res: ServerResponse) => void,
  port = 0,
): Promise<FakeServer> {
  const server = createServer(handler);
  // Upgraded sockets leave the HTTP server's bookkeeping; track every socket to close them all.
  const sockets = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  t.after(() => {
    for (const socket of sockets) socket.destroy();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no address');
  return { server, url: `http://127.0.0.1:${address.port}`, port: address.port };
}

/** A port on 127.0.0.1 that nothing listens on (it was bound and released). */
export const closedPort = freePort;

/** Reads a request body to a Buffer. */
export async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}
