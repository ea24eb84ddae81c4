// The operator console's routes under /_icalpush/ (SPEC "Admin"): the overview at /_icalpush/ itself, the
// listings table and each listing's page, their stylesheet and script, and the overview as JSON for
// `icalpush status`. The admin guard has let the request in already; a refused browser gets a login prompt
// (console-auth.ts). Pages are never cached and may not be framed, and their policy allows nothing but the
// sidecar's own stylesheet and script.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { IcalpushError } from '../errors.ts';
import { decodeSegment } from '../http/admin.ts';
import { consoleCss, consoleJs } from './assets.ts';
import type { ConsoleModel } from './console-model.ts';
import type { MinuteRecorder } from './minute-series.ts';
import { assetsPath, consoleBase, listingPage, listingsPage, listingsPath, messagePage, overviewPage } from './pages.ts';

/** What the console needs. */
export type ConsoleOptions = { model: ConsoleModel; recorder: MinuteRecorder; now(): number };

/** Answers a console path; false when `path` is none of the console's. */
export type ConsoleHandler = {
  handles(path: string): boolean;
  handle(req: IncomingMessage, res: ServerResponse, path: string): Promise<void>;
  /** The answer to a request the admin guard refused: a 401 prompts a browser for the token (as password). */
  refuse(req: IncomingMessage, res: ServerResponse, refusal: IcalpushError): void;
};

/** The overview as JSON (what `icalpush status` reads). */
export const overviewJsonPath = '/_icalpush/overview';

const pageHeaders = {
  'content-type': 'text/html; charset=utf-8',
  'cache-control': 'no-store',
  'content-security-policy': 'default-src \'none\'; style-src \'self\'; script-src \'self\'; img-src \'self\'; '
    + 'base-uri \'none\'; form-action \'self\'; frame-ancestors \'none\'',
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
};

const assets: Record<string, { type: string; body: string }> = {
  'console.css': { type: 'text/css; charset=utf-8', body: consoleCss },
  'console.js': { type: 'text/javascript; charset=utf-8', body: consoleJs },
};

function send(req: IncomingMessage, res: ServerResponse, status: number, headers: Record<string, string | string[]>,
  body: string): void {
  res.writeHead(status, { ...headers, 'content-length': Buffer.byteLength(body) });
  res.end(req.method === 'HEAD' ? undefined : body);
}

/** Creates the console's handler. */
export function createConsoleHandler(options: ConsoleOptions): ConsoleHandler {
  const { model, recorder } = options;
  const page = (req: IncomingMessage, res: ServerResponse, status: number, body: string) =>
    send(req, res, status, pageHeaders, body);
  return {
    handles: (path) => path === consoleBase || path === '/_icalpush' || path === overviewJsonPath
      || path === listingsPath || path.startsWith(`${listingsPath}/`) || path.startsWith(assetsPath),
    async handle(req, res, path) {
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405, { allow: 'GET, HEAD', 'content-length': 0 });
        res.end();
        return;
      }
      if (path.startsWith(assetsPath)) {
        const asset = assets[path.slice(assetsPath.length)];
        if (!asset) {
          page(req, res, 404, messagePage('Not found', 'No such file.'));
          return;
        }
        send(req, res, 200, { 'content-type': asset.type, 'cache-control': 'max-age=300', 'x-content-type-options': 'nosniff' },
          asset.body);
        return;
      }
      if (path === overviewJsonPath) {
        const body = `${JSON.stringify(await model.overview())}\n`;
        send(req, res, 200, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' }, body);
        return;
      }
      if (path === '/_icalpush') {
        // The pages' links are absolute, but a bookmark of the bare prefix still lands on the console.
        res.writeHead(308, { location: consoleBase, 'content-length': 0 });
        res.end();
        return;
      }
      if (path === consoleBase) {
        const [overview, series] = [await model.overview(), recorder.series()];
        page(req, res, 200, overviewPage(overview, series));
        return;
      }
      if (path === listingsPath) {
        const query = new URL(req.url ?? '/', 'http://console').searchParams;
        const listings = await model.listings(query.get('q') ?? '', Number(query.get('page') ?? '1'));
        page(req, res, 200, listingsPage(listings, options.now()));
        return;
      }
      const id = decodeSegment(path.slice(listingsPath.length + 1));
      const detail = id === '' || id.includes('/') ? undefined : await model.listing(id);
      if (!detail) {
        page(req, res, 404, messagePage('No such listing', 'That listing is not in the connection map.'));
        return;
      }
      page(req, res, 200, listingPage(detail, options.now()));
    },
    refuse(req, res, refusal) {
      const status = refusal.code === 'ADMIN_UNAUTHORIZED' ? 401 : 403;
      // Two header lines: a browser reads a Basic challenge only from a line of its own.
      const headers: Record<string, string | string[]> = status === 401
        ? { ...pageHeaders, 'www-authenticate': ['Basic realm="icalpush console", charset="UTF-8"', 'Bearer'] }
        : pageHeaders;
      send(req, res, status, headers, messagePage(status === 401 ? 'Sign in' : 'Forbidden', status === 401
        ? 'The console needs the admin token: give it as the password (any user name), or as a bearer token.'
        : 'The console answers loopback clients only when no admin token is set.'));
    },
  };
}
