// Whether a store file can be written, asked without creating anything (`icalpush check`).
import assert from 'node:assert/strict';
import { chmod, mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type TestContext, test } from 'node:test';
import { storeFileProblem } from '../../src/store/store-path.ts';

async function tempDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'icalpush-store-path-'));
  t.after(async () => {
    await chmod(dir, 0o700).catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  });
  return dir;
}

test('a missing file in a writable directory is fine, and is not created', async (t) => {
  const dir = await tempDir(t);
  assert.equal(storeFileProblem(join(dir, 'a', 'b', 'state.db')), undefined);
  assert.deepEqual(await readdir(dir), []);
});

test('an existing writable file is fine', async (t) => {
  const path = join(await tempDir(t), 'state.db');
  await writeFile(path, '');
  assert.equal(storeFileProblem(path), undefined);
});

test('a regular file where a directory should be is named', async (t) => {
  const dir = await tempDir(t);
  await writeFile(join(dir, 'file.txt'), 'x');
  assert.equal(storeFileProblem(join(dir, 'file.txt', 'db.sqlite')), `${join(dir, 'file.txt')} is not a directory`);
  assert.equal(storeFileProblem(join(dir, 'file.txt', 'deeper', 'db.sqlite')), `${join(dir, 'file.txt')} is not a directory`);
});

test('a directory is not a store file', async (t) => {
  const path = join(await tempDir(t), 'state.db');
  await mkdir(path);
  assert.equal(storeFileProblem(path), 'it is a directory');
});

// Root writes through permission bits: these run where the suite is not root.
const isRoot = process.getuid?.() === 0;
const skip = isRoot && 'running as root';

test('a read-only file is refused', { skip }, async (t) => {
  const path = join(await tempDir(t), 'state.db');
  await writeFile(path, '');
  await chmod(path, 0o444);
  assert.equal(storeFileProblem(path), 'permission denied');
});

test('a missing file in a read-only directory is refused, naming the directory', { skip }, async (t) => {
  const dir = await tempDir(t);
  await chmod(dir, 0o555);
  assert.equal(storeFileProblem(join(dir, 'sub', 'state.db')), `permission denied on ${dir}`);
});

test('a writable file in a read-only directory is refused: SQLite writes its journal beside it', { skip }, async (t) => {
  const dir = await tempDir(t);
  await writeFile(join(dir, 'state.db'), '');
  await chmod(dir, 0o555);
  assert.equal(storeFileProblem(join(dir, 'state.db')), `permission denied on ${dir}, where SQLite writes its journal`);
});
