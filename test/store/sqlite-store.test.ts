// The durable embedded backend: the conformance suite, plus what only a file can promise —
// surviving close, reopen and kill -9 — and clear failures for paths it cannot use.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { type TestContext, test } from 'node:test';
import { openStore } from '../../src/store/open-store.ts';
import { openSqliteAdapter } from '../../src/store/sqlite-adapter.ts';
import { storeConformance } from './conformance.ts';
import { createFakeClock } from './fake-clock.ts';

const fixtures = new URL('./fixtures/', import.meta.url);

async function tempDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'icalpush-sqlite-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

storeConformance('sqlite', async (t, options) => {
  const path = join(await tempDir(t), 'state.db');
  const store = await openStore(path, options);
  t.after(() => store.close());
  return store;
});

test('sqlite store reports its kind and runs in WAL mode', async (t) => {
  const path = join(await tempDir(t), 'state.db');
  const store = await openStore(path);
  assert.equal(store.kind, 'sqlite');
  await store.namespace('feeds').set('k', 'v');
  const db = new DatabaseSync(path);
  t.after(() => db.close());
  assert.equal(db.prepare('PRAGMA journal_mode').get()?.journal_mode, 'wal');
  await store.close();
});

test('sqlite store keeps its data, ttls included, across close and reopen', async (t) => {
  const clock = createFakeClock();
  const path = join(await tempDir(t), 'nested', 'dirs', 'state.db');
  const first = await openStore(path, { clock });
  await first.namespace('feeds').set('kept', { etag: '"v1"' });
  await first.namespace('feeds').set('expiring', 'x', 1_000);
  await first.namespace('tokens').set('kept', 7);
  await first.close();

  const second = await openStore(path, { clock });
  t.after(() => second.close());
  assert.deepEqual(await second.namespace('feeds').get('kept'), { etag: '"v1"' });
  assert.equal(await second.namespace('feeds').get('expiring'), 'x');
  assert.equal(await second.namespace('tokens').get('kept'), 7);
  clock.advance(1_001);
  assert.equal(await second.namespace('feeds').get('expiring'), undefined);
});

test('sqlite store keeps every acknowledged write of a process killed with SIGKILL', async (t) => {
  const path = join(await tempDir(t), 'state.db');
  const child = spawn(
    process.execPath,
    [new URL('write-until-killed.ts', fixtures).pathname, path],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  t.after(() => child.kill('SIGKILL'));
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
  });
  // Only complete lines count: a number is acknowledged once its newline has arrived.
  const acked: number[] = [];
  let pending = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    const lines = (pending + chunk).split('\n');
    pending = lines.pop() ?? '';
    for (const line of lines) acked.push(Number(line));
    if (acked.length >= 200 && child.exitCode === null && !child.killed) child.kill('SIGKILL');
  });
  const [code, signal] = await once(child, 'close');
  assert.equal(signal, 'SIGKILL', `writer ended with code ${code}: ${stderr}`);
  assert.ok(acked.length >= 200, `only ${acked.length} writes acknowledged`);
  assert.deepEqual(
    acked,
    acked.map((_, i) => i),
  );

  const store = await openStore(path);
  t.after(() => store.close());
  const writes = store.namespace('writes');
  for (const i of acked) {
    assert.deepEqual(
      await writes.get(`key-${i}`),
      { i, text: `value ${i} `.repeat(20) },
      `key-${i}`,
    );
  }
  await store.close();
  const db = new DatabaseSync(path);
  t.after(() => db.close());
  assert.equal(db.prepare('PRAGMA integrity_check').get()?.integrity_check, 'ok');
});

test('sqlite sweep deletes expired rows in bounded batches', async (t) => {
  const clock = createFakeClock();
  const sqlite = openSqliteAdapter(join(await tempDir(t), 'state.db'), { clock });
  t.after(() => sqlite.close());
  const rows = sqlite.namespaceAdapter();
  rows.namespace = 'feeds';
  for (let i = 0; i < 5; i += 1) await rows.set(`feeds:old-${i}`, '"x"', 1_000);
  await rows.set('feeds:young', '"y"', 5_000);
  await rows.set('feeds:forever', '"z"');
  assert.equal(sqlite.sweepExpired(), 0);
  clock.advance(1_000);
  assert.equal(sqlite.sweepExpired(), 0, 'an entry at exactly its expiry is still live');
  clock.advance(1);
  assert.equal(sqlite.sweepExpired(3), 3);
  assert.equal(sqlite.sweepExpired(3), 2);
  assert.equal(sqlite.sweepExpired(3), 0);
  const left: string[] = [];
  for await (const [key] of rows.iterator('feeds')) left.push(key);
  assert.deepEqual(left, ['feeds:forever', 'feeds:young']);
});

test('sqlite store refuses a path whose directory is a file', async (t) => {
  const dir = await tempDir(t);
  await writeFile(join(dir, 'plain-file'), 'not a directory');
  const path = join(dir, 'plain-file', 'state.db');
  await assert.rejects(openStore(path), (err: Error & { code?: string }) => {
    assert.equal(err.code, 'STORE_UNAVAILABLE');
    assert.ok(err.message.includes(path), err.message);
    return true;
  });
});

test('sqlite store refuses a file that is not a database', async (t) => {
  const path = join(await tempDir(t), 'notes.txt');
  await writeFile(path, 'BEGIN:VCALENDAR\r\n'.repeat(100));
  await assert.rejects(openStore(path), (err: Error & { code?: string }) => {
    assert.equal(err.code, 'STORE_UNAVAILABLE');
    assert.match(err.message, /not a database/);
    assert.ok(err.message.includes(path), err.message);
    return true;
  });
});

test('sqlite store refuses a path that is a directory', async (t) => {
  const path = join(await tempDir(t), 'state.db');
  await mkdir(path);
  await assert.rejects(openStore(path), (err: Error & { code?: string }) => {
    assert.equal(err.code, 'STORE_UNAVAILABLE');
    assert.ok(err.message.includes(path), err.message);
    return true;
  });
});

// Root writes through permission bits (and Node's recursive mkdir spins on /proc), so this
// runs where the suite is not root; as root, the directory-is-a-file case above covers the path.
const isRoot = process.getuid?.() === 0;
test('sqlite store refuses a directory it cannot write', { skip: isRoot && 'running as root' }, async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'icalpush-sqlite-'));
  t.after(async () => {
    await chmod(dir, 0o700);
    await rm(dir, { recursive: true, force: true });
  });
  await chmod(dir, 0o555);
  const path = join(dir, 'state.db');
  await assert.rejects(openStore(path), (err: Error & { code?: string }) => {
    assert.equal(err.code, 'STORE_UNAVAILABLE');
    assert.ok(err.message.includes(path), err.message);
    return true;
  });
});
