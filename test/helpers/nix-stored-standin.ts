// A small protocol stand-in that answers as nix-stored (github.com/ChrisOboe/nix-stored) does, from
// its src/schemas/api.yaml and src/nix-stored.go. It is NOT nix-stored (which cannot be installed
// here): it reproduces the behaviour loft has to cope with, so that behaviour is tested.
//  - Routes (a go-chi router): GET/HEAD/PUT /<hash>.narinfo; GET/HEAD/PUT
//    /nar/<fileHash>.nar.<compression> with compression one of br, bz2, lzip, lz4, zst, xz (so no
//    uncompressed `.nar`); GET /nix-cache-info answering JSON; GET /log/<drv> and GET /<hash>.ls
//    answering 501. Another method on a known path: 405; an unknown path: 404.
//  - Once a user is configured, every request needs Basic auth, reads included; a narinfo PUT
//    needs the write user. A wrong or missing password is answered 500 with "Wrong Credentials" or
//    "Corrupt BasicAuth" (its BasicAuthMiddleware returns an error, which becomes a 500).
//  - A PUT answers 201; bodies may be chunked (Go's net/http reads both).
import { createServer, type IncomingMessage, type Server } from 'node:http';

export interface NixStoredStandin {
  url: string;
  /** Objects stored, by path without the leading slash. */
  objects: Map<string, Buffer>;
  /** `METHOD /path STATUS`, one per request. */
  requests: string[];
  close(): Promise<void>;
}

export interface StandinUsers {
  read?: { user: string; password: string };
  write?: { user: string; password: string };
}

const COMPRESSIONS = new Set(['br', 'bz2', 'lzip', 'lz4', 'zst', 'xz']);

type Route = { methods: Set<string>; operation: string };

function route(path: string): Route | undefined {
  if (path === '/nix-cache-info') return { methods: new Set(['GET']), operation: 'GetNixCacheInfo' };
  if (/^\/log\/[^/]+$/.test(path)) return { methods: new Set(['GET']), operation: 'GetDeriverBuildLog' };
  if (/^\/[^/]+\.ls$/.test(path)) return { methods: new Set(['GET']), operation: 'GetNarFileListing' };
  if (/^\/[^/]+\.narinfo$/.test(path))
    return { methods: new Set(['GET', 'HEAD', 'PUT']), operation: 'narinfo' };
  const nar = /^\/nar\/[^/]+\.nar\.([^./]+)$/.exec(path);
  if (nar !== null) {
    // oapi-codegen checks the enum: another compression is a request error (400).
    if (!COMPRESSIONS.has(nar[1]!)) return { methods: new Set(), operation: 'bad-compression' };
    return { methods: new Set(['GET', 'HEAD', 'PUT']), operation: 'nar' };
  }
  return undefined;
}

export async function startNixStoredStandin(users: StandinUsers = {}): Promise<NixStoredStandin> {
  const objects = new Map<string, Buffer>();
  const requests: string[] = [];
  const server: Server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    const send = (status: number, body: string | Buffer = '', type = 'text/plain') => {
      requests.push(`${req.method} ${path} ${status}`);
      req.resume();
      res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body) }).end(body);
    };
    const r = route(path);
    if (r === undefined) return send(404, '404 page not found\n');
    if (r.operation === 'bad-compression') return send(400, 'Invalid format for parameter compression');
    if (!r.methods.has(req.method ?? '')) return send(405);
    const denied = authFailure(req, users, req.method === 'PUT' && r.operation === 'narinfo');
    if (denied !== undefined) return send(500, denied);
    void serve(req, r, path, objects, send);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  return {
    url: `http://127.0.0.1:${port}`,
    objects,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

async function serve(
  req: IncomingMessage,
  r: Route,
  path: string,
  objects: Map<string, Buffer>,
  send: (status: number, body?: string | Buffer, type?: string) => void,
): Promise<void> {
  const key = path.slice(1);
  if (r.operation === 'GetNixCacheInfo') {
    return send(
      200,
      JSON.stringify({ Priority: 30, StoreDir: '/nix/store', WantMassQuery: 1 }),
      'application/json',
    );
  }
  if (r.operation === 'GetDeriverBuildLog' || r.operation === 'GetNarFileListing') return send(501);
  if (req.method === 'PUT') {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    objects.set(key, Buffer.concat(chunks));
    return send(201);
  }
  const body = objects.get(key);
  if (body === undefined) return send(404);
  send(200, body, r.operation === 'nar' ? 'application/x-nix-nar' : 'text/x-nix-narinfo');
}

/** nix-stored's BasicAuthMiddleware: undefined when allowed, else the text of its 500 answer. */
function authFailure(req: IncomingMessage, users: StandinUsers, needsWrite: boolean): string | undefined {
  if (users.read === undefined && users.write === undefined) return undefined;
  const header = req.headers.authorization ?? '';
  if (!header.startsWith('Basic ')) return 'Corrupt BasicAuth';
  const decoded = Buffer.from(header.slice(6), 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return 'Corrupt BasicAuth';
  const given = { user: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
  const is = (u: { user: string; password: string } | undefined) =>
    u !== undefined && u.user === given.user && u.password === given.password;
  if (needsWrite) return is(users.write) ? undefined : 'Wrong Credentials';
  return is(users.read) || is(users.write) ? undefined : 'Wrong Credentials';
}
