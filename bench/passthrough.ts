// Passthrough benchmark: the same load against the upstream directly, through icalpush, and
// through two bare proxies for calibration, side by side in one run. Every server and the
// load generator run in their own process, so no two share an event loop.
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { request } from 'undici';
import { freePort } from '../src/demo/mesh.ts';
import { autocannon as runAutocannon } from './fixtures/autocannon.ts';

const root = new URL('..', import.meta.url).pathname;
const node = process.execPath;

type Target = { name: string; url: string };

export async function startProcess(args: string[], children: ChildProcess[]): Promise<number> {
  const child = spawn(node, args, { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(child);
  const lines = createInterface({ input: child.stdout! });
  for await (const line of lines) {
    const port = (JSON.parse(line) as { port?: number }).port;
    if (port) return port;
  }
  throw new Error(`${args.join(' ')} exited before listening`);
}

async function startIcalpush(
  upstream: string,
  dir: string,
  children: ChildProcess[],
  logLevel: 'info' | 'warn',
): Promise<number> {
  const port = await freePort();
  const config = join(dir, `bench-${logLevel}.yaml`);
  await writeFile(
    config,
    `listen: 127.0.0.1:${port}\nupstream: ${upstream}\nstore: memory\nfeeds:\n  - path: /calendar/{listing}.ics\nlog:\n  level: ${logLevel}\n`,
  );
  // At `info` every request writes its log line to a pipe we drain: the realistic cost.
  const child = spawn(node, ['src/main.ts', 'serve', '--config', config], {
    cwd: root,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  children.push(child);
  child.stdout!.resume();
  for (let attempt = 0; attempt < 100; attempt++) {
    try {
      const res = await request(`http://127.0.0.1:${port}/_icalpush/healthz`);
      await res.body.dump();
      if (res.statusCode === 200) return port;
    } catch {
      await sleep(50);
    }
  }
  throw new Error('icalpush did not come up');
}

type Throughput = { reqPerSec: number; p50Ms: number; p99Ms: number; errors: number };

// Every answer here should be a 200: anything else counts as an error.
async function autocannon(url: string, seconds: number): Promise<Throughput> {
  const r = await runAutocannon(url, seconds);
  return { reqPerSec: r.reqPerSec, p50Ms: r.p50Ms, p99Ms: r.p99Ms, errors: r.errors + r.non2xx };
}

type Fixed = { p50Ms: number; p99Ms: number; sent: number; errors: number };

async function fixedRate(url: string, rate: number, seconds: number): Promise<Fixed> {
  return runJsonChild<Fixed>('bench/fixtures/rate-load.ts', [url, String(rate), String(seconds)]);
}

/** Runs a bench fixture script in its own process and parses the JSON it prints. */
export async function runJsonChild<T>(script: string, args: string[]): Promise<T> {
  const child = spawn(node, [script, ...args], { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => {
    out += d;
  });
  await once(child, 'exit');
  return JSON.parse(out) as T;
}

/** The run with the median throughput. */
function median(list: Throughput[]): Throughput {
  const sorted = [...list].sort((a, b) => a.reqPerSec - b.reqPerSec);
  return sorted[Math.floor(sorted.length / 2)]!;
}

export const fmt = (n: number, digits = 0) => (Number.isFinite(n) ? n.toFixed(digits) : '-');

/** Runs the passthrough benchmark and returns its table as text. */
export async function main(options: { seconds?: number } = {}): Promise<string> {
  const seconds = options.seconds ?? Number(process.env.BENCH_SECONDS ?? 5);
  const rounds = Number(process.env.BENCH_ROUNDS ?? 3);
  const children: ChildProcess[] = [];
  const dir = await mkdtemp(join(tmpdir(), 'icalpush-bench-'));
  try {
    const upstreamPort = await startProcess(['bench/fixtures/upstream.ts'], children);
    const upstream = `http://127.0.0.1:${upstreamPort}`;
    const targets: Target[] = [
      { name: 'direct', url: upstream },
      {
        name: 'bare undici pipe',
        url: `http://127.0.0.1:${await startProcess(['bench/fixtures/bare-undici.ts', upstream], children)}`,
      },
      {
        name: 'bare http-proxy-3',
        url: `http://127.0.0.1:${await startProcess(['bench/fixtures/bare-http-proxy.ts', upstream], children)}`,
      },
      {
        name: 'icalpush',
        url: `http://127.0.0.1:${await startIcalpush(upstream, dir, children, 'info')}`,
      },
      {
        name: 'icalpush, no request log',
        url: `http://127.0.0.1:${await startIcalpush(upstream, dir, children, 'warn')}`,
      },
    ];
    const rows: string[] = [];
    rows.push(
      `| path | size | req/s (50 conns, median of ${rounds}) | p50 ms | p99 ms | × direct | × bare undici |`,
    );
    rows.push('|---|---|---:|---:|---:|---:|---:|');
    for (const size of ['small', 'large'] as const) {
      // Rounds interleave the targets so drift on a noisy machine hits them all alike; the
      // median round is reported.
      const runs = new Map<string, Throughput[]>(targets.map((t) => [t.name, []]));
      for (const target of targets) await autocannon(`${target.url}/${size}`, 1);
      for (let round = 0; round < rounds; round++) {
        for (const target of targets) {
          runs.get(target.name)!.push(await autocannon(`${target.url}/${size}`, seconds));
        }
      }
      const results = new Map([...runs].map(([name, list]) => [name, median(list)]));
      const direct = results.get('direct')!.reqPerSec;
      const bare = results.get('bare undici pipe')!.reqPerSec;
      for (const target of targets) {
        const r = results.get(target.name)!;
        rows.push(
          `| ${target.name} | ${size === 'small' ? '≈400 B' : '200 KB'} | ${fmt(r.reqPerSec)} | ${fmt(r.p50Ms)} | ${fmt(r.p99Ms)} | ${fmt(r.reqPerSec / direct, 2)} | ${fmt(r.reqPerSec / bare, 2)} |${r.errors ? ` ${r.errors} errors` : ''}`,
        );
      }
    }
    const rate = 500;
    const direct = await fixedRate(`${targets[0]!.url}/small`, rate, seconds);
    const sidecar = await fixedRate(`${targets[3]!.url}/small`, rate, seconds);
    rows.push('');
    rows.push(`| at ${rate} req/s, ≈400 B | p50 ms | p99 ms | errors |`);
    rows.push('|---|---:|---:|---:|');
    rows.push(`| direct | ${fmt(direct.p50Ms, 2)} | ${fmt(direct.p99Ms, 2)} | ${direct.errors} |`);
    rows.push(
      `| icalpush | ${fmt(sidecar.p50Ms, 2)} | ${fmt(sidecar.p99Ms, 2)} | ${sidecar.errors} |`,
    );
    rows.push(
      `| added by icalpush | ${fmt(sidecar.p50Ms - direct.p50Ms, 2)} | ${fmt(sidecar.p99Ms - direct.p99Ms, 2)} | |`,
    );
    return rows.join('\n');
  } finally {
    for (const child of children) child.kill('SIGTERM');
    await rm(dir, { recursive: true, force: true });
  }
}

if (import.meta.main) {
  process.stdout.write(`${await main()}\n`);
}
