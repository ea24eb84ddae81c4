// Which clients are proxies whose X-Forwarded-Proto / X-Forwarded-Host are believed (`trustProxy`, SPEC
// "Which URLs are feeds of their own": the Link base). Anyone else's are ignored: a client must not be
// able to make the sidecar advertise another host.
import ipaddr from 'ipaddr.js';

/** True when `address` (the connection's remote address) is a trusted proxy. */
export type TrustedProxies = (address: string | undefined) => boolean;

/** A CIDR (`10.0.0.0/8`, `::1/128`) or a single address, or undefined when it is neither. */
export function parseTrustedRange(value: string): [ipaddr.IPv4 | ipaddr.IPv6, number] | undefined {
  const [address = '', bits] = value.split('/');
  // Only the plain forms: `010.0.0.1` (octal), `1.2.3` or `0x7f.1` would trust a host nobody meant.
  if (address.includes('.') && !address.includes(':') && !ipaddr.IPv4.isValidFourPartDecimal(address)) return undefined;
  try {
    const [range, prefix] = bits === undefined
      ? [ipaddr.parse(address), undefined]
      : ipaddr.parseCIDR(value);
    const size = prefix ?? (range.kind() === 'ipv4' ? 32 : 128);
    // A range written IPv4-mapped (::ffff:10.0.0.0/104) matches the IPv4 clients it names.
    if (range.kind() === 'ipv6' && (range as ipaddr.IPv6).isIPv4MappedAddress() && size >= 96) {
      return [(range as ipaddr.IPv6).toIPv4Address(), size - 96];
    }
    return [range, size];
  } catch {
    return undefined;
  }
}

/** The matcher for `ranges` (already validated by the config schema). */
export function createTrustedProxies(ranges: readonly string[]): TrustedProxies {
  const parsed = ranges.flatMap((range) => {
    const cidr = parseTrustedRange(range);
    return cidr ? [cidr] : [];
  });
  if (parsed.length === 0) return () => false;
  return (address) => {
    if (address === undefined || !ipaddr.isValid(address)) return false;
    // ::ffff:127.0.0.1 is 127.0.0.1.
    const ip = ipaddr.process(address);
    return parsed.some(([range, bits]) => ip.kind() === range.kind() && ip.match(range, bits));
  };
}
