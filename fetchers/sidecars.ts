/**
 * Sidecar files next to a release (`<file>.sha256`, `<file>.minisig`), read the same way by
 * every fetcher that has them: small, whole, and checked before the master relies on them.
 */
import { createReadStream } from 'node:fs';
import path from 'node:path';
import { describeError, OverseerError } from '../src/errors.js';
import type { ReleaseWants } from '../src/upgrade/fetcher.js';

/** Sidecars are a line or two; anything bigger is the wrong file. */
export const MAX_SIDECAR_BYTES = 64 * 1024;
const SHA256_LINE = /^([0-9a-fA-F]{64})(?:\s+\*?(.+))?$/;

/** Reads a sidecar stream whole, failing with ERR_OVERSEER_FETCH_FAILED past MAX_SIDECAR_BYTES. */
export async function readSidecar(body: AsyncIterable<Uint8Array>, what: string, source: string): Promise<string> {
  const chunks: Buffer[] = [];
  let length = 0;
  for await (const chunk of body) {
    length += chunk.length;
    if (length > MAX_SIDECAR_BYTES) {
      throw new OverseerError(
        'ERR_OVERSEER_FETCH_FAILED',
        `the ${what} at ${source} is over ${MAX_SIDECAR_BYTES} bytes; point it at the small text file`,
        { subject: source },
      );
    }
    chunks.push(Buffer.from(chunk));
  }
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * Reads `<hex>` or sha256sum output. One line is taken whatever file it names; with several,
 * the line naming `fileName` (the release's base name) is.
 */
export function parseSha256(text: string, source: string, fileName: string): string {
  const fail = (problem: string): OverseerError =>
    new OverseerError('ERR_OVERSEER_FETCH_FAILED', `the sha256 sidecar at ${source} ${problem}`, { subject: source });
  const lines = text.split(/\r?\n/).map((line) => line.trim()).filter((line) => line !== '');
  const entries = lines.map((line) => {
    const match = SHA256_LINE.exec(line);
    if (match === null) throw fail(`has a line that is not "<64 hex digits>" or "<64 hex digits>  <file>": ${JSON.stringify(line.slice(0, 80))}`);
    return { hex: (match[1] ?? '').toLowerCase(), file: match[2] };
  });
  const [first] = entries;
  if (first === undefined) throw fail('is empty');
  if (entries.length === 1) return first.hex;
  const match = entries.find((entry) => entry.file !== undefined && entry.file.slice(entry.file.lastIndexOf('/') + 1) === fileName);
  if (match === undefined) throw fail(`lists ${entries.length} files but none named ${JSON.stringify(fileName)}`);
  return match.hex;
}

/** A signature sidecar's text, refused when empty (an empty upload is a publishing mistake). */
export function checkSignature(text: string, source: string): string {
  if (text.trim() === '') {
    throw new OverseerError('ERR_OVERSEER_FETCH_FAILED', `the signature at ${source} is empty`, { subject: source });
  }
  return text;
}

/**
 * The sidecars beside a local release file, `<file>.sha256` and `<file>.minisig`, read only when
 * the master's verification wants them (FetchContext.wants). A missing one means none; any other
 * failure to read it fails the poll.
 */
export async function readLocalSidecars(
  file: string,
  wants: ReleaseWants | undefined,
): Promise<{ readonly sha256: string | undefined; readonly signature: string | undefined }> {
  const read = async (suffix: string, what: string): Promise<string | undefined> => {
    const sidecar = `${file}${suffix}`;
    try {
      return await readSidecar(createReadStream(sidecar), what, sidecar);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      if (error instanceof OverseerError) throw error;
      throw new OverseerError('ERR_OVERSEER_FETCH_FAILED', `the ${what} ${sidecar} could not be read: ${describeError(error)}`, { cause: error, subject: sidecar });
    }
  };
  const [sha256, signature] = await Promise.all([
    wants?.sha256 === true ? read('.sha256', 'sha256 sidecar') : undefined,
    wants?.signature === true ? read('.minisig', 'signature') : undefined,
  ]);
  return {
    sha256: sha256 === undefined ? undefined : parseSha256(sha256, `${file}.sha256`, path.basename(file)),
    signature: signature === undefined ? undefined : checkSignature(signature, `${file}.minisig`),
  };
}
