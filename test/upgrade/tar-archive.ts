/** Hand-made tar archives for the extractor tests: any entry, however hostile, can be written. */
import fs from 'node:fs';
import path from 'node:path';

export interface TarEntry {
  readonly name: string;
  readonly type?: '0' | '1' | '2' | '3' | '5' | '6' | 'x' | 'L';
  readonly body?: string | Buffer;
  readonly link?: string;
  readonly mode?: number;
}

export function tarHeader(entry: TarEntry, size: number): Buffer {
  const header = Buffer.alloc(512);
  header.write(entry.name, 0, 100, 'utf8');
  header.write(`${(entry.mode ?? 0o644).toString(8).padStart(7, '0')}\0`, 100);
  header.write('0000000\0', 108);
  header.write('0000000\0', 116);
  header.write(`${size.toString(8).padStart(11, '0')}\0`, 124);
  header.write('00000000000\0', 136);
  header.write(entry.type ?? '0', 156);
  header.write(entry.link ?? '', 157, 100, 'utf8');
  header.write('ustar\0', 257);
  header.write('00', 263);
  header.fill(' ', 148, 156);
  let sum = 0;
  for (const byte of header) sum += byte;
  header.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
  return header;
}

export function tar(entries: readonly TarEntry[]): Buffer {
  const blocks: Buffer[] = [];
  for (const entry of entries) {
    const body = Buffer.isBuffer(entry.body) ? entry.body : Buffer.from(entry.body ?? '');
    blocks.push(tarHeader(entry, body.length), body, Buffer.alloc((512 - (body.length % 512)) % 512));
  }
  blocks.push(Buffer.alloc(1024));
  return Buffer.concat(blocks);
}

/** A pax 'x' header body with the given records. */
export function pax(records: Record<string, string>): Buffer {
  return Buffer.from(Object.entries(records).map(([key, value]) => {
    const record = ` ${key}=${value}\n`;
    const bare = Buffer.byteLength(record);
    let length = bare + String(bare).length;
    if (String(length).length !== String(bare).length) length = bare + String(length).length;
    return `${length}${record}`;
  }).join(''));
}

/**
 * The escape of issue 9: links that each look inside on paper, chained until they climb
 * `depth` levels above the folder, then a file written through the last one.
 */
export function linkChain(depth: number, file: string, body: string): TarEntry[] {
  const entries: TarEntry[] = [
    { name: 'd/', type: '5' },
    { name: 'd/l', type: '2', link: '..' },
    { name: 'd/up', type: '2', link: 'l/..' },
    { name: 'u0', type: '2', link: 'd/up/..' },
  ];
  for (let i = 1; i < depth; i++) entries.push({ name: `u${i}`, type: '2', link: `u${i - 1}/..` });
  entries.push({ name: `u${depth - 1}/${file}`, body });
  return entries;
}

/** Every path under `dir`, relative, sorted; links are listed, never followed (readdir's own recursion follows them on Node 20). */
export function listing(dir: string, prefix = ''): string[] {
  const out: string[] = [];
  for (const entry of fs.readdirSync(path.join(dir, prefix), { withFileTypes: true })) {
    const item = path.join(prefix, entry.name);
    out.push(item);
    if (entry.isDirectory()) out.push(...listing(dir, item));
  }
  return out.sort();
}
