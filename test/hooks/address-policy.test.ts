// The hook address allow-list and the header parser, without sockets.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isAllowedAddress, resolveTarget } from '../../src/hooks/address-policy.ts';
import { maxHookUrlLength, parseHookHeader } from '../../src/hooks/hook-url.ts';

test('only global unicast passes without allowPrivateNetworks', () => {
  for (const address of ['93.184.216.34', '1.1.1.1', '2606:4700:4700::1111', '2a00:1450:4001:82b::200e']) {
    assert.equal(isAllowedAddress(address, false), true, address);
  }
  for (const address of [
    '127.0.0.1', '10.0.0.1', '172.31.255.255', '192.168.0.1', '169.254.169.254', '100.127.0.1', '0.0.0.0',
    '255.255.255.255', '239.1.1.1', '198.18.0.1', '240.0.0.1', '::', '::1', 'fe80::1', 'fc00::1', 'ff02::1',
    '::ffff:10.0.0.1', '::ffff:8.8.8.8', '64:ff9b::a00:1', '2002:a00:1::', '2001::1', '2001:db8::1', '100::1',
    '::1.2.3.4', 'not-an-address', '',
  ]) {
    assert.equal(isAllowedAddress(address, false), false, address);
  }
});

test('allowPrivateNetworks lets private ranges through but never unspecified, multicast or broadcast', () => {
  for (const address of ['127.0.0.1', '10.0.0.1', '::1', 'fd00::1', '::ffff:127.0.0.1', '169.254.1.1']) {
    assert.equal(isAllowedAddress(address, true), true, address);
  }
  for (const address of ['0.0.0.0', '::', '224.0.0.1', 'ff02::1', '255.255.255.255', '::ffff:0.0.0.0']) {
    assert.equal(isAllowedAddress(address, true), false, address);
  }
});

test('resolveTarget keeps the first address and refuses an empty answer', async () => {
  const lookup = async () => [
    { address: '93.184.216.34', family: 4 as const },
    { address: '2606:2800:220:1::1', family: 6 as const },
  ];
  assert.deepEqual(await resolveTarget('a.test', { lookup, timeoutMs: 1_000, allowPrivateNetworks: false }), {
    ok: true,
    address: '93.184.216.34',
    family: 4,
  });
  assert.deepEqual(
    await resolveTarget('a.test', { lookup: async () => [], timeoutMs: 1_000, allowPrivateNetworks: false }),
    { ok: false, reason: 'unresolvable' },
  );
});

test('resolveTarget takes IP literals as they are, without a lookup', async () => {
  const lookup = async () => {
    throw new Error('no lookup expected');
  };
  assert.deepEqual(await resolveTarget('[::1]', { lookup, timeoutMs: 1_000, allowPrivateNetworks: true }), {
    ok: true,
    address: '::1',
    family: 6,
  });
});

test('parseHookHeader drops the fragment and normalizes the URL', () => {
  const parsed = parseHookHeader('  HTTPS://Consumer.Example:443/hook?x=1#part ');
  assert.equal(parsed.ok, true);
  assert.equal(parsed.ok === true ? parsed.url.href : '', 'https://consumer.example/hook?x=1');
});

test('parseHookHeader checks the length of the normalized URL too', () => {
  // Each é becomes %C3%A9: short raw, too long once normalized.
  const value = `http://a.example/${'é'.repeat(maxHookUrlLength / 4)}`;
  assert.ok(value.length <= maxHookUrlLength);
  assert.deepEqual(parseHookHeader(value), { ok: false, reason: 'too-long', host: 'a.example' });
});

test('parseHookHeader accepts exactly 2048 characters and refuses 2049', () => {
  const base = 'http://a.example/';
  const at = `${base}${'x'.repeat(maxHookUrlLength - base.length)}`;
  assert.equal(parseHookHeader(at).ok, true);
  assert.deepEqual(parseHookHeader(`${at}x`), { ok: false, reason: 'too-long' });
});
