// Store benchmark: the candidates for the durable embedded store side by side in one run, each
// behind our keyv Store: sequential writes and reads, a 200 KB value, file size, and kill -9
// survival (a child writes, is killed, and acknowledged writes missing afterwards are counted).
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { KeyvFile } from 'keyv-file';
import { createKeyvStore } from '../src/store/keyv-store.ts';
import { openSqliteAdapter } from '../src/store/sqlite-adapter.ts';
import type { Store } from '../src/store/store.ts';

type Candidate = { label: string; open(path: string): Store };

function sqliteCandidate(synchronous: 'NORMAL' | 'FULL'): Candidate {
  return {
    label: `node:sqlite adapter, synchronous=${synchronous}`,
    open(path) {
      const sqlite = openSqliteAdapter(path, { synchronous });
      return createKeyvStore({
        kind: 'sqlite',
        backend: { storeFor: () => sqlite.namespaceAdapter(), close: () => sqlite.close() },
      });
    },
  };
}

function keyvFileCandidate(writeDelayMs: number): Candidate {
  return {
    label: `keyv-file, writeDelay=${writeDelayMs} ms${writeDelayMs === 100 ? ' (default)' : ''}`,
    open(path) {
      return createKeyvStore({
        kind: 'keyv-file',
        backend: {
          storeFor: () => new KeyvFile({ filename: path, writeDelay: writeDelayMs }),
          close: () => {},
        },
      });
    },
  };
}

const candidates: Record<string, Candidate> = {
  'sqlite-normal': sqliteCandidate('NORMAL'),
  'sqlite-full': sqliteCandidate('FULL'),
  'keyv-file': keyvFileCandidate(100),
  'keyv-file-0': keyvFileCandidate(0),
};

const smallWrites = 5_000;
// Per phase, so a slow candidate (keyv-file waits writeDelay on every awaited set) stays bounded.
const phaseBudgetMs = 2_500;
const killRounds = 8;
// The kill lands at a random moment after the first acknowledgement, so it can fall inside a
// write (keyv-file rewrites its whole file each time; a kill mid-rewrite leaves it torn).
const killDelayMs = () => 50 + Math.random() * 300;
const writerTimeoutMs = 5_000;

// A 200 KB feed snapshot, the size of a large real-world calendar.
const snapshot = `BEGIN:VEVENT\r\nSUMMARY:x\r\nEND:VEVENT\r\n`.repeat(6_000).slice(0, 200 * 1024);
const smallValue = (i: number) => ({ uid: `event-${i}@example.com`, seq: i, etag: '"abc123"' });

async function timed(count: number, op: (i: number) => Promise<unknown>) {
  const started = performance.now();
  let done = 0;
  while (done < count && performance.now() - started < phaseBudgetMs) {
    await op(done);
    done += 1;
  }
  const ms = performance.now() - started;
  return { done, opsPerSec: (done / ms) * 1000 };
}

// Every file a candidate keeps next to `path` (SQLite's -wal and -shm, keyv-file's lock).
async function sizeOnDisk(dir: string): Promise<number> {
  let bytes = 0;
  for (const name of await readdir(dir)) bytes += (await stat(join(dir, name))).size;
  return bytes;
}

type Result = {
  sets: { done: number; opsPerSec: number };
  gets: { done: number; opsPerSec: number };
  largeMs: number;
  bytes: number;
  acked: number;
  lost: number;
  unreadable: number;
};

async function measure(key: string, candidate: Candidate, root: string): Promise<Result> {
  const dir = join(root, key);
  const path = join(dir, 'state.db');
  const store = candidate.open(path);
  const space = store.namespace('bench');
  const sets = await timed(smallWrites, (i) => space.set(`key-${i}`, smallValue(i)));
  const gets = await timed(sets.done, (i) => space.get(`key-${i}`));
  const largeStarted = performance.now();
  await space.set('large', snapshot);
  if ((await space.get('large')) !== snapshot)
    throw new Error(`${key}: 200 KB value came back wrong`);
  const largeMs = performance.now() - largeStarted;
  await store.close();
  const bytes = await sizeOnDisk(dir);

  let acked = 0;
  let lost = 0;
  let unreadable = 0;
  for (let round = 0; round < killRounds; round += 1) {
    const outcome = await killDuringWrites(key, candidate, join(root, `${key}-kill-${round}`));
    acked += outcome.acked;
    lost += outcome.lost;
    if (outcome.unreadable) unreadable += 1;
  }
  return { sets, gets, largeMs, bytes, acked, lost, unreadable };
}

// Runs this file as a writer child, SIGKILLs it at a random moment once it has acknowledged a
// write, then reopens the file and counts acknowledged keys that are gone.
async function killDuringWrites(key: string, candidate: Candidate, dir: string) {
  const path = join(dir, 'state.db');
  // A store in use already holds feed snapshots; this one also makes every keyv-file rewrite
  // (and so its window for a torn file) as long as with a real snapshot in it.
  const seeded = candidate.open(path);
  await seeded.namespace('bench').set('snapshot', snapshot);
  await seeded.close();
  const child = spawn(process.execPath, [fileURLToPath(import.meta.url), '--writer', key, path], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const kill = () => child.kill('SIGKILL');
  let timer = setTimeout(kill, writerTimeoutMs);
  const acked: number[] = [];
  let pending = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    const lines = (pending + chunk).split('\n');
    pending = lines.pop() ?? '';
    if (acked.length === 0 && lines.length > 0) {
      clearTimeout(timer);
      timer = setTimeout(kill, killDelayMs());
    }
    for (const line of lines) acked.push(Number(line));
  });
  await once(child, 'close');
  clearTimeout(timer);

  let lost = 0;
  let unreadable = false;
  try {
    const store = candidate.open(path);
    const space = store.namespace('bench');
    if ((await space.get('snapshot')) !== snapshot) lost += 1;
    for (const i of acked) {
      const value = (await space.get<{ seq: number }>(`key-${i}`)) ?? { seq: -1 };
      if (value.seq !== i) lost += 1;
    }
    // keyv-file reads a torn file as empty, silently: an empty store after acks means that.
    if (lost === acked.length + 1) unreadable = true;
    await store.close();
  } catch {
    unreadable = true;
    lost = acked.length + 1;
  }
  return { acked: acked.length + 1, lost, unreadable };
}

async function writer(key: string, path: string): Promise<void> {
  const candidate = candidates[key];
  if (!candidate) throw new Error(`unknown candidate ${key}`);
  const space = candidate.open(path).namespace('bench');
  for (let i = 0; ; i += 1) {
    await space.set(`key-${i}`, smallValue(i));
    process.stdout.write(`${i}\n`);
  }
}

const fmt = (n: number, digits = 0) => (Number.isFinite(n) ? n.toFixed(digits) : '-');

/** Runs the store benchmark and returns its table as text. */
export async function main(): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), 'icalpush-bench-store-'));
  try {
    const rows = [
      '| candidate | set ops/s (n) | get ops/s | 200 KB set+get ms | file KB | kill -9: lost / acknowledged |',
      '|---|---:|---:|---:|---:|---:|',
    ];
    for (const [key, candidate] of Object.entries(candidates)) {
      const r = await measure(key, candidate, root);
      const torn = r.unreadable ? `, ${r.unreadable} of ${killRounds} files unreadable` : '';
      rows.push(
        `| ${candidate.label} | ${fmt(r.sets.opsPerSec)} (${r.sets.done}) | ${fmt(r.gets.opsPerSec)} | ${fmt(r.largeMs, 1)} | ${fmt(r.bytes / 1024)} | ${r.lost} / ${r.acked} over ${killRounds} kills${torn} |`,
      );
    }
    rows.push('');
    rows.push(
      `Sequential awaited calls through the keyv Store; each phase capped at ${phaseBudgetMs} ms (n = writes done). File size after close, ${smallWrites} small values (or n) plus the 200 KB one. Kill -9: each store is seeded with a 200 KB snapshot (counted as one acknowledged write), then a child writes small values until killed at a random moment.`,
    );
    return rows.join('\n');
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

if (import.meta.main) {
  const [flag, key, path] = process.argv.slice(2);
  if (flag === '--writer' && key && path) await writer(key, path);
  else process.stdout.write(`${await main()}\n`);
}
