/**
 * What the upgrader holds against releases it refused, so it does not download them again, and
 * nothing more: a verdict is remembered under the evidence it rests on. Every key includes the
 * signature offered with the release, so a release re-signed after a signature failure is
 * tried again; a checksum mismatch is remembered by the sha256 of the bytes actually received,
 * never by the sha256 the source declared, so a corrupted transfer cannot ban the genuine release.
 */
import { createHash } from 'node:crypto';
import type { Release } from './fetcher.js';

/** Refusals that say the release's bytes are bad whatever their source claims of them. */
const BYTES_ONLY = new Set(['ERR_OVERSEER_CHECKSUM_MISMATCH']);

export interface Evidence {
  /** sha256 of the bytes as received (published form). */
  readonly rawSha256?: string | undefined;
  /** sha256 of the content (inflated), or the folder manifest hash. */
  readonly sha256?: string | undefined;
}

/** sha256 of the signature a release came with, or '-': the part of every key that says "signed this way". */
export function signatureKey(release: Release): string {
  return release.signature === undefined ? '-' : createHash('sha256').update(release.signature).digest('hex');
}

export class Rejections {
  readonly #ids = new Set<string>();
  readonly #bytes = new Set<string>();

  /** Remembers a refusal with `code`, keyed by what it rests on. */
  remember(release: Release, code: string, evidence: Evidence): void {
    const signature = signatureKey(release);
    if (BYTES_ONLY.has(code)) {
      // A mismatch relates the bytes to the declared sha256: a corrected sidecar is tried again.
      if (evidence.rawSha256 !== undefined) this.#bytes.add(`${evidence.rawSha256.toLowerCase()}\n${signature}\n${declared(release)}`);
      return;
    }
    if (release.id !== undefined) this.#ids.add(`${release.id}\n${signature}`);
    for (const sha of [evidence.rawSha256, evidence.sha256]) {
      if (sha !== undefined) this.#bytes.add(`${sha.toLowerCase()}\n${signature}`);
    }
  }

  /** A refusal read back from disk (rolled-back.ts): its id and hashes, with the signature key it was refused under. */
  restore(entry: { readonly id?: string | undefined; readonly sha256: readonly string[]; readonly signature: string }): void {
    if (entry.id !== undefined) this.#ids.add(`${entry.id}\n${entry.signature}`);
    for (const sha of entry.sha256) this.#bytes.add(`${sha.toLowerCase()}\n${entry.signature}`);
  }

  /** Before download: the same id and signature, or a declared sha256 whose bytes were refused. */
  refusedBefore(release: Release): boolean {
    const signature = signatureKey(release);
    if (release.id !== undefined && this.#ids.has(`${release.id}\n${signature}`)) return true;
    return release.sha256 !== undefined && this.#bytes.has(`${release.sha256.toLowerCase()}\n${signature}`);
  }

  /** After download: these very bytes, with this signature (and for a mismatch, this declared sha256), were refused. */
  refusedBytes(release: Release, sha256: string): boolean {
    const key = `${sha256.toLowerCase()}\n${signatureKey(release)}`;
    return this.#bytes.has(key) || this.#bytes.has(`${key}\n${declared(release)}`);
  }
}

function declared(release: Release): string {
  return release.sha256?.toLowerCase() ?? '-';
}
