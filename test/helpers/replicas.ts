// Several `icalpush serve` processes sharing one store, for the end-to-end tests of SPEC "Several replicas":
// each replica a child process on a port of its own with the same config otherwise, its JSON log lines
// kept, stopped with SIGKILL by its PID when the test ends; a round-robin front (a few lines of node:http,
// what a load balancer does); polling with a deadline; and which replica owns a TCP connection, read from
// `ss` or /proc, so a test can tell which replica sent a request a fake peer is holding.
import { type ChildProcess, execFile, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, readlink, rm, writeFile } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { request } from 'undici';
import { freePort } from '../../src/demo/mesh.ts';
import { type FakeServer, startServer } from './servers.ts';

const root = fileURLToPath(new URL('../../', import.meta.url));
const mainPath = fileURLToPath(new URL('../../src/main.ts', import.meta.url));

/** One sidecar process. */
export type Replica = {
  /** `A`, `B`, `C`…: how failure messages name it. */
  readonly name: string;
  readonly url: string;
  readonly port: number;
  readonly pid: number;
  readonly child: ChildProcess;
  /** Resolves with the exit code and signal once the process is gone. */
  readonly exited: Promise<[number | null, NodeJS.Signals | null]>;
  /** True once the process exited. */
  gone(): boolean;
  /** Every JSON log line written to stdout so far, parsed (lines reach stdout within a second). */
  lines(): Array<Record<string, unknown>>;
  /** The last of what the process wrote (stdout and stderr), for failure messages. */
  output(): string;
  /** kill -9; resolves once the process is gone. */
  kill(): Promise<void>;
};

/** Options of startReplicas. */
export type ReplicaOptions = {
  count: number;
  /** The config every replica shares; `listen` is set per replica. JSON is written (JSON is YAML). */
  config: Record<string, unknown>;
};

/** Starts `count` replicas and waits until each answers readyz with 200; all are killed when `t` ends. */
export async function startReplicas(t: Pick<TestContext, 'after'>, options: ReplicaOptions): Promise<Replica[]> {
  const dir = await mkdtemp(join(tmpdir(), 'icalpush-replicas-'));
  const replicas: Replica[] = [];
  t.after(async () => {
    await Promise.all(replicas.map((replica) => replica.kill()));
    await rm(dir, { recursive: true, force: true });
  });
  const names = Array.from({ length: options.count }, (_, i) => String.fromCharCode(65 + i));
  await Promise.all(names.map(async (name) => {
    const replica = await spawnReplica(dir, name, options.config);
    replicas.push(replica);
    await until(async () => {
      if (replica.gone()) throw new Error(`replica ${name} exited before it was ready:\n${replica.output()}`);
      return (await statusOf(`${replica.url}/_icalpush/readyz`)) === 200;
    }, 20_000, () => `replica ${name} not ready:\n${replica.output()}`);
  }));
  return names.map((name) => replicas.find((r) => r.name === name) as Replica);
}

async function spawnReplica(dir: string, name: string, shared: Record<string, unknown>): Promise<Replica> {
  const port = await freePort();
  const configPath = join(dir, `replica-${name}.yaml`);
  await writeFile(configPath, JSON.stringify({ ...shared, listen: `127.0.0.1:${port}` }, null, 2));
  const child = spawn(process.execPath, [mainPath, 'serve', '--config', configPath], {
    cwd: root,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { PATH: process.env.PATH ?? '' },
  });
  const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
  let gone = false;
  void exited.then(() => {
    gone = true;
  });
  const parsed: Array<Record<string, unknown>> = [];
  let partial = '';
  let tail = '';
  const keep = (text: string) => {
    tail = (tail + text).slice(-16_000);
  };
  child.stdout?.setEncoding('utf8').on('data', (text: string) => {
    keep(text);
    const lines = (partial + text).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) {
      if (line.trim() === '') continue;
      try {
        parsed.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        // Not a log line: kept in the output only.
      }
    }
  });
  child.stderr?.setEncoding('utf8').on('data', keep);
  if (child.pid === undefined) throw new Error(`replica ${name} did not start`);
  return {
    name,
    url: `http://127.0.0.1:${port}`,
    port,
    pid: child.pid,
    child,
    exited,
    gone: () => gone,
    lines: () => parsed,
    output: () => tail,
    async kill() {
      if (gone) return;
      child.kill('SIGKILL');
      await exited;
    },
  };
}

/** The round-robin front: each request goes to the next replica still in `targets`, as it came. */
export type Front = FakeServer & {
  /** The replicas requests go to, in turn; a test removes one it killed, as a load balancer's check would. */
  targets: Replica[];
  /** Which replica got each request so far, in order. */
  readonly routed: string[];
};

/** Starts the front on 127.0.0.1 over `replicas`; closed when `t` ends. */
export async function startFront(t: TestContext, replicas: readonly Replica[]): Promise<Front> {
  let next = 0;
  const routed: string[] = [];
  const front = { targets: [...replicas], routed } as Partial<Front> & { targets: Replica[]; routed: string[] };
  const server = await startServer(t, (req, res) => {
    const targets = front.targets;
    const target = targets[next % targets.length] as Replica;
    next += 1;
    routed.push(target.name);
    const out = httpRequest({
      host: '127.0.0.1',
      port: target.port,
      method: req.method,
      path: req.url,
      headers: req.headers,
    }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    out.on('error', (err) => {
      if (res.headersSent) res.destroy(err);
      else res.writeHead(502, { 'content-type': 'text/plain' }).end(`front: ${target.name}: ${err.message}\n`);
    });
    req.pipe(out);
  });
  return Object.assign(front, server) as Front;
}

/** Resolves once `check` holds, trying every 25 ms (a refused connection counts as not yet); rejects after `ms`
 * naming `what()`. */
export async function until(check: () => boolean | Promise<boolean>, ms: number, what: () => string): Promise<void> {
  const deadline = performance.now() + ms;
  for (;;) {
    try {
      if (await check()) return;
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (code !== 'ECONNREFUSED' && code !== 'ECONNRESET' && code !== 'UND_ERR_SOCKET') throw err;
    }
    if (performance.now() > deadline) throw new Error(`not within ${ms} ms: ${what()}`);
    await sleep(25);
  }
}

/** Resolves once `count()` has not changed for `quietMs` (it is read every 25 ms); rejects after `ms`. */
export async function settled(count: () => number, quietMs: number, ms: number, what: () => string): Promise<void> {
  const deadline = performance.now() + ms;
  let last = count();
  let since = performance.now();
  for (;;) {
    await sleep(25);
    const now = count();
    if (now !== last) {
      last = now;
      since = performance.now();
    } else if (performance.now() - since >= quietMs) {
      return;
    }
    if (performance.now() > deadline) throw new Error(`still changing after ${ms} ms: ${what()}`);
  }
}

/** The status code of a GET of `url` (body drained). */
export async function statusOf(url: string): Promise<number> {
  const res = await request(url);
  await res.body.dump();
  return res.statusCode;
}

const hasSs = spawnSync('ss', ['-V'], { stdio: 'ignore' }).status === 0;
const execFileAsync = promisify(execFile);

/** True where a connection's owner can be found: `ss` (netlink, iproute2), else /proc (Linux). */
export const canFindSocketOwners = hasSs || existsSync('/proc/net/tcp');

/**
 * Which of `replicas` holds the TCP connection from 127.0.0.1:`localPort` to 127.0.0.1:`remotePort`: what a
 * fake peer answers "who is asking me?" with, from the request's `socket.remotePort` and its own port.
 * Undefined when none of them does. Asks `ss` where it is installed; else reads /proc, where the table is
 * read a page at a time and an entry can be missed while other connections come and go, so several passes.
 */
export async function socketOwner(
  replicas: readonly Replica[],
  localPort: number,
  remotePort: number,
): Promise<Replica | undefined> {
  const alive = replicas.filter((replica) => !replica.gone());
  if (hasSs) {
    const { stdout } = await execFileAsync('ss',
      ['-tnpH', 'state', 'established', `( sport = :${localPort} and dport = :${remotePort} )`], { encoding: 'utf8' });
    const pids = new Set([...stdout.matchAll(/pid=(\d+)/g)].map((match) => Number(match[1])));
    return alive.find((replica) => pids.has(replica.pid));
  }
  if (!existsSync('/proc/net/tcp')) return undefined;
  const hex = (port: number) => port.toString(16).toUpperCase().padStart(4, '0');
  const inodes = new Set<string>();
  for (let pass = 0; pass < 50 && inodes.size === 0; pass += 1) {
    for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
      const text = await readFile(table, 'utf8').catch(() => '');
      for (const line of text.split('\n').slice(1)) {
        const fields = line.trim().split(/\s+/);
        const [local, remote, inode] = [fields[1], fields[2], fields[9]];
        if (local?.endsWith(`:${hex(localPort)}`) && remote?.endsWith(`:${hex(remotePort)}`) && inode && inode !== '0') {
          inodes.add(inode);
        }
      }
    }
  }
  for (const replica of alive) {
    const fdDir = `/proc/${replica.pid}/fd`;
    const fds = await readdir(fdDir).catch(() => [] as string[]);
    for (const fd of fds) {
      const link = await readlink(join(fdDir, fd)).catch(() => '');
      const match = /^socket:\[(\d+)\]$/.exec(link);
      if (match && inodes.has(match[1] as string)) return replica;
    }
  }
  return undefined;
}
