// trustProxy entries (src/http/trust-proxy.ts): only plain addresses and CIDRs, matched the way clients
// connect (IPv4 clients arrive IPv4-mapped on dual-stack sockets).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createTrustedProxies, parseTrustedRange } from '../../src/http/trust-proxy.ts';

test('old-style IPv4 spellings are refused: they would trust a host nobody meant', () => {
  // 010.0.0.1 is octal (8.0.0.1) to inet_aton, 1.2.3 is 1.2.0.3, 0x7f.1 is 127.0.0.1.
  for (const value of ['010.0.0.1', '1.2.3', '0x7f.1', '10.0.0.0/33', 'proxy.internal', '']) {
    assert.equal(parseTrustedRange(value), undefined, value);
  }
  for (const value of ['10.0.0.0/8', '127.0.0.1', '::1', 'fe80::/10', '2001:db8::/32']) {
    assert.ok(parseTrustedRange(value), value);
  }
});

test('a range matches IPv4 clients plain or IPv4-mapped, and link-local clients with their zone', () => {
  const trusted = createTrustedProxies(['10.0.0.0/8', '::ffff:192.168.0.0/112', 'fe80::/10']);
  for (const address of ['10.1.2.3', '::ffff:10.1.2.3', '192.168.4.5', '::ffff:192.168.4.5', 'fe80::1%eth0']) {
    assert.equal(trusted(address), true, address);
  }
  for (const address of ['11.0.0.1', '::ffff:11.0.0.1', '192.169.0.1', '2001:db8::1', undefined, 'junk']) {
    assert.equal(trusted(address), false, String(address));
  }
  assert.equal(createTrustedProxies([])('127.0.0.1'), false);
});
