// Runs the command line as an operator does: a real process of src/main.ts, its exit code and output.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';

/** Runs `icalpush <args>` on this Node; resolves with its exit code and output. */
export async function run(args: string[], env: Record<string, string> = {}) {
  const child = spawn(process.execPath, ['src/main.ts', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { PATH: process.env.PATH ?? '', ...env },
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => {
    stdout += d;
  });
  child.stderr.setEncoding('utf8').on('data', (d: string) => {
    stderr += d;
  });
  const [code] = (await once(child, 'exit')) as [number];
  return { code, stdout, stderr };
}

/** Writes `text` as proxy.yaml in a fresh directory removed at teardown; its path. */
export async function tempConfig(t: TestContext, text: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'icalpush-cli-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const path = join(dir, 'proxy.yaml');
  await writeFile(path, text);
  return path;
}
