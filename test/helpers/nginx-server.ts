// A real nginx for the HTTP-cache tests: the machine's nginx (Debian's, with the dav-ext module for
// PROPFIND) started as a child process (`daemon off;`) with a config, pid file, logs and temp
// directories of its own in a temp directory, on a free port, and stopped by close(). Run as root,
// its workers drop to `nobody`, so everything they write to is made writable for them.
//
// Locations, each a cache of its own below the document root:
//   /cache/      WebDAV PUT, DELETE, PROPFIND; Basic auth on everything but GET and HEAD
//   /ro/         readable and listable, every write forbidden (403)
//   /nochunk/    like /cache/, but a chunked request body gets 411 Length Required
//   /nolist/     like /cache/, without PROPFIND (405), as a plain upload server
//
// With `tls` (test/helpers/test-pki.ts), the server speaks https only, with the PKI's server
// certificate, and a second server on a port of its own (`mtlsOrigin`) serves the same locations
// but requires a client certificate signed by the PKI's CA (`ssl_verify_client on`, which nginx
// takes per server, not per location): without one, nginx answers every request 400 "No required
// SSL certificate was sent".
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import type { TestPki } from './test-pki.js';
import { setTimeout as sleep } from 'node:timers/promises';

export const NGINX = '/usr/sbin/nginx';
const DAV_EXT = '/usr/share/nginx/modules/ngx_http_dav_ext_module.so';

export interface TestNginx {
  port: number;
  /** http://127.0.0.1:PORT, or https:// with `tls`. */
  origin: string;
  /** With `tls`: https://127.0.0.1:PORT2, the same locations behind a required client certificate. */
  mtlsOrigin?: string;
  /** The document root: /cache/ is `${root}/cache`. */
  root: string;
  user: string;
  password: string;
  /** The access log's lines: `METHOD URI STATUS "TRANSFER-ENCODING" "CONTENT-LENGTH" "CONTENT-TYPE"`. */
  requests(): Promise<string[]>;
  close(): Promise<void>;
}

/** Why nginx cannot run here, or undefined when it can. */
export function nginxMissing(): string | undefined {
  if (!existsSync(NGINX)) return `${NGINX} is not installed (apt-get install nginx)`;
  if (!existsSync(DAV_EXT)) return `${DAV_EXT} is not installed (apt-get install libnginx-mod-http-dav-ext)`;
  return undefined;
}

/**
 * Call at the top of a test that needs nginx: true when it is there. Without it, a failure when CI
 * is set (.ci/run installs it; a skip would hide breakage), else a loud skip.
 */
export function requireNginx(t: TestContext, also: string | undefined = undefined): boolean {
  const missing = nginxMissing() ?? also;
  if (missing === undefined) return true;
  if (process.env['CI'] !== undefined && process.env['CI'] !== '') {
    throw new Error(`${missing}; CI is set, so this is a failure, not a skip`);
  }
  console.error(`\n!!!!!!!! SKIPPED: ${missing} !!!!!!!!\n`);
  t.skip(missing);
  return false;
}

export async function startNginx(
  opts: { user?: string; password?: string; tls?: TestPki } = {},
): Promise<TestNginx> {
  const dir = await mkdtemp(join(tmpdir(), 'loft-nginx-'));
  const user = opts.user ?? 'loft';
  const password = opts.password ?? 'nginx-test-password-1';
  const root = join(dir, 'www');
  for (const sub of ['www', 'www/cache', 'www/ro', 'www/nochunk', 'www/nolist', 'tmp']) {
    await mkdir(join(dir, sub), { recursive: true });
  }
  // The workers run as nobody: they must traverse the temp directory and write below www and tmp.
  await chmod(dir, 0o755);
  for (const sub of ['www', 'www/cache', 'www/ro', 'www/nochunk', 'www/nolist', 'tmp']) {
    await chmod(join(dir, sub), 0o777);
  }
  await writeFile(join(dir, 'htpasswd'), `${user}:{PLAIN}${password}\n`, { mode: 0o644 });
  const port = await freePort();
  const mtlsPort = opts.tls !== undefined ? await freePort() : undefined;
  await writeFile(join(dir, 'nginx.conf'), configText(dir, port, opts.tls, mtlsPort));
  const child = spawn(NGINX, ['-p', dir, '-c', join(dir, 'nginx.conf'), '-e', join(dir, 'error.log')], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const stderr: Buffer[] = [];
  child.stderr.on('data', (c: Buffer) => stderr.push(c));
  try {
    await waitForPort(port, child, () => Buffer.concat(stderr).toString());
    if (mtlsPort !== undefined) await waitForPort(mtlsPort, child, () => Buffer.concat(stderr).toString());
  } catch (err) {
    child.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  return {
    port,
    origin: `${opts.tls !== undefined ? 'https' : 'http'}://127.0.0.1:${port}`,
    ...(mtlsPort !== undefined ? { mtlsOrigin: `https://127.0.0.1:${mtlsPort}` } : {}),
    root,
    user,
    password,
    async requests() {
      const text = await readFile(join(dir, 'access.log'), 'utf8').catch(() => '');
      return text.split('\n').filter((l) => l !== '');
    },
    async close() {
      await stop(child);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

function configText(dir: string, port: number, tls?: TestPki, mtlsPort?: number): string {
  const dav = (extra: string, list = true) => `
      dav_methods PUT DELETE;
      ${list ? 'dav_ext_methods PROPFIND OPTIONS;' : ''}
      create_full_put_path on;
      dav_access user:rw group:rw all:r;
      ${extra}`;
  const auth = `limit_except GET HEAD { auth_basic "loft"; auth_basic_user_file ${dir}/htpasswd; }`;
  const certificate =
    tls === undefined ? '' : `ssl_certificate ${tls.serverCert}; ssl_certificate_key ${tls.serverKey};`;
  const server = (p: number, directives: string) => `server {
    listen 127.0.0.1:${p}${tls === undefined ? '' : ' ssl'};
    ${certificate} ${directives}
    if ($loft_refuse_chunked) { return 411; }
    root ${dir}/www;
    location /cache/ { ${dav(auth)} }
    location /ro/ { ${dav('limit_except GET HEAD PROPFIND { deny all; }')} }
    location /nochunk/ { ${dav(auth)} }
    location /nolist/ { ${dav(auth, false)} }
  }`;
  return `
daemon off;
master_process on;
worker_processes 1;
user nobody nogroup;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
load_module ${DAV_EXT};
events { worker_connections 512; }
http {
  log_format loft '$request_method $uri $status "$http_transfer_encoding" "$http_content_length" "$content_type"';
  access_log ${dir}/access.log loft;
  client_body_temp_path ${dir}/tmp/body;
  proxy_temp_path ${dir}/tmp/proxy;
  fastcgi_temp_path ${dir}/tmp/fastcgi;
  uwsgi_temp_path ${dir}/tmp/uwsgi;
  scgi_temp_path ${dir}/tmp/scgi;
  client_max_body_size 0;
  # At server level: an \`if\` inside the location would not run for PUT, which limit_except
  # moves into a nested location of its own before the location's rewrite phase.
  map "$uri|$http_transfer_encoding" $loft_refuse_chunked { "~^/nochunk/.*\\|.*chunked" 1; default 0; }
  ${server(port, '')}
  ${mtlsPort !== undefined && tls !== undefined ? server(mtlsPort, `ssl_verify_client on; ssl_client_certificate ${tls.caCert};`) : ''}
}
`;
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

async function waitForPort(port: number, child: ChildProcess, stderr: () => string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (child.exitCode !== null) throw new Error(`nginx exited (${child.exitCode}): ${stderr()}`);
    const ok = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (ok) return;
    await sleep(50);
  }
  throw new Error(`nginx did not listen on ${port}: ${stderr()}`);
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM'); // nginx's fast shutdown
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}
