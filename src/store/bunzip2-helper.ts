// Decompresses build logs (`bzip2 -dc FILE`) in one long-lived small shell instead of one child
// process per log. Spawning from Node forks the whole process: with loft's few hundred MB resident,
// each spawn held the event loop 20-25 ms (a fork copies the page tables), so the 400 logs of a
// CI-shaped closure cost 8 of its 10 CPU seconds. The shell is a few MB: its forks are cheap.
// One request at a time, in order: a path on stdin, then on stdout `ok SIZE\n` and SIZE bytes,
// `big 0\n` (more than the limit), or `err LEN\n` and LEN bytes of bzip2's first error line.
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';

// $1: the limit in bytes; $2: the bzip2 program. bzip2's status is kept in a file: dash has no
// pipefail, and `head` cutting a huge log short ends bzip2 with SIGPIPE.
const SCRIPT = `
t=$(mktemp -d) || exit 1
trap 'rm -rf "$t"' EXIT
while IFS= read -r f; do
  { "$2" -dc -- "$f" 2>"$t/err"; echo $? >"$t/rc"; } | head -c "$1" >"$t/out"
  size=$(wc -c <"$t/out")
  rc=$(cat "$t/rc")
  if [ "$size" -ge "$1" ]; then printf 'big 0\n'
  elif [ "$rc" != 0 ]; then
    if [ "$rc" = 127 ]; then printf '%s is not installed' "$2" >"$t/msg"
    else head -n 1 "$t/err" | head -c 300 >"$t/msg"; fi
    printf 'err %s\n' "$(wc -c <"$t/msg")"; cat "$t/msg"
  else printf 'ok %s\n' "$size"; cat "$t/out"
  fi
done
`;

type Result = { kind: 'ok'; body: Buffer } | { kind: 'big' } | { kind: 'err'; message: string };

interface Pending {
  resolve: (r: Result) => void;
  reject: (e: Error) => void;
}

type Helper = ChildProcessByStdio<Writable, Readable, null>;

export class Bunzip2Helper {
  private child: Helper | undefined;
  private readonly pending: Pending[] = [];
  private buffered: Buffer = Buffer.alloc(0);
  /** How many times the shell was started (tests: once for many logs). */
  starts = 0;

  /** `limit`: outputs of this many bytes or more come back as 'big'. */
  constructor(
    private readonly program: string,
    private readonly limit: number,
  ) {}

  decompress(file: string): Promise<Result> {
    if (file.includes('\n')) return Promise.resolve({ kind: 'err', message: 'a newline in the path' });
    const child = this.child ?? this.start();
    return new Promise<Result>((resolve, reject) => {
      this.pending.push({ resolve, reject });
      child.stdin.write(`${file}\n`);
      this.setActive(true);
    });
  }

  close(): void {
    this.child?.stdin.end();
    this.child = undefined;
  }

  private start(): Helper {
    // The program is looked up through PATH by the shell, as execFile would.
    const args = ['-c', SCRIPT, 'sh', String(this.limit), this.program];
    const child = spawn('/bin/sh', args, { stdio: ['pipe', 'pipe', 'ignore'] });
    this.child = child;
    this.starts++;
    this.buffered = Buffer.alloc(0);
    child.stdout.on('data', (chunk: Buffer) => this.onData(chunk));
    const fail = (why: string) => {
      if (this.child === child) this.child = undefined;
      for (const p of this.pending.splice(0)) p.reject(new Error(why));
    };
    child.on('error', (err) => fail(err.message));
    child.on('close', (code) => fail(`the bzip2 helper exited (${code})`));
    child.stdin.on('error', () => undefined); // reported by 'close'
    this.setActive(false);
    return child;
  }

  /** Keeps the process alive only while a log is being decompressed. */
  private setActive(active: boolean): void {
    const c = this.child;
    if (c === undefined) return;
    const handles = [c, c.stdout, c.stdin] as Array<{ ref?: () => void; unref?: () => void }>;
    for (const h of handles) (active ? h.ref : h.unref)?.call(h);
  }

  private onData(chunk: Buffer): void {
    this.buffered = this.buffered.length === 0 ? chunk : Buffer.concat([this.buffered, chunk]);
    for (;;) {
      const nl = this.buffered.indexOf(10);
      if (nl < 0) return;
      const [kind, len] = this.buffered.toString('latin1', 0, nl).split(' ');
      const size = Number(len);
      if (this.buffered.length < nl + 1 + size) return;
      const body = this.buffered.subarray(nl + 1, nl + 1 + size);
      this.buffered = this.buffered.subarray(nl + 1 + size);
      const p = this.pending.shift();
      if (this.pending.length === 0) this.setActive(false);
      if (kind === 'ok') p?.resolve({ kind: 'ok', body: Buffer.from(body) });
      else if (kind === 'big') p?.resolve({ kind: 'big' });
      else p?.resolve({ kind: 'err', message: body.toString('utf8').trim() });
    }
  }
}
