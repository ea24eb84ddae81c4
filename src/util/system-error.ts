// Operator words for the system errors a startup or a check meets (listen, open, write), so a
// message says what went wrong once instead of quoting the syscall text beside the code.

const words: Record<string, string> = {
  EACCES: 'permission denied',
  EPERM: 'permission denied',
  EROFS: 'read-only file system',
  ENOSPC: 'no space left on the device',
  ENOENT: 'no such file or directory',
  ENOTDIR: 'a component of the path is not a directory',
  EISDIR: 'it is a directory',
  EADDRINUSE: 'address already in use',
  EADDRNOTAVAIL: 'address not available on this host',
  ENOTFOUND: 'host name not found',
  EAI_AGAIN: 'host name lookup failed',
};

/** The `code` of a Node system error (`EACCES`), if it has one. */
export function systemErrorCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null | undefined)?.code;
  return typeof code === 'string' ? code : undefined;
}

/**
 * What `err` means in a few words (`permission denied`, with `withCode`: `… (EACCES)`); the error's
 * own message, which already names its code, for others.
 */
export function systemErrorText(err: unknown, options: { withCode?: boolean } = {}): string {
  const code = systemErrorCode(err);
  const known = code === undefined ? undefined : words[code];
  if (known !== undefined) return options.withCode ? `${known} (${code})` : known;
  return err instanceof Error ? err.message : String(err);
}
