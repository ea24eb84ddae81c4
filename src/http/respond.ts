// The only place that turns outcomes and errors into HTTP answers. Bodies are short and fixed:
// nothing from the request is ever echoed back.
import type { ServerResponse } from 'node:http';
import { type ErrorCode, errorCodes, type IcalpushError } from '../errors.ts';

// RFC 6750 §3: a 401 for a bearer-protected resource carries the challenge.
const challenges: Partial<Record<ErrorCode, Record<string, string>>> = {
  ADMIN_UNAUTHORIZED: { 'www-authenticate': 'Bearer' },
};

/**
 * Ends `res` with the status and short plain-text body of `err`; destroys it if headers went out.
 * `headers` adds answer headers that hold whatever the error (Vary, Link on feed paths).
 */
export function sendError(res: ServerResponse, err: IcalpushError, headers: Record<string, string> = {}): void {
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
    ...headers,
    ...challenges[err.code],
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

/** Ends `res` with a text body of the given Content-Type (HEAD gets the headers only). */
export function sendText(res: ServerResponse, status: number, contentType: string, body: string): void {
  res.writeHead(status, {
    'content-type': contentType,
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
  });
  res.end(body);
}
