// NAR (Nix ARchive) encoder, byte for byte what `nix-store --dump` writes.
//
//   str(s)   = u64 little-endian length, the bytes, zero padding to a multiple of 8
//   nar      = str("nix-archive-1") node
//   node     = str("(") str("type") body str(")")
//   body     = str("regular") [str("executable") str("")] str("contents") str(bytes)
//            | str("symlink") str("target") str(target)
//            | str("directory") { str("entry") str("(") str("name") str(name) str("node") node str(")") }
// Directory entries come in bytewise order of their raw names (Nix sorts std::string names), which is
// not JavaScript's UTF-16 string order. The tree is read through a NarSource, so this file does no I/O.
import { CorruptPathError, FormatError, UnsupportedFileError } from '../errors.js';

export type NarNode =
  | { type: 'regular'; executable: boolean; size: number }
  | { type: 'directory' }
  | { type: 'symlink'; target: Buffer };

export interface NarSource {
  /** lstat-like: never follows symlinks; throws UnsupportedFileError for sockets/FIFOs/devices. */
  node(path: Buffer): Promise<NarNode>;
  /** Entry names of a directory, raw bytes, any order (the encoder sorts bytewise). */
  entries(path: Buffer): Promise<Buffer[]>;
  /**
   * File contents in chunks; must yield exactly `size` bytes. A chunk shorter than NAR_COPIED_CHUNK
   * is copied before the encoder asks for anything else, so a source may reuse its memory then.
   */
  contents(path: Buffer, size: number): AsyncIterable<Buffer>;
  /**
   * Memory for the encoder's headers, padding and small files (an upload lends its reused slabs
   * here); without it the encoder allocates its own.
   */
  slab?(): NarSlab;
  /**
   * Synchronous forms of node() and entries(), for a source whose calls never wait on anything but
   * the local file system: given them, the encoder walks a tree of small files without a promise,
   * a generator or a trip through the event loop per node (on a closure of 30,000 small files,
   * those objects were a third of everything the upload allocated).
   */
  nodeSync?(path: Buffer): NarNode;
  entriesSync?(path: Buffer): Buffer[];
  /**
   * The whole contents of a regular file shorter than NAR_COPIED_CHUNK, read synchronously, or
   * undefined when this source reads such a file only through contents(). The bytes may be
   * overwritten by the next call; a length other than `size` means the file changed.
   */
  smallSync?(path: Buffer, size: number): Buffer | undefined;
}

/**
 * A buffer the encoder writes into and lends in slices: lend() hands out a written range, which is
 * never written again; seal() says no more slices will be cut from it.
 */
export interface NarSlab {
  readonly buffer: Buffer;
  lend(start: number, end: number): Buffer;
  seal(): void;
}

/** Bytes of a slab the encoder allocates itself. */
const SLAB_BYTES = 256 * 1024;

function ownSlab(): NarSlab {
  const buffer = Buffer.allocUnsafe(SLAB_BYTES);
  return { buffer, lend: (start, end) => buffer.subarray(start, end), seal: () => undefined };
}

/**
 * One node as the encoder writes it, for a listener that builds a file listing in the same pass
 * (format/nar-listing.ts). `path` is relative to the root ('' for the root), raw bytes joined by '/'.
 */
export interface NarEntry {
  path: Buffer;
  node: NarNode;
  /** Regular files: where the contents start in the NAR (Nix's `narOffset`). */
  narOffset?: number;
}

export type NarListener = (entry: NarEntry) => void;

const ZEROS = Buffer.alloc(8);

/** File chunks at least this big pass through without a copy; shorter ones are always copied. */
export const NAR_COPIED_CHUNK = 64 * 1024;
/** Hand pending output to the consumer once this much has gathered. */
const FLUSH_AT = 128 * 1024;

/**
 * Gathers headers, padding and small files so the consumer sees few, large chunks: appends into a
 * slab and hands out slices of it. A handed-out slice is never written again (the write position
 * only moves forward; a full slab is replaced, not reused), so the consumer may keep it. Whether a
 * slab's memory is reused once its slices come back is for the one who lent it (NarSource.slab).
 */
class Assembler {
  private slab: NarSlab | undefined;
  private buf: Buffer;
  private start = 0;
  private pos = 0;
  private full: Buffer[] = [];
  /** Bytes of NAR written so far, including file chunks that passed through (see passed()). */
  offset = 0;

  constructor(private readonly newSlab: () => NarSlab) {
    this.slab = newSlab();
    this.buf = this.slab.buffer;
  }

  get pending(): number {
    return this.pos - this.start + this.full.reduce((n, b) => n + b.length, 0);
  }

  bytes(b: Uint8Array): void {
    this.reserve(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
    this.offset += b.length;
  }

  /** `n` bytes written in place by `write`, given the buffer and the position to write at. */
  fill(n: number, write: (into: Buffer, at: number) => void): void {
    this.reserve(n);
    write(this.buf, this.pos);
    this.pos += n;
    this.offset += n;
  }

  /** A chunk the encoder yielded itself, around the assembler. */
  passed(n: number): void {
    this.offset += n;
  }

  u64(n: number): void {
    this.reserve(8);
    // Sizes are below 2^53 (Number.MAX_SAFE_INTEGER), so two 32-bit halves are exact.
    this.buf.writeUInt32LE(n % 0x100000000, this.pos);
    this.buf.writeUInt32LE(Math.floor(n / 0x100000000), this.pos + 4);
    this.pos += 8;
    this.offset += 8;
  }

  padding(length: number): void {
    const pad = (8 - (length % 8)) % 8;
    if (pad > 0) this.bytes(ZEROS.subarray(0, pad));
  }

  str(b: Uint8Array): void {
    this.u64(b.length);
    this.bytes(b);
    this.padding(b.length);
  }

  /** Everything written so far, as slices the caller owns. */
  take(): Buffer[] {
    const out = this.full;
    this.full = [];
    if (this.pos > this.start) out.push(this.cut());
    this.start = this.pos;
    return out;
  }

  /** The encoder is done (or stopped): the last slab may go back once its slices have. */
  close(): void {
    this.slab?.seal();
    this.slab = undefined;
  }

  private cut(): Buffer {
    return this.slab ? this.slab.lend(this.start, this.pos) : this.buf.subarray(this.start, this.pos);
  }

  private reserve(n: number): void {
    if (n <= this.buf.length - this.pos) return;
    if (this.pos > this.start) this.full.push(this.cut());
    this.close();
    // Nothing the encoder writes in one piece is larger than a slab (file chunks that big pass
    // through); a source's oversized name or target still gets room of its own.
    const slab = this.newSlab();
    if (n <= slab.buffer.length) {
      this.slab = slab;
      this.buf = slab.buffer;
    } else {
      slab.seal();
      this.buf = Buffer.allocUnsafe(n);
    }
    this.start = 0;
    this.pos = 0;
  }
}

/** Bytes of str(s) for each word of a constant token. */
function token(...words: string[]): Buffer {
  const parts: Buffer[] = [];
  for (const w of words) {
    const b = Buffer.from(w, 'utf8');
    const len = Buffer.alloc(8);
    len.writeUInt32LE(b.length, 0);
    parts.push(len, b, ZEROS.subarray(0, (8 - (b.length % 8)) % 8));
  }
  return Buffer.concat(parts);
}

const MAGIC = token('nix-archive-1');
const REGULAR = token('(', 'type', 'regular');
const EXECUTABLE = token('executable', '');
const CONTENTS = token('contents');
const SYMLINK = token('(', 'type', 'symlink', 'target');
const DIRECTORY = token('(', 'type', 'directory');
const ENTRY = token('entry', '(', 'name');
const NODE = token('node');
const CLOSE = token(')');
const SLASH = Buffer.from('/');

/** A directory being written: its path and the sorted names still to visit. */
interface DirFrame {
  path: Buffer;
  names: Buffer[];
  next: number;
}

function describe(path: Buffer): string {
  return path.toString('utf8');
}

const DOT = Buffer.from('.');
const DOT_DOT = Buffer.from('..');

/** Nix's NAR parser refuses these names (and a directory may not list a name twice). */
function checkEntryNames(dir: Buffer, names: Buffer[]): void {
  for (let i = 0; i < names.length; i++) {
    const name = names[i]!;
    const bad =
      name.length === 0 ||
      name.equals(DOT) ||
      name.equals(DOT_DOT) ||
      name.includes(0x2f) ||
      name.includes(0);
    if (bad)
      throw new FormatError(
        `directory ${describe(dir)} has an entry name a NAR cannot hold: ${JSON.stringify(name.toString('utf8'))}`,
      );
    if (i > 0 && name.equals(names[i - 1]!)) {
      throw new FormatError(
        `directory ${describe(dir)} lists the entry ${JSON.stringify(name.toString('utf8'))} twice`,
      );
    }
  }
}

/**
 * Streams the NAR of the tree at `root`. Chunks are yielded once and never modified afterwards.
 * Throws UnsupportedFileError for a node type a NAR cannot hold (from the source, or an unknown
 * `type`), CorruptPathError when a file yields more or fewer bytes than its size, FormatError for
 * entry names Nix would refuse.
 */
export async function* encodeNar(
  source: NarSource,
  root: Buffer,
  onEntry?: NarListener,
): AsyncGenerator<Buffer> {
  const asm = new Assembler(source.slab?.bind(source) ?? ownSlab);
  const listen = onEntry && listenerOf(root, onEntry);
  try {
    yield* encodeTree(source, root, asm, listen);
  } finally {
    asm.close();
  }
}

type Listen = (path: Buffer, node: NarNode, narOffset?: number) => void;

/** The listener's view of a node: its path relative to the root. */
function listenerOf(root: Buffer, onEntry: NarListener): Listen {
  const relative = (p: Buffer) => p.subarray(Math.min(p.length, root.length + 1));
  return (p, node, narOffset) =>
    onEntry({ path: relative(p), node, ...(narOffset === undefined ? {} : { narOffset }) });
}

async function* encodeTree(
  source: NarSource,
  root: Buffer,
  asm: Assembler,
  listen: Listen | undefined,
): AsyncGenerator<Buffer> {
  const stack: DirFrame[] = [];
  asm.bytes(MAGIC);
  let path: Buffer | undefined = root;
  while (path !== undefined) {
    const node = source.nodeSync ? source.nodeSync(path) : await source.node(path);
    if (node.type === 'directory') {
      const listed = source.entriesSync ? source.entriesSync(path) : await source.entries(path);
      openDirectory(asm, stack, path, node, listed, listen);
    } else if (node.type === 'regular') {
      const small = node.size < NAR_COPIED_CHUNK ? source.smallSync?.(path, node.size) : undefined;
      if (small !== undefined) smallFile(small, asm, path, node, listen);
      else yield* regularFile(source, asm, path, node, listen);
      asm.bytes(CLOSE);
    } else {
      symlink(asm, path, node, listen);
    }
    path = nextPath(asm, stack);
    if (asm.pending >= FLUSH_AT) yield* asm.take();
  }
  yield* asm.take();
}

/** A directory node up to its entries, which are pushed to be visited in bytewise order. */
function openDirectory(
  asm: Assembler,
  stack: DirFrame[],
  path: Buffer,
  node: NarNode,
  listed: Buffer[],
  listen: Listen | undefined,
): void {
  asm.bytes(DIRECTORY);
  const names = listed.sort((a, b) => Buffer.compare(a, b));
  checkEntryNames(path, names);
  listen?.(path, node);
  stack.push({ path, names, next: 0 });
}

/** A symlink node, whole; any other type a source returns is refused here. */
function symlink(asm: Assembler, path: Buffer, node: NarNode, listen: Listen | undefined): void {
  if (node.type !== 'symlink') {
    throw new UnsupportedFileError(
      describe(path),
      `node of type ${JSON.stringify((node as { type: unknown }).type)}`,
    );
  }
  asm.bytes(SYMLINK);
  asm.str(node.target);
  listen?.(path, node);
  asm.bytes(CLOSE);
}

/** Closes finished directories (and their entries) and opens the next entry, if any. */
function nextPath(asm: Assembler, stack: DirFrame[]): Buffer | undefined {
  for (;;) {
    const top = stack[stack.length - 1];
    if (top === undefined) return undefined;
    if (top.next > 0) asm.bytes(CLOSE); // end of the previous entry
    const name = top.names[top.next];
    if (name === undefined) {
      stack.pop();
      asm.bytes(CLOSE); // end of the directory node
      continue;
    }
    top.next++;
    asm.bytes(ENTRY);
    asm.str(name);
    asm.bytes(NODE);
    return Buffer.concat([top.path, SLASH, name]);
  }
}

type RegularNode = { type: 'regular'; executable: boolean; size: number };

/** A regular file's node up to its contents. */
function fileHeader(asm: Assembler, path: Buffer, node: RegularNode, listen: Listen | undefined): void {
  const { size } = node;
  if (!Number.isSafeInteger(size) || size < 0)
    throw new FormatError(`file ${describe(path)} has an impossible size ${size}`);
  asm.bytes(REGULAR);
  if (node.executable) asm.bytes(EXECUTABLE);
  asm.bytes(CONTENTS);
  asm.u64(size);
  listen?.(path, node, asm.offset);
}

function sizeChanged(path: Buffer, seen: number, size: number): CorruptPathError {
  return new CorruptPathError(
    describe(path),
    `file ${describe(path)} gave ${seen > size ? 'more' : 'fewer'} bytes than its size ${size}: it changed while being read; try again`,
  );
}

/** A small file the source read synchronously (smallSync): copied in, nothing awaited. */
function smallFile(
  contents: Buffer,
  asm: Assembler,
  path: Buffer,
  node: RegularNode,
  listen: Listen | undefined,
): void {
  fileHeader(asm, path, node, listen);
  if (contents.length !== node.size) throw sizeChanged(path, contents.length, node.size);
  asm.bytes(contents);
  asm.padding(node.size);
}

async function* regularFile(
  source: NarSource,
  asm: Assembler,
  path: Buffer,
  node: RegularNode,
  listen: Listen | undefined,
): AsyncGenerator<Buffer> {
  const { size } = node;
  fileHeader(asm, path, node, listen);
  let seen = 0;
  for await (const chunk of source.contents(path, size)) {
    seen += chunk.length;
    if (seen > size) break;
    if (chunk.length < NAR_COPIED_CHUNK) {
      // Copied even when the slab is full (bytes() starts a new one): the source may reuse it.
      asm.bytes(chunk);
      if (asm.pending >= FLUSH_AT) yield* asm.take();
    } else {
      yield* asm.take();
      asm.passed(chunk.length);
      yield chunk;
    }
  }
  if (seen !== size) throw sizeChanged(path, seen, size);
  asm.padding(size);
}

/**
 * What the synchronous encoder reads: a tree on the local file system, where a call never waits on
 * anything but the disk (src/store/nar-source-fs.ts, fsNarSyncSource).
 */
export interface NarSyncSource {
  nodeSync(path: Buffer): NarNode;
  entriesSync(path: Buffer): Buffer[];
  /**
   * Reads a regular file's `size` bytes into `into` at `at`; throws CorruptPathError when the file
   * has more or fewer bytes than that.
   */
  readInto(path: Buffer, size: number, into: Buffer, at: number): void;
}

/**
 * The whole NAR of the tree at `root`, written synchronously into slabs from `slab` and returned as
 * their written slices, in order. For a NAR whose size is known and small enough to hold at once
 * (upload/nar-worker.ts runs it on a worker thread, into one slab of exactly that size): no
 * generator, promise or stream per node or per file. The same bytes as encodeNar, and the same
 * errors; a slab factory may throw to stop a NAR that outgrows what it expected.
 */
export function encodeNarSync(
  source: NarSyncSource,
  root: Buffer,
  slab: () => NarSlab,
  onEntry?: NarListener,
): Buffer[] {
  const asm = new Assembler(slab);
  const listen = onEntry && listenerOf(root, onEntry);
  try {
    const stack: DirFrame[] = [];
    asm.bytes(MAGIC);
    let path: Buffer | undefined = root;
    while (path !== undefined) {
      const node = source.nodeSync(path);
      if (node.type === 'directory') {
        openDirectory(asm, stack, path, node, source.entriesSync(path), listen);
      } else if (node.type === 'regular') {
        const file = path;
        fileHeader(asm, file, node, listen);
        asm.fill(node.size, (into, at) => source.readInto(file, node.size, into, at));
        asm.padding(node.size);
        asm.bytes(CLOSE);
      } else {
        symlink(asm, path, node, listen);
      }
      path = nextPath(asm, stack);
    }
    return asm.take();
  } finally {
    asm.close();
  }
}
