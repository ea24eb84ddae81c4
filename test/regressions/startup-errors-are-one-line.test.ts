// Regression: a port in use or a store that is not writable ended `icalpush serve` with a fatal JSON
// line carrying full stack traces and the cause repeated, and `icalpush check` called an unwritable store
// valid. Each is now one line (code, what, where), and check verifies the store path.
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { type AddressInfo, createServer as createNetServer } from 'node:net';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { run, tempConfig } from '../helpers/cli.ts';

const linesOf = (out: { stdout: string; stderr: string }) => `${out.stdout}\n${out.stderr}`.split('\n').filter(Boolean);

test('serve on a port in use exits 1 with one line naming the address and the cause, no stack', async (t) => {
  const taken = createNetServer();
  await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => taken.close(() => resolve())));
  const { port } = taken.address() as AddressInfo;
  const config = await tempConfig(t, `listen: 127.0.0.1:${port}\nupstream: http://127.0.0.1:9\nstore: memory\nfeeds:\n  - path: /c/{listing}.ics\n`);
  const out = await run(['serve', '--config', config]);
  assert.equal(out.code, 1);
  const lines = linesOf(out);
  const mentions = lines.filter((line) => line.includes(String(port)));
  assert.equal(mentions.length, 1, lines.join('\n'));
  const fatal = JSON.parse(mentions[0] ?? '{}') as { level: string; msg: string; err: { code: string; message: string } };
  assert.equal(fatal.level, 'fatal');
  assert.equal(fatal.msg, 'cannot listen');
  assert.deepEqual(fatal.err, {
    code: 'LISTEN_UNAVAILABLE',
    message: `cannot listen on 127.0.0.1:${port}: address already in use (EADDRINUSE)`,
  });
  assert.ok(!lines.some((line) => line.includes('    at ') || line.includes('\\n    at ')), lines.join('\n'));
  assert.equal(lines.join('\n').split('EADDRINUSE').length - 1, 1, 'the cause is told once');
});

test('serve with a store that cannot be created exits 1 with one line naming the file, no stack', async (t) => {
  const config = await tempConfig(t, 'listen: 127.0.0.1:0\nupstream: http://127.0.0.1:9\nfeeds:\n  - path: /c/{listing}.ics\n');
  const dir = dirname(config);
  await writeFile(join(dir, 'file.txt'), 'not a directory');
  const store = join(dir, 'file.txt', 'db.sqlite');
  await writeFile(config, `store: ${store}\n`, { flag: 'a' });
  const out = await run(['serve', '--config', config]);
  assert.equal(out.code, 1);
  const lines = linesOf(out);
  assert.equal(lines.length, 1, lines.join('\n'));
  const fatal = JSON.parse(lines[0] ?? '{}') as { msg: string; err: { code: string; message: string } };
  assert.equal(fatal.msg, 'store unavailable');
  assert.deepEqual(fatal.err, {
    code: 'STORE_UNAVAILABLE',
    message: `cannot create the directory of store file ${store}: ${join(dir, 'file.txt')} is not a directory`,
  });
});

test('check refuses a store path under a regular file, in the format of config problems', async (t) => {
  const config = await tempConfig(t, 'upstream: http://127.0.0.1:9\nfeeds:\n  - path: /c/{listing}.ics\n');
  const dir = dirname(config);
  await writeFile(join(dir, 'file.txt'), 'not a directory');
  const store = join(dir, 'file.txt', 'db.sqlite');
  await writeFile(config, `store: ${store}\n`, { flag: 'a' });
  const { code, stdout, stderr } = await run(['check', '--config', config]);
  assert.equal(code, 1);
  assert.equal(stdout, '');
  assert.equal(
    stderr,
    `${config}: invalid configuration\nstore: cannot write ${store}: ${join(dir, 'file.txt')} is not a directory (${config})\n`,
  );
});
