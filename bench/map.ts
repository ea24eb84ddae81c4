// A platform's whole connection map (SPEC "Reload": "A map of 10,000 listings × 3 peers checks in ≤ 1 s and
// starts in ≤ 2 s"): for a generated map in each listings-file format, and an empty map as the baseline of a
// process start, the wall time of `icalpush check` (a whole process: Node, modules, the file, validation, the
// summary), of `icalpush serve` from spawn to its first 200 on readyz, the resident memory once ready (and per
// listing, over the empty map's), and a reload of the whole map while healthz is asked every 5 ms (the slowest
// answer meanwhile is what the reload cost the requests). Run: `npm run bench -- map`; BENCH_LISTINGS changes
// the size (default 10,000 listings × 3 peers).
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { request } from 'undici';
import { freePort } from '../src/demo/mesh.ts';
import { type MapShape, writeConnectionMap } from './fixtures/connection-map.ts';
import { fmt, runJsonChild } from './passthrough.ts';

const root = new URL('..', import.meta.url).pathname;
const node = process.execPath;
const listings = Number(process.env.BENCH_LISTINGS ?? 10_000);
const peers = 3;
const repeats = 3;

type Row = { name: string; checkMs: number; readyMs: number; rssMiB: number; heapBytes: number; reloadMs: number;
  worstHealthzMs: number; loopDelayMs: number; };

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? Number.NaN;

/** Wall time of `icalpush check` on the config; throws when it does not exit 0. */
async function checkMs(config: string): Promise<number> {
  const started = performance.now();
  const child = spawn(node, ['src/main.ts', 'check', '--config', config], { cwd: root, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => {
    stderr += d;
  });
  const [code] = (await once(child, 'exit')) as [number];
  if (code !== 0) throw new Error(`check exited ${code}: ${stderr.slice(0, 2_000)}`);
  return performance.now() - started;
}

/** Starts `serve`, times spawn → readyz 200, reads its RSS once settled, times a reload under healthz probes. */
async function serveFigures(config: string, port: number) {
  const started = performance.now();
  const child = spawn(node, ['src/main.ts', 'serve', '--config', config], { cwd: root, stdio: ['ignore', 'ignore', 'inherit'] });
  try {
    const base = `http://127.0.0.1:${port}`;
    let readyMs = Number.NaN;
    for (;;) {
      try {
        const res = await request(`${base}/_icalpush/readyz`);
        await res.body.dump();
        if (res.statusCode === 200) {
          readyMs = performance.now() - started;
          break;
        }
      } catch {
        // Not listening yet.
      }
      if (performance.now() - started > 60_000) throw new Error('not ready within 60 s');
      await sleep(5);
    }
    await sleep(1_000);
    const status = await readFile(`/proc/${child.pid}/status`, 'utf8');
    const rssKiB = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? Number.NaN);
    // A reload of the same map (every listing compared, the whole map replaced), healthz probed meanwhile.
    let probing = true;
    let worst = 0;
    const probes = (async () => {
      while (probing) {
        const t0 = performance.now();
        const res = await request(`${base}/_icalpush/healthz`);
        await res.body.dump();
        worst = Math.max(worst, performance.now() - t0);
        await sleep(5);
      }
    })();
    await sleep(50);
    // A scrape starts a new window of the event-loop delay metric; the one after the reload reads its max.
    const loopDelayMaxMs = async () => {
      const text = await (await request(`${base}/_icalpush/metrics`)).body.text();
      return Number(/^icalpush_event_loop_delay_seconds\{stat="max"\} (\S+)/m.exec(text)?.[1] ?? Number.NaN) * 1000;
    };
    await loopDelayMaxMs();
    const t0 = performance.now();
    const res = await request(`${base}/_icalpush/reload`, { method: 'POST', headersTimeout: 60_000 });
    const outcome = await res.body.json() as { ok: boolean };
    const reloadMs = performance.now() - t0;
    if (!outcome.ok) throw new Error(`reload refused: ${JSON.stringify(outcome)}`);
    await sleep(50);
    probing = false;
    await probes;
    const loopDelayMs = await loopDelayMaxMs();
    return { readyMs, rssMiB: rssKiB / 1024, reloadMs, worstHealthzMs: worst, loopDelayMs };
  } finally {
    child.kill('SIGTERM');
    await once(child, 'exit');
  }
}

async function measure(name: string, shape: MapShape): Promise<Row> {
  const dir = await mkdtemp(join(tmpdir(), 'icalpush-map-'));
  try {
    const port = await freePort();
    const config = await writeConnectionMap(dir, { ...shape, listen: `127.0.0.1:${port}` }, 'push:\n  watch: 0\n');
    const heap = await runJsonChild<{ heapBytes: number }>('--expose-gc', ['bench/fixtures/map-heap.ts', config]);
    const checks: number[] = [];
    for (let i = 0; i < repeats; i++) checks.push(await checkMs(config));
    const serves = [];
    for (let i = 0; i < repeats; i++) serves.push(await serveFigures(config, port));
    return {
      name,
      checkMs: median(checks),
      readyMs: median(serves.map((s) => s.readyMs)),
      rssMiB: median(serves.map((s) => s.rssMiB)),
      heapBytes: heap.heapBytes,
      reloadMs: median(serves.map((s) => s.reloadMs)),
      worstHealthzMs: Math.max(...serves.map((s) => s.worstHealthzMs)),
      loopDelayMs: Math.max(...serves.map((s) => s.loopDelayMs)),
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export async function main(): Promise<string> {
  const rows: Row[] = [];
  rows.push(await measure('no listings (a process start)', { listings: 0, peers, format: 'csv' }));
  for (const format of ['csv', 'yaml', 'json'] as const) {
    rows.push(await measure(`${listings.toLocaleString('en')} × ${peers} peers, ${format.toUpperCase()}`,
      { listings, peers, format }));
  }
  const empty = rows[0]!;
  const out = [
    '| map | `icalpush check` (wall, median of 3) | `serve` spawn → readyz 200 | RSS once ready | RSS per listing over the empty map | heap per listing (config + plans, after GC) | reload of the whole map | slowest healthz during the reload | event loop delay during the reload (max) |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...rows.map((r) => `| ${r.name} | ${fmt(r.checkMs)} ms | ${fmt(r.readyMs)} ms | ${fmt(r.rssMiB, 1)} MiB | ${
      r === empty ? '-' : `${fmt(((r.rssMiB - empty.rssMiB) * 1024 * 1024) / listings / 1024, 2)} KiB`} | ${
      r === empty ? '-' : `${fmt(r.heapBytes / listings / 1024, 2)} KiB`} | ${
      r === empty ? '-' : `${fmt(r.reloadMs)} ms`} | ${r === empty ? '-' : `${fmt(r.worstHealthzMs, 1)} ms`} | ${
      r === empty ? '-' : `${fmt(r.loopDelayMs, 1)} ms`} |`),
    '',
    `Each \`check\` and \`serve\` is a whole \`node src/main.ts\` process (Node's own start and module loading included: the first row); \`push.watch: 0\`, so memory is the map's, not feed snapshots'. The reload reads and validates the files in a worker thread and swaps the map in one turn of the event loop; healthz is asked every 5 ms meanwhile (its slowest answer includes the CPU the reading worker takes from the process on two shared cores), and the event loop's own delay (\`icalpush_event_loop_delay_seconds{stat="max"}\`, Node's monitorEventLoopDelay, its 10 ms sampling period taken off) is read over the reload. Goals (SPEC "Reload"): check ≤ 1 s, start ≤ 2 s:`,
    ...rows.slice(1).map((r) => `- ${r.name}: check ${fmt(r.checkMs)} ms — ${r.checkMs <= 1_000 ? '**met**' : '**not met**'}; start ${fmt(r.readyMs)} ms — ${r.readyMs <= 2_000 ? '**met**' : '**not met**'}`),
  ];
  return out.join('\n');
}
