/**
 * Extracts a tar archive (a release folder) into an empty directory, refusing anything that
 * could land outside it or make the folder reach outside itself: absolute names, `..`
 * components, a path that goes through a link, a link whose real target (following the links
 * the archive made) leaves the folder, hard links, devices, FIFOs. Reads ustar, pax and GNU
 * long names. Streams: file bodies go straight to disk, created with O_EXCL|O_NOFOLLOW and
 * fsynced, and every directory is fsynced before this returns.
 *
 * Why our own reader and not node-tar: node-tar's safety is "warn and rewrite" — it strips a
 * leading `/` and skips `..` entries, so the folder that goes live is not the one published —
 * and it checks nothing about where a symlink points (`etc -> /etc` extracts), so the link
 * resolution below would be needed on top of it anyway; it opens files without O_NOFOLLOW, and
 * its errors arrive as warnings, `strict` errors and silent `filter` skips that all need
 * mapping. The policy here is one rule — refuse the whole archive — in ~300 lines with no
 * module to load into the master. The reader is fuzzed (test/upgrade/tar-fuzz.test.ts).
 */
import { createReadStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { OverseerError } from '../errors.js';

const BLOCK = 512;
/** pax and GNU long-name headers larger than this are refused rather than buffered. */
const MAX_META_BYTES = 1024 * 1024;
/** As the kernel's own limit on links followed while resolving one path. */
const MAX_LINK_HOPS = 40;
const { O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW } = fs.constants;

/** A refusal the archive itself is to blame for. */
class Refused extends Error {}

/** fs errors an archive can cause by its names alone (duplicates, long or odd names). */
const ARCHIVE_FS_ERRORS = new Set(['EEXIST', 'ENAMETOOLONG', 'ELOOP', 'ENOTDIR', 'EISDIR', 'EINVAL', 'ERR_INVALID_ARG_VALUE', 'ERR_INVALID_ARG_TYPE']);

interface Header {
  name: string;
  mode: number;
  size: number;
  type: string;
  linkname: string;
}

function text(block: Buffer, start: number, length: number): string {
  const field = block.subarray(start, start + length);
  const end = field.indexOf(0);
  return field.subarray(0, end === -1 ? length : end).toString('utf8');
}

function octal(block: Buffer, start: number, length: number, what: string): number {
  const field = block.subarray(start, start + length).toString('latin1').replace(/[\0 ]+$/, '').replace(/^ +/, '');
  if (!/^[0-7]*$/.test(field)) throw new Refused(`a header's ${what} field is not an octal number (${JSON.stringify(field)}); base-256 sizes (files over 8 GiB) are not supported`);
  return field === '' ? 0 : Number.parseInt(field, 8);
}

function parseHeader(block: Buffer): Header | undefined {
  if (block.every((byte) => byte === 0)) return undefined;
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 32 : block[i] ?? 0;
  if (sum !== octal(block, 148, 8, 'checksum')) throw new Refused('a header checksum does not match (not a tar archive, or a corrupt one)');
  // Only POSIX ustar has a name prefix; GNU tar ("ustar  ") keeps times there.
  const posix = block.subarray(257, 263).toString('latin1') === 'ustar\0';
  const prefix = posix ? text(block, 345, 155) : '';
  const name = text(block, 0, 100);
  return {
    name: prefix ? `${prefix}/${name}` : name,
    mode: octal(block, 100, 8, 'mode'),
    size: octal(block, 124, 12, 'size'),
    type: String.fromCharCode(block[156] ?? 48),
    linkname: text(block, 157, 100),
  };
}

/** pax records: "<length> <key>=<value>\n". */
function parsePax(data: Buffer): Record<string, string> {
  const records: Record<string, string> = {};
  let at = 0;
  while (at < data.length) {
    const space = data.indexOf(32, at);
    const length = space === -1 ? Number.NaN : Number(data.subarray(at, space).toString('latin1'));
    if (!Number.isSafeInteger(length) || length <= space - at + 2 || at + length > data.length || data[at + length - 1] !== 10) {
      throw new Refused('a pax header is malformed');
    }
    const record = data.subarray(space + 1, at + length - 1).toString('utf8');
    const equals = record.indexOf('=');
    if (equals <= 0) throw new Refused('a pax header record has no key');
    records[record.slice(0, equals)] = record.slice(equals + 1);
    at += length;
  }
  return records;
}

/** The path components of an entry name inside the root, or why not. */
function components(name: string): string[] {
  if (name.includes('\0')) throw new Refused(`the entry ${JSON.stringify(name)} has a NUL byte in its name`);
  if (name.startsWith('/')) throw new Refused(`the entry ${JSON.stringify(name)} has an absolute path and would land outside the release folder`);
  const parts = name.split('/').filter((part) => part !== '' && part !== '.');
  if (parts.includes('..')) throw new Refused(`the entry ${JSON.stringify(name)} has a .. component and would land outside the release folder`);
  return parts;
}

/** Reads exactly `length` bytes from an async byte source, keeping the rest for later reads. */
class Reader {
  #buffer: Buffer = Buffer.alloc(0);
  readonly #source: AsyncIterator<Buffer>;

  constructor(source: AsyncIterable<Buffer>) {
    this.#source = source[Symbol.asyncIterator]();
  }

  async read(length: number): Promise<Buffer | undefined> {
    while (this.#buffer.length < length) {
      const next = await this.#source.next();
      if (next.done) return undefined;
      this.#buffer = this.#buffer.length === 0 ? next.value : Buffer.concat([this.#buffer, next.value]);
    }
    const out = this.#buffer.subarray(0, length);
    this.#buffer = this.#buffer.subarray(length);
    return out;
  }

  /** Streams `length` bytes to `sink` chunk by chunk (or drops them, without buffering). */
  async pipe(length: number, sink?: (chunk: Buffer) => Promise<void>): Promise<void> {
    let left = length;
    while (left > 0) {
      if (this.#buffer.length === 0) {
        const next = await this.#source.next();
        if (next.done) throw new Refused('the archive ends inside an entry');
        this.#buffer = next.value;
      }
      const chunk = this.#buffer.subarray(0, Math.min(left, this.#buffer.length));
      this.#buffer = this.#buffer.subarray(chunk.length);
      left -= chunk.length;
      if (sink) await sink(chunk);
    }
  }
}

/** The folder being extracted: what was made in it, so nothing is ever made through a link. */
class Tree {
  readonly #root: string;
  /** Relative paths known to be real directories (made here; nothing can replace them). */
  readonly #dirs = new Set<string>(['']);
  readonly links: Array<{ name: string; parts: string[]; target: string }> = [];

  constructor(root: string) {
    this.#root = root;
  }

  full(parts: string[]): string {
    return path.join(this.#root, ...parts);
  }

  /** Makes each component a real directory; refuses a component that is a link or a file. */
  async directory(parts: string[], name: string): Promise<void> {
    for (let i = 1; i <= parts.length; i++) {
      const relative = parts.slice(0, i).join('/');
      if (this.#dirs.has(relative)) continue;
      const full = this.full(parts.slice(0, i));
      const stat = await fs.lstat(full).catch((error: NodeJS.ErrnoException) => {
        if (error.code === 'ENOENT') return undefined;
        throw error;
      });
      if (stat?.isSymbolicLink()) throw new Refused(`the entry ${JSON.stringify(name)} goes through the link ${JSON.stringify(relative)}`);
      if (stat && !stat.isDirectory()) throw new Refused(`the entry ${JSON.stringify(name)} goes through ${JSON.stringify(relative)}, which is not a directory`);
      if (!stat) await fs.mkdir(full, { mode: 0o755 });
      this.#dirs.add(relative);
    }
  }

  /** Directories deepest first, for fsync. */
  directories(): string[] {
    return [...this.#dirs].sort((a, b) => b.length - a.length).map((relative) => path.join(this.#root, relative));
  }

  /**
   * Follows `target` from the link's folder the way the kernel would, through the links in
   * the tree; refuses when it climbs above the root. A missing component is taken literally,
   * so `missing/../..` is refused too.
   */
  async checkLink(name: string, linkParts: string[], target: string): Promise<void> {
    const outside = () => new Refused(`the link ${JSON.stringify(name)} -> ${JSON.stringify(target)} leads outside the release folder`);
    if (target === '' || target.includes('\0')) throw new Refused(`the link ${JSON.stringify(name)} has an empty or NUL target`);
    if (target.startsWith('/')) throw outside();
    const at = linkParts.slice(0, -1);
    const pending = target.split('/').reverse();
    let hops = 0;
    while (pending.length > 0) {
      const part = pending.pop() as string;
      if (part === '' || part === '.') continue;
      if (part === '..') {
        if (at.length === 0) throw outside();
        at.pop();
        continue;
      }
      at.push(part);
      const full = this.full(at);
      const stat = await fs.lstat(full).catch(() => undefined);
      if (!stat?.isSymbolicLink()) continue;
      if (++hops > MAX_LINK_HOPS) throw new Refused(`the link ${JSON.stringify(name)} -> ${JSON.stringify(target)} is a loop of links`);
      const next = await fs.readlink(full);
      if (next.startsWith('/')) throw outside();
      at.pop();
      pending.push(...next.split('/').reverse());
    }
  }
}

async function writeFile(reader: Reader, file: string, size: number, mode: number): Promise<void> {
  const handle = await fs.open(file, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, mode & 0o111 ? 0o755 : 0o644);
  try {
    await reader.pipe(size, async (chunk) => {
      for (let done = 0; done < chunk.length; ) done += (await handle.write(chunk, done)).bytesWritten;
    });
    // datasync: the contents and size, which is what a power loss must not lose.
    await handle.datasync();
  } finally {
    await handle.close();
  }
}

/** Best effort, as bundle.ts does: some platforms cannot fsync a directory. */
async function syncDirectory(dir: string): Promise<void> {
  const handle = await fs.open(dir, 'r').catch(() => undefined);
  await handle?.sync().catch(() => {});
  await handle?.close().catch(() => {});
}

function refusal(error: unknown, archive: string): OverseerError {
  if (error instanceof OverseerError) return error;
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  const why = error instanceof Error ? error.message : String(error);
  if (error instanceof Refused || (typeof code === 'string' && ARCHIVE_FS_ERRORS.has(code))) {
    return new OverseerError('ERR_OVERSEER_UNSAFE_ARCHIVE', `the release archive was refused, nothing of it goes live: ${why}`, { cause: error, subject: archive });
  }
  return new OverseerError('ERR_OVERSEER_SWAP_FAILED', `the release archive could not be extracted: ${why}`, { cause: error, subject: archive });
}

async function extractEntries(reader: Reader, tree: Tree): Promise<void> {
  let pending: Record<string, string> = {};
  for (;;) {
    const block = await reader.read(BLOCK);
    if (!block) throw new Refused('the archive ends without its end-of-archive blocks');
    const header = parseHeader(block);
    if (!header) return;
    const padding = (size: number) => Math.ceil(size / BLOCK) * BLOCK - size;
    if (header.type === 'x' || header.type === 'g' || header.type === 'L' || header.type === 'K') {
      if (header.size > MAX_META_BYTES) throw new Refused(`a ${header.type} header of ${header.size} bytes is larger than ${MAX_META_BYTES}`);
      const data = (await reader.read(header.size + padding(header.size)))?.subarray(0, header.size);
      if (!data) throw new Refused('the archive ends inside a header');
      // A global header ('g', git archive writes one) holds comments; it names no entry.
      if (header.type === 'x') pending = { ...pending, ...parsePax(data) };
      if (header.type === 'L') pending.path = data.toString('utf8').replace(/\0+$/, '');
      if (header.type === 'K') pending.linkpath = data.toString('utf8').replace(/\0+$/, '');
      continue;
    }
    const name = pending.path ?? header.name;
    const linkname = pending.linkpath ?? header.linkname;
    const size = pending.size === undefined ? header.size : Number(pending.size);
    pending = {};
    if (!Number.isSafeInteger(size) || size < 0) throw new Refused(`the entry ${JSON.stringify(name)} has an invalid size`);
    const parts = components(name);
    switch (header.type) {
      case '0':
      case '\0':
      case '7':
        if (parts.length === 0) throw new Refused(`a file entry has the empty name ${JSON.stringify(name)}`);
        await tree.directory(parts.slice(0, -1), name);
        await writeFile(reader, tree.full(parts), size, header.mode);
        await reader.pipe(padding(size));
        continue;
      case '5':
        await tree.directory(parts, name);
        break;
      case '2':
        if (parts.length === 0) throw new Refused(`a link entry has the empty name ${JSON.stringify(name)}`);
        await tree.directory(parts.slice(0, -1), name);
        await tree.checkLink(name, parts, linkname);
        await fs.symlink(linkname, tree.full(parts));
        tree.links.push({ name, parts, target: linkname });
        break;
      default:
        throw new Refused(`the entry ${JSON.stringify(name)} is a ${KINDS[header.type] ?? `type ${JSON.stringify(header.type)} entry`}, which a release folder may not hold${HINTS[header.type] ?? ''}`);
    }
    await reader.pipe(size + padding(size));
  }
}

const KINDS: Record<string, string> = { '1': 'hard link', '3': 'character device', '4': 'block device', '6': 'FIFO' };
const HINTS: Record<string, string> = {
  // GNU tar stores a file linked twice as a hard link; this flag stores a copy instead.
  '1': `; pack the folder with GNU tar's --hard-dereference (tar --hard-dereference -czf release.tar.gz -C DIR .) so each file is stored as a copy`,
};

/**
 * Extracts the tar file at `archive` into `root` (which must exist and be empty; nothing else
 * may write to it meanwhile). Throws ERR_OVERSEER_UNSAFE_ARCHIVE naming the offending entry, or
 * ERR_OVERSEER_SWAP_FAILED when the disk fails; the caller removes `root` then.
 */
export async function extractTar(archive: string, root: string): Promise<void> {
  const stream = createReadStream(archive, { highWaterMark: 64 * 1024 });
  const tree = new Tree(root);
  try {
    await extractEntries(new Reader(stream as AsyncIterable<Buffer>), tree);
    // Again over the finished tree: a later entry may have changed what an earlier link reaches.
    for (const link of tree.links) await tree.checkLink(link.name, link.parts, link.target);
    for (const dir of tree.directories()) await syncDirectory(dir);
  } catch (error) {
    throw refusal(error, archive);
  } finally {
    stream.destroy();
  }
}
