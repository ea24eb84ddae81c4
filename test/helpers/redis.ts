// A real redis-server for tests: started on a free 127.0.0.1 port with nothing persisted, stopped by its
// PID (SIGKILL after 5 s), and restartable on the same port to play an outage. Tests that need it skip
// where it is not installed; CI installs it (.ci/run).
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import type { TestContext } from 'node:test';
import { createClient } from '@redis/client';
import { freePort } from '../../src/demo/mesh.ts';

/** The redis-server binary, or undefined when it is not installed. */
export const redisServerBinary: string | undefined = ['redis-server', '/usr/bin/redis-server', '/usr/sbin/redis-server']
  .find((bin) => spawnSync(bin, ['--version'], { stdio: 'ignore' }).status === 0);

/** Why Redis tests are skipped here, or false when they run. */
export const skipWithoutRedis: string | false = redisServerBinary === undefined
  ? 'redis-server is not installed (CI installs it)' : false;

/** One running (or stopped) redis-server. */
export type RedisServer = {
  readonly url: string;
  readonly port: number;
  /** The PID of the running server (undefined while stopped). */
  readonly pid: number | undefined;
  /** Stops the server (SIGTERM, SIGKILL after 5 s); resolves once it exited. */
  stop(): Promise<void>;
  /** Starts it again on the same port, empty. */
  start(): Promise<void>;
  /** Empties every database. */
  flush(): Promise<void>;
};

/** Starts a redis-server, stopped when `t` ends (without `t`, the caller stops it). */
export async function startRedis(t?: Pick<TestContext, 'after'>): Promise<RedisServer> {
  if (redisServerBinary === undefined) throw new Error('redis-server is not installed');
  const binary = redisServerBinary;
  let child: ChildProcess | undefined;
  let port = 0;

  async function launch(onPort: number | undefined): Promise<void> {
    for (let attempt = 0; ; attempt += 1) {
      const candidate = onPort ?? await freePort();
      const proc = spawn(binary, ['--port', String(candidate), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
        '--protected-mode', 'yes', '--daemonize', 'no', '--loglevel', 'notice', '--databases', '1'],
      { stdio: ['ignore', 'pipe', 'pipe'] });
      let output = '';
      const ready = await new Promise<boolean>((resolve) => {
        const onData = (chunk: Buffer) => {
          output += chunk.toString();
          if (/Ready to accept connections/.test(output)) resolve(true);
        };
        proc.stdout?.on('data', onData);
        proc.stderr?.on('data', onData);
        proc.once('exit', () => resolve(false));
      });
      if (ready) {
        child = proc;
        port = candidate;
        return;
      }
      // Another process took the free port in between: another one (the same one when restarting).
      if (attempt >= 20) throw new Error(`redis-server did not start: ${output.slice(-500)}`);
      if (onPort !== undefined) await new Promise((resolve) => setImmediate(resolve));
    }
  }

  async function stop(): Promise<void> {
    const proc = child;
    child = undefined;
    if (proc === undefined || proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = once(proc, 'exit');
    proc.kill('SIGTERM');
    const force = setTimeout(() => proc.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(force);
  }

  await launch(undefined);
  t?.after(stop);
  return {
    get url() {
      return `redis://127.0.0.1:${port}`;
    },
    get port() {
      return port;
    },
    get pid() {
      return child?.pid;
    },
    stop,
    start: () => launch(port),
    async flush() {
      const client = createClient({ url: `redis://127.0.0.1:${port}` });
      await client.connect();
      try {
        await client.sendCommand(['FLUSHALL']);
      } finally {
        await client.close();
      }
    },
  };
}
