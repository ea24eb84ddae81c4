// `icalpush reload` and SIGHUP against a real `icalpush serve` process (SPEC "Reload"): the sidecar re-reads
// its own config and listings file; the command prints what was put in force, or every problem and that the
// configuration in force is kept.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { request } from 'undici';
import { run, tempConfig } from '../helpers/cli.ts';
import { eventually } from '../helpers/network.ts';
import { closedPort } from '../helpers/servers.ts';

const header = 'listing,peer_name,peer_url,notify,timezone';

test('icalpush reload and SIGHUP re-read the listings file of a running sidecar; a bad one is refused', async (t) => {
  const port = await closedPort();
  const config = await tempConfig(t, [
    `listen: 127.0.0.1:${port}`, 'upstream: http://127.0.0.1:9', 'store: memory', 'feeds:',
    '  - path: /calendar/{listing}.ics', 'listingsFile: ./listings.csv', 'push:', '  watch: 0',
  ].join('\n'));
  const listings = join(dirname(config), 'listings.csv');
  await writeFile(listings, `${header}\na,airbnb,https://airbnb.example/a.ics,,\n`);
  const child = spawn(process.execPath, ['src/main.ts', 'serve', '--config', config],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: process.env.PATH ?? '' } });
  t.after(async () => {
    if (child.exitCode === null) {
      child.kill('SIGTERM');
      await once(child, 'exit');
    }
  });
  let output = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => {
    output += d;
  });
  child.stderr.setEncoding('utf8').on('data', (d: string) => {
    output += d;
  });
  const base = `http://127.0.0.1:${port}`;
  const map = async () => {
    const res = await request(`${base}/_icalpush/status`);
    type Map = { listings: number; reloads: number; lastReload?: { ok: boolean } };
    return ((await res.body.json()) as { map: Map }).map;
  };
  await eventually(async () => {
    try {
      return (await map()).listings === 1;
    } catch {
      return false;
    }
  }, 20_000);

  await writeFile(listings, `${header}\na,airbnb,https://airbnb.example/a.ics,,\nb,,,,\n`);
  const ok = await run(['reload', '--config', config]);
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stdout, /reloaded: 2 listings \(1 added, 0 removed, 0 changed\)/);

  // A broken listings file still reaches the sidecar (the command reads only where it listens), and is refused.
  await writeFile(listings, `${header}\na,airbnb,not-a-url,,\n`);
  const refused = await run(['reload', '--config', config]);
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /reload refused; the configuration in force is kept\nlistings\.a\.peers\[0\]\.url: must be an http.*listings\.csv line 2\)/);

  await writeFile(listings, `${header}\nc,,,,\n`);
  child.kill('SIGHUP');
  await eventually(async () => (await map()).reloads === 2, 10_000);
  assert.equal((await map()).listings, 1);
  assert.equal(child.exitCode, null, output);
});

test('icalpush reload: a sidecar that is not running is named', async (t) => {
  const config = await tempConfig(t, [`listen: 127.0.0.1:${await closedPort()}`, 'upstream: http://127.0.0.1:9',
    'store: memory', 'feeds:', '  - path: /calendar/{listing}.ics'].join('\n'));
  const down = await run(['reload', '--config', config]);
  assert.equal(down.code, 1);
  assert.match(down.stderr, /not reachable .*is it running\?/);
});
