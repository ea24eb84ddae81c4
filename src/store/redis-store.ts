// The shared store (SPEC "Several replicas"): the port over one Redis, through node-redis's core client.
// Keys are `icalpush:<namespace>:<key>`, values the envelope of redis-scripts.ts, every atomic operation
// one Lua script (one round trip), every command bounded by a deadline and refused at once while the
// connection is down (no offline queue: a request must never wait on Redis coming back). Unreachable
// Redis is STORE_UNAVAILABLE, which the rest of icalpush already answers by degrading.
import { createHash } from 'node:crypto';
import { createClient, type RedisClientType } from '@redis/client';
import { type Clock, systemClock } from '../clock.ts';
import { IcalpushError } from '../errors.ts';
import type { Logger } from '../log.ts';
import { redactUrl } from '../redact.ts';
import * as scripts from './redis-scripts.ts';
import { checkTtl, newStamp, oncePerName } from './port-rules.ts';
import type { Claim, DueQueue, Stamped, Store, StoreNamespace } from './store.ts';

/** How the Redis store is opened; every field but the URL has a default. */
export type RedisStoreOptions = {
  clock?: Clock;
  logger?: Logger;
  /** Deadline of one command, the answer included; 2 s by default. */
  commandTimeoutMs?: number;
  /** Deadline of one connection attempt; 2 s by default. */
  connectTimeoutMs?: number;
};

// Redis reclaims an expired entry's memory this long after it expired by the caller's clock.
const reclaimSlackMs = 60_000;
// Keys asked of SCAN per round trip.
const scanCount = 256;
// Reconnects back off to this at most, so Redis coming back is seen within it.
const maxReconnectDelayMs = 1_000;

type Script = { text: string; sha: string };
const script = (text: string): Script => ({ text, sha: createHash('sha1').update(text).digest('hex') });
const compiled = {
  add: script(scripts.addScript),
  delete: script(scripts.deleteScript),
  deleteIf: script(scripts.deleteIfScript),
  increment: script(scripts.incrementScript),
  setIfStamp: script(scripts.setIfStampScript),
  claim: script(scripts.claimScript),
  complete: script(scripts.completeScript),
  retry: script(scripts.retryScript),
};

type Envelope = { expires: number | undefined; stamp: string; json: string };

function parseEnvelope(raw: string): Envelope | undefined {
  const first = raw.indexOf('|');
  const second = first === -1 ? -1 : raw.indexOf('|', first + 1);
  if (second === -1) return undefined;
  const e = raw.slice(0, first);
  return { expires: e === '' ? undefined : Number(e), stamp: raw.slice(first + 1, second), json: raw.slice(second + 1) };
}

/** Opens the Redis store at `url` (`redis://` or `rediss://`). Resolves once connected, or after one
 * connection deadline without: while Redis cannot be reached every call rejects with STORE_UNAVAILABLE,
 * and the client keeps reconnecting. */
export async function openRedisStore(url: string, options: RedisStoreOptions = {}): Promise<Store> {
  const clock = options.clock ?? systemClock;
  const commandTimeoutMs = options.commandTimeoutMs ?? 2_000;
  const shown = redactUrl(url);
  const log = options.logger?.child({ component: 'store', store: 'redis', url: shown });
  const client = createClient({
    url,
    disableOfflineQueue: true,
    // A connection that stops answering (a partition, a stalled Redis) is closed and made again: PINGs keep a
    // healthy one from ever being idle, and a socket silent for longer than a command's deadline is dropped.
    pingInterval: 1_000,
    socket: {
      socketTimeout: commandTimeoutMs + 1_000,
      connectTimeout: options.connectTimeoutMs ?? 2_000,
      // The connection never keeps the process alive on its own: shutdown closes it, a crash need not.
      reconnectStrategy: (retries: number) => Math.min(50 * 2 ** Math.min(retries, 10), maxReconnectDelayMs),
    },
  }) as RedisClientType;
  let closed = false;
  let down: string | undefined;
  client.on('error', (err: unknown) => {
    const reason = err instanceof Error ? err.message : String(err);
    if (down === undefined) log?.warn({ reason }, 'store connection lost');
    down = reason;
  });
  client.on('ready', () => {
    if (down !== undefined) log?.info('store connection restored');
    down = undefined;
  });
  const connecting = client.connect().catch((err: unknown) => {
    down ??= err instanceof Error ? err.message : String(err);
  });
  const connectTimeoutMs = options.connectTimeoutMs ?? 2_000;
  // The first connection, within its deadline; past it, the store opens degraded and connects later.
  await new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, connectTimeoutMs);
    timer.unref();
    client.once('ready', () => {
      clearTimeout(timer);
      resolve();
    });
  });
  if (!client.isReady) log?.warn({ reason: down ?? 'not connected' }, 'store unreachable at start: running degraded');

  function unavailable(action: string, err: unknown): IcalpushError {
    const reason = err instanceof Error ? err.message : String(err);
    return new IcalpushError('STORE_UNAVAILABLE', `redis store: ${action} failed: ${reason}`, { cause: err });
  }

  async function command<T>(action: string, args: string[]): Promise<T> {
    if (closed) throw new IcalpushError('STORE_UNAVAILABLE', 'redis store is closed');
    if (!client.isReady) throw unavailable(action, new Error(down ?? 'not connected'));
    // node-redis's own timeout only covers a command still queued: once written, only this deadline bounds it.
    const sent = client.sendCommand<T>(args, { timeout: commandTimeoutMs });
    let timer: ReturnType<typeof setTimeout> | undefined;
    const deadline = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${commandTimeoutMs} ms`)), commandTimeoutMs);
      timer.unref();
    });
    try {
      return await Promise.race([sent, deadline]);
    } catch (err) {
      sent.catch(() => undefined);
      if (err instanceof IcalpushError) throw err;
      throw unavailable(action, err);
    } finally {
      clearTimeout(timer);
    }
  }

  async function run<T>(action: string, s: Script, keys: string[], args: string[]): Promise<T> {
    try {
      return await command<T>(action, ['EVALSHA', s.sha, String(keys.length), ...keys, ...args]);
    } catch (err) {
      // A Redis restarted (or flushed) has forgotten its scripts: sent once more in full.
      if (!(err instanceof IcalpushError && /NOSCRIPT/.test(String((err.cause as Error | undefined)?.message)))) throw err;
      return command<T>(action, ['EVAL', s.text, String(keys.length), ...keys, ...args]);
    }
  }

  function envelope(value: unknown, ttlMs: number | undefined, stamp = ''): { text: string; px: string } {
    checkTtl(ttlMs);
    let json: string | undefined;
    try {
      json = JSON.stringify(value);
    } catch (err) {
      throw new IcalpushError('INTERNAL_ERROR', 'store value is not JSON-serializable', { cause: err });
    }
    if (json === undefined) throw new IcalpushError('INTERNAL_ERROR', 'store value is not JSON-serializable');
    const expires = ttlMs === undefined ? '' : String(Math.ceil(clock.now() + ttlMs));
    return { text: `${expires}|${stamp}|${json}`, px: ttlMs === undefined ? '' : String(Math.ceil(ttlMs + reclaimSlackMs)) };
  }

  function read(raw: string | null | undefined): Envelope | undefined {
    if (raw === null || raw === undefined) return undefined;
    const parsed = parseEnvelope(raw);
    if (parsed === undefined) return undefined;
    if (parsed.expires !== undefined && clock.now() > parsed.expires) return undefined;
    return parsed;
  }

  async function* scan(match: string): AsyncGenerator<string[]> {
    let cursor = '0';
    // SCAN may return a key twice; each is handed out once.
    const seen = new Set<string>();
    do {
      const [next, keys] = await command<[string, string[]]>('scan', ['SCAN', cursor, 'MATCH', match, 'COUNT', String(scanCount)]);
      cursor = next;
      const fresh = keys.filter((k) => !seen.has(k));
      for (const k of fresh) seen.add(k);
      if (fresh.length > 0) yield fresh;
    } while (cursor !== '0');
  }

  function createNamespace(name: string): StoreNamespace {
    const prefix = `icalpush:${name}:`;
    const k = (key: string) => prefix + key;
    const now = () => String(clock.now());
    return {
      async get<T>(key: string) {
        const entry = read(await command<string | null>(`get in ${name}`, ['GET', k(key)]));
        return entry === undefined ? undefined : JSON.parse(entry.json) as T;
      },
      async set(key, value, ttlMs) {
        const { text, px } = envelope(value, ttlMs);
        await command(`set in ${name}`, px === '' ? ['SET', k(key), text] : ['SET', k(key), text, 'PX', px]);
      },
      async delete(key) {
        return (await run<number>(`delete in ${name}`, compiled.delete, [k(key)], [now()])) === 1;
      },
      async* entries<T>(): AsyncGenerator<[key: string, value: T]> {
        for await (const keys of scan(`${prefix}*`)) {
          const values = await command<(string | null)[]>(`entries of ${name}`, ['MGET', ...keys]);
          for (let i = 0; i < keys.length; i += 1) {
            const entry = read(values[i]);
            if (entry !== undefined) yield [(keys[i] as string).slice(prefix.length), JSON.parse(entry.json) as T];
          }
        }
      },
      async clear() {
        for await (const keys of scan(`${prefix}*`)) await command(`clear of ${name}`, ['UNLINK', ...keys]);
      },
      async add(key, value, ttlMs) {
        const { text, px } = envelope(value, ttlMs);
        return (await run<number>(`add in ${name}`, compiled.add, [k(key)], [now(), text, px])) === 1;
      },
      async deleteIf(key, value) {
        const json = JSON.stringify(value);
        return (await run<number>(`deleteIf in ${name}`, compiled.deleteIf, [k(key)], [now(), json])) === 1;
      },
      async increment(key, by = 1, ttlMs) {
        if (!Number.isSafeInteger(by)) throw new IcalpushError('INTERNAL_ERROR', `increment by a non-integer: ${by}`);
        checkTtl(ttlMs);
        const expires = ttlMs === undefined ? '' : String(Math.ceil(clock.now() + ttlMs));
        const px = ttlMs === undefined ? '' : String(Math.ceil(ttlMs + reclaimSlackMs));
        try {
          return Number(await run<string>(`increment in ${name}`, compiled.increment, [k(key)], [now(), String(by), expires, px]));
        } catch (err) {
          if (err instanceof IcalpushError && /not an integer/.test(String((err.cause as Error | undefined)?.message))) {
            throw new IcalpushError('INTERNAL_ERROR', `increment of a value that is not an integer in ${name}`);
          }
          throw err;
        }
      },
      async getStamped<T>(key: string): Promise<Stamped<T> | undefined> {
        const entry = read(await command<string | null>(`getStamped in ${name}`, ['GET', k(key)]));
        return entry === undefined ? undefined : { value: JSON.parse(entry.json) as T, stamp: entry.stamp };
      },
      async setIfStamp(key, expected, value, ttlMs) {
        const stamp = newStamp();
        const { text, px } = envelope(value, ttlMs, stamp);
        const args = [now(), expected === undefined ? '1' : '0', expected ?? '', text, px];
        return (await run<number>(`setIfStamp in ${name}`, compiled.setIfStamp, [k(key)], args)) === 1 ? stamp : undefined;
      },
    };
  }

  function createQueue(name: string): DueQueue {
    const key = `icalpush:~due:${name}`;
    // WITHSCORES answers [member, score, …] in RESP2 and [[member, score], …] in RESP3.
    const pairs = (answer: unknown[]): [string, number][] => {
      const out: [string, number][] = [];
      if (answer.every(Array.isArray)) {
        for (const [member, score] of answer as [string, string | number][]) out.push([String(member), Number(score)]);
        return out;
      }
      for (let i = 0; i + 1 < answer.length; i += 2) out.push([String(answer[i]), Number(answer[i + 1])]);
      return out;
    };
    return {
      async schedule(member, at) {
        await command(`schedule in ${name}`, ['ZADD', key, 'NX', String(at), member]);
      },
      async hasten(member, at) {
        await command(`hasten in ${name}`, ['ZADD', key, 'LT', String(at), member]);
      },
      async claim(now, leaseMs, limit) {
        if (limit <= 0) return [];
        const token = now + leaseMs;
        const members = await run<string[]>(`claim in ${name}`, compiled.claim, [key], [String(now), String(token), String(limit)]);
        return members.map((member): Claim => ({ member, token }));
      },
      async complete(claim) {
        return (await run<number>(`complete in ${name}`, compiled.complete, [key], [claim.member, String(claim.token)])) === 1;
      },
      async retry(claim, at) {
        return (await run<number>(`retry in ${name}`, compiled.retry, [key], [claim.member, String(claim.token), String(at)])) === 1;
      },
      async remove(member) {
        await command(`remove in ${name}`, ['ZREM', key, member]);
      },
      async next() {
        const [first] = pairs(await command<unknown[]>(`next in ${name}`, ['ZRANGE', key, '0', '0', 'WITHSCORES']));
        return first?.[1];
      },
      async size() {
        return Number(await command<number>(`size of ${name}`, ['ZCARD', key]));
      },
      async list(limit) {
        if (limit <= 0) return [];
        return pairs(await command<unknown[]>(`list of ${name}`, ['ZRANGE', key, '0', String(limit - 1), 'WITHSCORES']));
      },
    };
  }

  return {
    kind: 'redis',
    shared: true,
    namespace: oncePerName('namespace', createNamespace),
    queue: oncePerName('queue', createQueue),
    async ping() {
      // A write and a read, not PING: a Redis that answers but refuses writes (a replica after a failover,
      // out of memory, no permission) is not ready either.
      const key = `icalpush:~ping:${newStamp()}`;
      await command('ping', ['SET', key, '1', 'PX', '10000']);
      const answer = await command<string | null>('ping', ['GET', key]);
      await command('ping', ['DEL', key]);
      if (answer !== '1') throw unavailable('ping', new Error('the probe read back a different value'));
    },
    async close() {
      if (closed) return;
      closed = true;
      try {
        // Reconnecting (or never connected): nothing to flush, the socket is let go at once. A close that
        // waits on replies a stalled Redis never sends is cut after a second.
        if (client.isReady) {
          let timer: ReturnType<typeof setTimeout> | undefined;
          await Promise.race([client.close(), new Promise<void>((resolve) => {
            timer = setTimeout(resolve, 1_000);
            timer.unref();
          })]);
          clearTimeout(timer);
        }
        if (client.isOpen) client.destroy();
      } catch {
        if (client.isOpen) client.destroy();
      }
      await connecting;
    },
  };
}
