/**
 * Test-side publishing: builds a manifest over artifacts, signs it with support/minisign.ts, and
 * writes the three kinds of object (manifest, .minisig, artifacts) through a `put` function, so
 * the same steps publish to the release server, s3rver or a folder. (The real publisher is
 * `overseer release`; these tests exercise the instance side.)
 */
import { createHash } from 'node:crypto';
import { parseManifest, serializeManifest, type Manifest, type ManifestRelease } from '../src/manifest/document.ts';
import type { MinisignTestKey } from './minisign.ts';

export type Put = (path: string, body: Buffer | string) => void | Promise<void>;

export interface Offer {
  readonly version: string;
  readonly path?: string;
  readonly body: Buffer | string;
  readonly rollout?: number;
  readonly pulled?: boolean;
}

export const sha256 = (data: Buffer | string) => createHash('sha256').update(data).digest('hex');
export const inAYear = () => new Date(Date.now() + 365 * 86_400_000).toISOString().replace(/\.\d+Z$/, 'Z');

export function manifestOf(sequence: number, channels: Record<string, readonly Offer[]>, expires = inAYear()): Manifest {
  const built: Record<string, { releases: ManifestRelease[] }> = {};
  for (const [name, offers] of Object.entries(channels)) {
    built[name] = {
      releases: offers.map((offer) => ({
        version: offer.version,
        path: offer.path ?? `app-${offer.version}.mjs`,
        size: Buffer.byteLength(offer.body),
        sha256: sha256(offer.body),
        rollout: offer.rollout ?? 100,
        pulled: offer.pulled ?? false,
      })),
    };
  }
  return parseManifest(JSON.stringify({ schema: 'overseer-manifest/1', sequence, expires, channels: built }), 'test');
}

/** Publishes artifacts first, then the signature and the manifest (as a careful publisher would). */
export async function publish(put: Put, key: MinisignTestKey, sequence: number, channels: Record<string, readonly Offer[]>, options: { manifestPath?: string; expires?: string } = {}): Promise<string> {
  const manifestPath = options.manifestPath ?? 'manifest.json';
  for (const offers of Object.values(channels)) for (const offer of offers) await put(offer.path ?? `app-${offer.version}.mjs`, offer.body);
  const text = serializeManifest(manifestOf(sequence, channels, options.expires));
  await put(`${manifestPath}.minisig`, key.sign(Buffer.from(text)));
  await put(manifestPath, text);
  return text;
}
