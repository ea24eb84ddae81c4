// Which addresses an iCal Hooks URL may point at (SSRF guard, SPEC "iCal Hooks"), and the
// resolution of a hook's host to the one address that is checked and later used. The ipaddr.js
// adapter: its range classification is the allow-list.
import { isIP } from 'node:net';
import { lookup as dnsLookup } from 'node:dns/promises';
import ipaddr from 'ipaddr.js';
import { type Clock, systemClock, type Timer } from '../clock.ts';

/** One resolved address of a host. */
export type ResolvedAddress = { address: string; family: 4 | 6 };

/** Resolves a hostname to all its addresses (the shape of `dns.promises.lookup` with `all`). */
export type HostLookup = (hostname: string) => Promise<ResolvedAddress[]>;

/** The system resolver, every address in the order it answered. */
export const systemLookup: HostLookup = async (hostname) => {
  const found = await dnsLookup(hostname, { all: true, verbatim: true });
  return found.map(({ address, family }) => ({ address, family: family === 6 ? 6 : 4 }));
};

// 2000::/3 is the IANA global unicast space: ipaddr.js calls everything it has no name for
// `unicast`, which would otherwise let through unassigned space such as ::/8 leftovers.
const globalUnicastV6 = ipaddr.parseCIDR('2000::/3');

// Even with private networks allowed these are no TCP destination a hook could mean:
// 0.0.0.0 and :: connect to the local host on Linux, multicast and broadcast never answer.
const neverRanges = new Set(['unspecified', 'multicast', 'broadcast']);

/**
 * True when `address` may receive a hook HEAD. Without `allowPrivateNetworks` only global
 * unicast passes: loopback, RFC 1918, link-local, CGNAT, unique-local, IPv4-mapped, NAT64,
 * 6to4, Teredo, documentation and reserved ranges are all refused (an allow-list, not a deny-list).
 */
export function isAllowedAddress(address: string, allowPrivateNetworks: boolean): boolean {
  let parsed: ipaddr.IPv4 | ipaddr.IPv6;
  try {
    parsed = ipaddr.parse(address);
  } catch {
    return false;
  }
  const range = parsed.range();
  if (neverRanges.has(range)) return false;
  if (parsed.kind() === 'ipv6' && (parsed as ipaddr.IPv6).isIPv4MappedAddress()) {
    // Judge ::ffff:a.b.c.d by the IPv4 address it reaches.
    const inner = (parsed as ipaddr.IPv6).toIPv4Address();
    if (neverRanges.has(inner.range())) return false;
    if (!allowPrivateNetworks) return false;
  }
  if (allowPrivateNetworks) return true;
  if (range !== 'unicast') return false;
  return parsed.kind() === 'ipv4' || parsed.match(globalUnicastV6);
}

/** What resolving a hook host came to. */
export type TargetResolution =
  | { ok: true; address: string; family: 4 | 6 }
  | { ok: false; reason: 'unresolvable' | 'private-address' };

/**
 * Resolves `hostname` (a URL hostname: IPv6 literals in brackets) within `timeoutMs` and
 * checks every address: one refused address refuses the host, since the resolver may hand any
 * of them to a later connection. The first address is the one the HEAD will be sent to. The
 * timeout runs on `clock` (the system clock by default).
 */
export async function resolveTarget(
  hostname: string,
  options: { lookup: HostLookup; timeoutMs: number; allowPrivateNetworks: boolean; clock?: Clock },
): Promise<TargetResolution> {
  const bare = hostname.startsWith('[') && hostname.endsWith(']') ? hostname.slice(1, -1) : hostname;
  const literal = isIP(bare);
  let addresses: ResolvedAddress[];
  if (literal !== 0) {
    addresses = [{ address: bare, family: literal === 6 ? 6 : 4 }];
  } else {
    const found = await lookupWithin(options.lookup, bare, options.timeoutMs, options.clock ?? systemClock);
    if (found === undefined) return { ok: false, reason: 'unresolvable' };
    addresses = found;
  }
  const first = addresses[0];
  if (first === undefined) return { ok: false, reason: 'unresolvable' };
  for (const { address } of addresses) {
    if (!isAllowedAddress(address, options.allowPrivateNetworks)) return { ok: false, reason: 'private-address' };
  }
  return { ok: true, address: first.address, family: first.family };
}

/** The lookup's answer, or undefined when it failed, answered nothing usable or took too long. */
async function lookupWithin(
  lookup: HostLookup,
  hostname: string,
  timeoutMs: number,
  clock: Clock,
): Promise<ResolvedAddress[] | undefined> {
  let timer: Timer | undefined;
  const timeout = new Promise<undefined>((resolve) => {
    timer = clock.setTimeout(() => resolve(undefined), timeoutMs);
  });
  try {
    const found = await Promise.race([lookup(hostname), timeout]);
    if (!Array.isArray(found)) return undefined;
    const valid = found.filter(
      (entry): entry is ResolvedAddress =>
        typeof entry?.address === 'string' && isIP(entry.address) !== 0 && (entry.family === 4 || entry.family === 6),
    );
    return valid.length === found.length ? valid : undefined;
  } catch {
    return undefined;
  } finally {
    clock.clearTimeout(timer);
  }
}
