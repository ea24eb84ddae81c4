// The one error type of icalpush and the one table that maps its codes to HTTP answers.
// Callers branch on `err.code`, never on `instanceof` (house style, after undici).

/** Every error code icalpush raises; codes are never reused for another meaning. */
export const errorCodes = {
  CONFIG_INVALID: { status: 500, text: 'invalid configuration' },
  CONFIG_UNREADABLE: { status: 500, text: 'configuration file unreadable' },
  LISTEN_UNAVAILABLE: { status: 500, text: 'cannot listen on the configured address' },
  REQUEST_TARGET_INVALID: { status: 400, text: 'request target must be a path (origin-form)' },
  UPSTREAM_UNREACHABLE: { status: 502, text: 'upstream unreachable' },
  UPSTREAM_TIMEOUT: { status: 504, text: 'upstream timed out' },
  UPSTREAM_PROTOCOL: { status: 502, text: 'upstream answered badly' },
  UPSTREAM_TOO_LARGE: { status: 502, text: 'upstream feed too large' },
  SYNC_TOKEN_INVALID: { status: 409, text: 'sync token not usable: discard your copy and sync again without a token' },
  CLIENT_ABORTED: { status: 499, text: 'client closed the request' },
  STORE_UNAVAILABLE: { status: 503, text: 'store unavailable' },
  ADMIN_NOT_FOUND: { status: 404, text: 'not found' },
  ADMIN_UNAUTHORIZED: { status: 401, text: 'unauthorized' },
  ADMIN_FORBIDDEN: { status: 403, text: 'forbidden' },
  SHUTTING_DOWN: { status: 503, text: 'shutting down' },
  INTERNAL_ERROR: { status: 500, text: 'internal error' },
} as const satisfies Record<string, { status: number; text: string }>;

export type ErrorCode = keyof typeof errorCodes;

/** An error with a stable `code`; `cause` keeps the library error it wraps. */
export class IcalpushError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'IcalpushError';
    this.code = code;
  }

  /** The HTTP status this error maps to when it ends a request. */
  get status(): number {
    return errorCodes[this.code].status;
  }
}

/** True when `err` is an IcalpushError carrying `code`. */
export function hasCode(err: unknown, code: ErrorCode): err is IcalpushError {
  return typeof err === 'object' && err !== null && (err as { code?: unknown }).code === code;
}

/**
 * An expected failure as a log line needs it: its code and one message that says what and where. No stack,
 * and no `cause` repeating what the message already says: the failure is expected (a store away, a port in
 * use), not a bug.
 */
export function briefError(err: unknown): { code: string; message: string } {
  const code = (err as { code?: unknown } | null)?.code;
  return {
    code: typeof code === 'string' ? code : err instanceof Error ? err.name : 'UNKNOWN',
    message: err instanceof Error ? err.message : String(err),
  };
}
