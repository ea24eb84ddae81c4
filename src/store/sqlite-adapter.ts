// The durable embedded store: a keyv storage adapter over Node's built-in `node:sqlite`, so no
// native addon is compiled or downloaded at install. One file, one connection, one adapter
// object per keyv namespace (keyv writes its namespace onto the adapter it is given).
import { EventEmitter } from 'node:events';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import { type Clock, systemClock } from '../clock.ts';
import { IcalpushError } from '../errors.ts';
import { systemErrorText } from '../util/system-error.ts';
import { storeFileProblem } from './store-path.ts';

/** How the sqlite adapter is opened; every field has a production default. */
export type SqliteAdapterOptions = {
  /** Decides when a row's `expires` has passed, for the sweep. */
  clock?: Clock;
  /**
   * `NORMAL` (default): in WAL mode a commit survives the process being killed, but the last
   * commits can be lost (never corrupted) on power loss or an OS crash, because the WAL is only
   * fsynced at checkpoints. `FULL` fsyncs the WAL on every commit and survives those too.
   */
  synchronous?: 'NORMAL' | 'FULL';
  /**
   * How long a statement waits for another process's write lock before failing. node:sqlite is
   * synchronous, so the wait blocks the event loop: keep it short.
   */
  busyTimeoutMs?: number;
  /** Pause between sweeps of expired rows. */
  sweepIntervalMs?: number;
  /** Most expired rows one sweep deletes, so a sweep never blocks the event loop for long. */
  sweepBatchSize?: number;
};

/** One SQLite file opened for keyv. */
export type SqliteAdapter = {
  /** The file this adapter writes. */
  readonly path: string;
  /** A keyv storage adapter over this file for one Keyv instance, which sets its `namespace`. */
  namespaceAdapter(): SqliteNamespaceAdapter;
  /** Deletes at most `limit` expired rows now; the number deleted. */
  sweepExpired(limit?: number): number;
  /** Stops the sweep and closes the connection (the last close checkpoints the WAL); idempotent. */
  close(): void;
};

// Rows per page of `iterator()`: each page is one finished query, so no read transaction stays
// open across an `await` (an open reader would keep the WAL from being checkpointed).
const pageSize = 64;
// Sweeps again this soon when a batch came back full, so a backlog drains in bounded steps.
const backlogDelayMs = 10;

type Statements = {
  get: StatementSync;
  set: StatementSync;
  delete: StatementSync;
  clearRange: StatementSync;
  firstPage: StatementSync;
  nextPage: StatementSync;
  sweep: StatementSync;
};

/** A keyv storage adapter over one namespace of a SqliteAdapter's file. */
export class SqliteNamespaceAdapter extends EventEmitter {
  /** Read by keyv: `dialect: 'sqlite'` is what makes keyv build an iterator over this adapter. */
  readonly opts: { dialect: 'sqlite'; url: string };
  /** Written by keyv with the namespace of the Keyv instance that owns this adapter. */
  namespace?: string;
  readonly #statements: Statements;
  readonly #clock: Clock;

  constructor(path: string, statements: Statements, clock: Clock) {
    super();
    this.opts = { dialect: 'sqlite', url: `sqlite://${path}` };
    this.#statements = statements;
    this.#clock = clock;
  }

  /** The serialized value under `key`; keyv decides whether it has expired. */
  async get(key: string): Promise<string | undefined> {
    const row = this.#statements.get.get(key);
    return row === undefined ? undefined : String(row.value);
  }

  /** Upserts `key`; `ttl` (ms) also lands in the `expires` column, for the sweep. */
  async set(key: string, value: string, ttl?: number): Promise<void> {
    const expires = typeof ttl === 'number' ? this.#clock.now() + ttl : null;
    this.#statements.set.run(key, value, expires);
  }

  /** Deletes `key`; true when a row was there. */
  async delete(key: string): Promise<boolean> {
    return Number(this.#statements.delete.run(key).changes) > 0;
  }

  /** Deletes every row of this adapter's namespace. */
  async clear(): Promise<void> {
    const [low, high] = prefixRange(this.namespace);
    this.#statements.clearRange.run(low, high);
  }

  /** Every `[key, serialized value]` of `namespace`, page by page, in key order. */
  async* iterator(namespace = this.namespace): AsyncGenerator<[string, string], void> {
    const [low, high] = prefixRange(namespace);
    let rows = this.#statements.firstPage.all(low, high, pageSize);
    while (rows.length > 0) {
      for (const row of rows) yield [String(row.key), String(row.value)];
      if (rows.length < pageSize) return;
      rows = this.#statements.nextPage.all(String(rows.at(-1)?.key), high, pageSize);
    }
  }
}

/**
 * Opens (creating it and its directory when missing) the SQLite file at `path`; a file that is
 * not a database, or a place that cannot be written, throws STORE_UNAVAILABLE naming the path.
 */
export function openSqliteAdapter(path: string, options: SqliteAdapterOptions = {}): SqliteAdapter {
  const {
    clock = systemClock,
    synchronous = 'NORMAL',
    busyTimeoutMs = 1_000,
    sweepIntervalMs = 60_000,
    sweepBatchSize = 1_000,
  } = options;
  // Both end up in PRAGMA text, which takes no bound parameters.
  if (synchronous !== 'NORMAL' && synchronous !== 'FULL') {
    throw new RangeError(`synchronous must be NORMAL or FULL, got ${String(synchronous)}`);
  }
  if (!Number.isSafeInteger(busyTimeoutMs) || busyTimeoutMs < 0) {
    throw new RangeError(`busyTimeoutMs must be a non-negative integer, got ${busyTimeoutMs}`);
  }
  try {
    mkdirSync(dirname(path), { recursive: true });
  } catch (err) {
    // A recursive mkdir meeting a regular file says EEXIST (or ENOTDIR) without naming the file.
    const code = (err as { code?: unknown }).code;
    if (code === 'EEXIST' || code === 'ENOTDIR') {
      const problem = storeFileProblem(path) ?? 'a component of the path is not a directory';
      throw new IcalpushError('STORE_UNAVAILABLE', `cannot create the directory of store file ${path}: ${problem}`,
        { cause: err });
    }
    throw unavailable(`cannot create the directory of store file ${path}`, err);
  }
  let db: DatabaseSync | undefined;
  let statements: Statements;
  try {
    db = new DatabaseSync(path);
    // Before anything else, so that even switching the journal waits out another process's lock.
    db.exec(`PRAGMA busy_timeout = ${busyTimeoutMs}`);
    const journal = db.prepare('PRAGMA journal_mode = WAL').get();
    if (String(journal?.journal_mode).toLowerCase() !== 'wal') {
      // WAL needs shared memory, which network file systems do not offer reliably.
      throw new Error(`WAL journal unavailable (got ${String(journal?.journal_mode)})`);
    }
    db.exec(`PRAGMA synchronous = ${synchronous}`);
    db.exec(`
      CREATE TABLE IF NOT EXISTS keyv (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL,
        expires INTEGER NULL
      );
      CREATE INDEX IF NOT EXISTS keyv_expires ON keyv (expires) WHERE expires IS NOT NULL;
    `);
    statements = prepare(db);
  } catch (err) {
    db?.close();
    // SQLite's own text for SQLITE_CANTOPEN (14) names neither the path nor a likely cause.
    if ((err as { errcode?: unknown }).errcode === 14) {
      const problem = storeFileProblem(path) ?? 'unable to open it (is it a directory, or in a directory this process cannot write?)';
      throw new IcalpushError('STORE_UNAVAILABLE', `cannot open store file ${path}: ${problem}`, { cause: err });
    }
    throw unavailable(`cannot open store file ${path}`, err);
  }
  const connection = db;

  let closed = false;
  const sweepExpired = (limit = sweepBatchSize): number =>
    Number(statements.sweep.run(clock.now(), limit).changes);
  let timer: NodeJS.Timeout | undefined;
  const schedule = (delayMs: number) => {
    timer = setTimeout(() => {
      let deleted = 0;
      try {
        deleted = sweepExpired();
      } catch {
        // A failed sweep (a lock held past busy_timeout) is retried next time; reads and writes
        // report their own failures, and keyv already hides expired rows from them.
      }
      if (!closed) schedule(deleted === sweepBatchSize ? backlogDelayMs : sweepIntervalMs);
    }, delayMs);
    timer.unref();
  };
  schedule(sweepIntervalMs);

  return {
    path,
    namespaceAdapter: () => new SqliteNamespaceAdapter(path, statements, clock),
    sweepExpired,
    close() {
      if (closed) return;
      closed = true;
      clearTimeout(timer);
      connection.close();
    },
  };
}

function prepare(db: DatabaseSync): Statements {
  return {
    get: db.prepare('SELECT value FROM keyv WHERE key = ?'),
    set: db.prepare(
      `INSERT INTO keyv (key, value, expires) VALUES (?, ?, ?)
       ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires = excluded.expires`,
    ),
    delete: db.prepare('DELETE FROM keyv WHERE key = ?'),
    clearRange: db.prepare('DELETE FROM keyv WHERE key >= ? AND key < ?'),
    firstPage: db.prepare(
      'SELECT key, value FROM keyv WHERE key >= ? AND key < ? ORDER BY key LIMIT ?',
    ),
    nextPage: db.prepare(
      'SELECT key, value FROM keyv WHERE key > ? AND key < ? ORDER BY key LIMIT ?',
    ),
    // `expires < now`, not `<=`: keyv still serves an entry at exactly its expiry instant.
    sweep: db.prepare(
      `DELETE FROM keyv WHERE rowid IN (
         SELECT rowid FROM keyv WHERE expires < ? ORDER BY expires LIMIT ?)`,
    ),
  };
}

// Keys of `namespace` are `${namespace}:…`; with SQLite's BINARY collation (bytewise) they are
// exactly the keys in [`${namespace}:`, `${namespace};`), ';' being the byte after ':' (namespace
// names hold no ':'). A range on the primary key uses its index, and unlike LIKE needs no escaping
// of caller-chosen text. Without a namespace there is no range: keyv-store always sets one.
function prefixRange(namespace: string | undefined): [low: string, high: string] {
  if (namespace === undefined) throw new Error('sqlite adapter used without a keyv namespace');
  return [`${namespace}:`, `${namespace};`];
}

function unavailable(message: string, cause: unknown): IcalpushError {
  return new IcalpushError('STORE_UNAVAILABLE', `${message}: ${systemErrorText(cause)}`, { cause });
}
