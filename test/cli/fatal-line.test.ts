// The one line main.ts prints for an error nothing else handled.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fatalLine } from '../../src/cli/program.ts';
import { IcalpushError } from '../../src/errors.ts';

test('an error with a code prints its code and message on one line, no stack', () => {
  const err = new IcalpushError('STORE_UNAVAILABLE', 'cannot open store file /x/y.db: permission denied');
  assert.equal(fatalLine(err, {}), 'icalpush: STORE_UNAVAILABLE: cannot open store file /x/y.db: permission denied\n');
});

test('an error without a code prints its name', () => {
  assert.equal(fatalLine(new TypeError('x is not a function'), {}), 'icalpush: TypeError: x is not a function\n');
});

test('a message over several lines is printed on one', () => {
  assert.equal(fatalLine(new Error('first\n  second'), {}), 'icalpush: Error: first second\n');
});

test('a thrown non-error is printed as text', () => {
  assert.equal(fatalLine('boom', {}), 'icalpush: string: boom\n');
});

test('a context names what failed', () => {
  assert.equal(fatalLine(new Error('store closed'), {}, 'shutdown failed'), 'icalpush: shutdown failed: Error: store closed\n');
});

test('ICALPUSH_DEBUG=1 adds the stack after the line', () => {
  const out = fatalLine(new Error('bug'), { ICALPUSH_DEBUG: '1' });
  const [first, ...rest] = out.split('\n');
  assert.equal(first, 'icalpush: Error: bug');
  assert.match(rest.join('\n'), /^Error: bug\n {4}at /);
});
