// `${VAR}` substitution rules, on single strings.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { substituteVariables } from '../../src/config/env.ts';

test('${VAR} is replaced from the environment', () => {
  assert.deepEqual(substituteVariables('Bearer ${TOKEN}', { TOKEN: 'abc' }), {
    ok: true,
    value: 'Bearer abc',
    variables: ['TOKEN'],
  });
});

test('${VAR} set to an empty string is empty, not missing', () => {
  const result = substituteVariables('x${EMPTY}y', { EMPTY: '' });
  assert.deepEqual(result, { ok: true, value: 'xy', variables: ['EMPTY'] });
});

test('${VAR:-default} falls back when VAR is unset or empty', () => {
  for (const env of [{}, { PORT: '' }]) {
    const result = substituteVariables('${PORT:-8080}', env);
    assert.deepEqual(result, { ok: true, value: '8080', variables: ['PORT'] });
  }
  assert.deepEqual(substituteVariables('${PORT:-8080}', { PORT: '9' }), {
    ok: true,
    value: '9',
    variables: ['PORT'],
  });
});

test('${VAR:-} defaults to the empty string', () => {
  assert.deepEqual(substituteVariables('a${NONE:-}b', {}), {
    ok: true,
    value: 'ab',
    variables: ['NONE'],
  });
});

test('$${ writes a literal ${ and is never substituted', () => {
  assert.deepEqual(substituteVariables('$${HOME} and ${A}', { A: '1', HOME: '/root' }), {
    ok: true,
    value: '${HOME} and 1',
    variables: ['A'],
  });
});

test('a substituted value is not substituted again', () => {
  const result = substituteVariables('${A}', { A: '${B}', B: 'no' });
  assert.deepEqual(result, { ok: true, value: '${B}', variables: ['A'] });
});

test('every missing variable is reported, with the way to give a default', () => {
  const result = substituteVariables('${ONE}/${TWO}', {});
  assert.equal(result.ok, false);
  const problems = result.ok ? [] : result.problems;
  assert.equal(problems.length, 2);
  assert.match(problems[0] ?? '', /\$\{ONE\}.*ONE is not set.*\$\{ONE:-value\}/);
  assert.match(problems[1] ?? '', /TWO is not set/);
});

test('an unclosed ${ and a malformed name are problems', () => {
  const unclosed = substituteVariables('abc ${TOKEN', {});
  assert.match(!unclosed.ok ? (unclosed.problems[0] ?? '') : '', /without a closing/);
  const malformed = substituteVariables('${not-a-name}', {});
  assert.match(!malformed.ok ? (malformed.problems[0] ?? '') : '', /not a variable reference/);
});

test('text without references is returned unchanged', () => {
  assert.deepEqual(substituteVariables('plain $ text {x}', {}), {
    ok: true,
    value: 'plain $ text {x}',
    variables: [],
  });
});
