// A real nginx for tests, run as any user: the binary (undefined where it is not installed; .ci/run installs
// it), a main config whose every path (pid, logs, temp files) is under a test's own directory, and `nginx -t`.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/** The nginx binary, or undefined when none is installed. */
export const nginxBinary: string | undefined = ['/usr/sbin/nginx', '/usr/local/sbin/nginx'].find(
  (bin) => spawnSync(bin, ['-v']).status === 0,
);

/** Writes `dir`/nginx.conf: a foreground, single-process nginx keeping everything under `dir`, with `http` the
 * body of its http block; the path written. */
export async function writeNginxConfig(dir: string, http: string): Promise<string> {
  const path = join(dir, 'nginx.conf');
  await writeFile(path, `daemon off;
master_process off;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
${http}
}
`);
  return path;
}

/** `nginx -t` on the config `writeNginxConfig` wrote in `dir`: fails the test with nginx's own words. */
export function assertNginxConfigValid(dir: string): void {
  const check = spawnSync(nginxBinary!, ['-t', '-p', dir, '-c', join(dir, 'nginx.conf')], { encoding: 'utf8' });
  assert.equal(check.status, 0, check.stderr);
}
