// The only place that turns outcomes and errors into HTTP answers. Bodies are short and fixed:
// nothing from the request is ever echoed back.
import type { ServerResponse } from 'node:http';
import { errorCodes, type IcalpushError } from '../errors.ts';

/** Ends `res` with the status and short plain-text body of `err`; destroys it if headers went out. */
export function sendError(res: ServerResponse, err: IcalpushError): void {
  if (res.headersSent) {
    res.destroy(err);
    return;
  }
  const { status, text } = errorCodes[err.code];
  const body = `${text}\n`;
  res.writeHead(status, {
    'content-type': 'text/plain; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
  });
  res.end(body);
}

/** Ends `res` with a JSON body. */
export function sendJson(res: ServerResponse, status: number, value: unknown): void {
  const body = `${JSON.stringify(value)}\n`;
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
  });
  res.end(body);
}
