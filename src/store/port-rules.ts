// What every backend of the store port holds its callers to alike: names of namespaces and queues (letters,
// digits, `-` and `_`: no separator any backend uses), one of each per name, TTLs, and write stamps.
import { randomBytes } from 'node:crypto';
import { IcalpushError } from '../errors.ts';

const namePattern = /^[A-Za-z0-9_-]+$/;

/** A getter that checks each name and creates its `what` once, handing the same one out after. */
export function oncePerName<T>(what: 'namespace' | 'queue', create: (name: string) => T): (name: string) => T {
  const made = new Map<string, T>();
  return (name) => {
    if (!namePattern.test(name)) throw new IcalpushError('INTERNAL_ERROR', `invalid store ${what} ${JSON.stringify(name)}`);
    let thing = made.get(name);
    if (thing === undefined) {
      thing = create(name);
      made.set(name, thing);
    }
    return thing;
  };
}

/** Refuses a TTL that is not a positive number (keyv, for one, reads 0 as "never expires": no guessing). */
export function checkTtl(ttlMs: number | undefined): void {
  if (ttlMs !== undefined && !(Number.isFinite(ttlMs) && ttlMs > 0)) {
    throw new IcalpushError('INTERNAL_ERROR', `ttlMs must be a positive number: ${ttlMs}`);
  }
}

/** A stamp unique to one write (see StoreNamespace#setIfStamp). */
export function newStamp(): string {
  return randomBytes(9).toString('base64url');
}
