/**
 * Extracts a tar archive (a release folder) into an empty directory, refusing anything that
 * could land outside it: absolute names, `..` components, links whose target leaves the
 * directory, hard links, devices and FIFOs. Reads ustar, pax and GNU long names. Streams:
 * file bodies go straight to disk.
 */
import { once } from 'node:events';
import { createReadStream, createWriteStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { OverseerError } from '../errors.js';

const BLOCK = 512;

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

function octal(block: Buffer, start: number, length: number): number {
  const field = text(block, start, length).trim();
  return field === '' ? 0 : Number.parseInt(field, 8);
}

function parseHeader(block: Buffer): Header | undefined {
  if (block.every((byte) => byte === 0)) return undefined;
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 32 : block[i] ?? 0;
  if (sum !== octal(block, 148, 8)) throw new Error('a header checksum does not match (not a tar archive, or a corrupt one)');
  const prefix = block.subarray(257, 263).toString('latin1').startsWith('ustar') ? text(block, 345, 155) : '';
  const name = text(block, 0, 100);
  return {
    name: prefix ? `${prefix}/${name}` : name,
    mode: octal(block, 100, 8),
    size: octal(block, 124, 12),
    type: String.fromCharCode(block[156] ?? 48) || '0',
    linkname: text(block, 157, 100),
  };
}

/** pax records: "<length> <key>=<value>\n". */
function parsePax(data: Buffer): Record<string, string> {
  const records: Record<string, string> = {};
  let at = 0;
  while (at < data.length) {
    const space = data.indexOf(32, at);
    const length = Number(data.subarray(at, space).toString('latin1'));
    if (!Number.isSafeInteger(length) || length <= 0) break;
    const record = data.subarray(space + 1, at + length - 1).toString('utf8');
    const equals = record.indexOf('=');
    records[record.slice(0, equals)] = record.slice(equals + 1);
    at += length;
  }
  return records;
}

/** A relative path inside the root, or why not. */
function safeRelative(name: string): string {
  const normal = path.posix.normalize(name.replace(/\/+$/, ''));
  if (name.startsWith('/') || normal === '..' || normal.startsWith('../') || normal.split('/').includes('..')) {
    throw new Error(`the entry ${JSON.stringify(name)} would land outside the release folder`);
  }
  return normal === '.' ? '' : normal;
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

  /** Streams `length` bytes to `sink` chunk by chunk. */
  async pipe(length: number, sink: (chunk: Buffer) => Promise<void>): Promise<void> {
    let left = length;
    while (left > 0) {
      if (this.#buffer.length === 0) {
        const next = await this.#source.next();
        if (next.done) throw new Error('the archive ends inside a file');
        this.#buffer = next.value;
      }
      const chunk = this.#buffer.subarray(0, Math.min(left, this.#buffer.length));
      this.#buffer = this.#buffer.subarray(chunk.length);
      left -= chunk.length;
      await sink(chunk);
    }
  }
}

/**
 * Extracts the tar file at `archive` into `root` (which must exist and be empty). Throws
 * ERR_OVERSEER_CHECK_FAILED naming the offending entry; the caller removes `root` then.
 */
export async function extractTar(archive: string, root: string): Promise<void> {
  const reader = new Reader(createReadStream(archive, { highWaterMark: 64 * 1024 }) as AsyncIterable<Buffer>);
  let pending: Record<string, string> = {};
  try {
    for (;;) {
      const block = await reader.read(BLOCK);
      if (!block) throw new Error('the archive ends without its end-of-archive blocks');
      const header = parseHeader(block);
      if (!header) return;
      const padded = Math.ceil(header.size / BLOCK) * BLOCK;
      if (header.type === 'x' || header.type === 'L' || header.type === 'K' || header.type === 'g') {
        const data = (await reader.read(padded))?.subarray(0, header.size);
        if (!data) throw new Error('the archive ends inside a header');
        if (header.type === 'x') pending = { ...pending, ...parsePax(data) };
        if (header.type === 'L') pending.path = data.toString('utf8').replace(/\0+$/, '');
        if (header.type === 'K') pending.linkpath = data.toString('utf8').replace(/\0+$/, '');
        continue;
      }
      const name = pending.path ?? header.name;
      const linkname = pending.linkpath ?? header.linkname;
      const size = pending.size === undefined ? header.size : Number(pending.size);
      pending = {};
      const relative = safeRelative(name);
      const target = path.join(root, relative);
      switch (header.type) {
        case '0':
        case '\0':
        case '7': {
          await fs.mkdir(path.dirname(target), { recursive: true });
          const out = createWriteStream(target, { flags: 'wx', mode: header.mode & 0o111 ? 0o755 : 0o644 });
          await reader.pipe(size, async (chunk) => {
            if (!out.write(chunk)) await once(out, 'drain');
          });
          out.end();
          await once(out, 'close');
          await reader.read(Math.ceil(size / BLOCK) * BLOCK - size);
          break;
        }
        case '5':
          if (relative !== '') await fs.mkdir(target, { recursive: true });
          await reader.read(padded);
          break;
        case '2': {
          const resolved = path.posix.normalize(path.posix.join(path.posix.dirname(relative), linkname));
          if (linkname.startsWith('/') || resolved === '..' || resolved.startsWith('../')) {
            throw new Error(`the link ${JSON.stringify(name)} points outside the release folder (${JSON.stringify(linkname)})`);
          }
          await fs.mkdir(path.dirname(target), { recursive: true });
          await fs.symlink(linkname, target);
          break;
        }
        default:
          throw new Error(`the entry ${JSON.stringify(name)} is a ${header.type === '1' ? 'hard link' : `type ${JSON.stringify(header.type)} entry`}, which a release folder may not hold`);
      }
    }
  } catch (error) {
    if (error instanceof OverseerError) throw error;
    throw new OverseerError('ERR_OVERSEER_CHECK_FAILED', `the release archive was refused: ${error instanceof Error ? error.message : String(error)}`, { cause: error, subject: archive });
  }
}
