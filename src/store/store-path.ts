// Whether the embedded store's file can be written, asked without creating anything: by
// `icalpush check` before a start, and by the sqlite adapter to say why SQLite could not open
// the file (SQLITE_CANTOPEN names no cause).
import { accessSync, constants, type Stats, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { systemErrorCode, systemErrorText } from '../util/system-error.ts';

/**
 * Why the store file at `path` cannot be opened for writing (`permission denied`,
 * `/srv/file.txt is not a directory`), or undefined when it can: the file must be writable, or,
 * when missing, its nearest existing ancestor a writable directory (SQLite creates the rest).
 */
export function storeFileProblem(path: string): string | undefined {
  const file = stat(path);
  if (!isMissing(file)) {
    if (typeof file === 'string') return file;
    if (file.isDirectory()) return 'it is a directory';
    const denied = accessProblem(path, constants.R_OK | constants.W_OK);
    if (denied !== undefined) return denied;
    // WAL mode creates `<file>-wal` and `<file>-shm` beside the file on every open.
    const dir = dirname(path);
    const dirDenied = accessProblem(dir, constants.W_OK | constants.X_OK);
    return dirDenied === undefined ? undefined : `${dirDenied} on ${dir}, where SQLite writes its journal`;
  }
  for (let dir = dirname(path); ; dir = dirname(dir)) {
    const found = stat(dir);
    if (isMissing(found)) {
      if (dirname(dir) === dir) return 'no existing directory on the path';
      continue;
    }
    if (typeof found === 'string') return `${found} on ${dir}`;
    if (!found.isDirectory()) return `${dir} is not a directory`;
    const denied = accessProblem(dir, constants.W_OK | constants.X_OK);
    return denied === undefined ? undefined : `${denied} on ${dir}`;
  }
}

const missing = Symbol('missing');

/** The stats of `path`, `missing` when it (or a directory above it) is absent, or why not readable. */
function stat(path: string): Stats | string | typeof missing {
  try {
    return statSync(path);
  } catch (err) {
    // ENOTDIR: a component is a regular file; walking up finds and names it.
    const code = systemErrorCode(err);
    return code === 'ENOENT' || code === 'ENOTDIR' ? missing : systemErrorText(err);
  }
}

function isMissing(value: Stats | string | typeof missing): value is typeof missing {
  return value === missing;
}

function accessProblem(path: string, mode: number): string | undefined {
  try {
    accessSync(path, mode);
    return undefined;
  } catch (err) {
    return systemErrorText(err);
  }
}
