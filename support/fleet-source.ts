/**
 * The release server side of a fleet run: one HTTP server holding the manifest, its signature
 * and two app versions; publish() writes sequence N, replay() puts an old one back, requests()
 * counts what the server answered (bytes: the size of each GET'd object).
 */
import { serializeManifest } from '../src/manifest/document.ts';
import { manifestOf } from './manifest-publish.ts';
import { manifestBundle } from './fleet.ts';
import { createMinisignKey, type MinisignTestKey } from './minisign.ts';
import { startReleaseServer, type ReleaseServer } from './release-server.ts';

export interface FleetSource {
  readonly server: ReleaseServer;
  readonly key: MinisignTestKey;
  readonly manifestUrl: string;
  publish(sequence: number, offer: { readonly rollout?: number; readonly pulled?: boolean }, options?: { readonly expires?: string }): Promise<void>;
  replay(sequence: number): Promise<void>;
  requests(): { readonly count: number; readonly bytes: number };
}

export async function startFleetSource(oldVersion: string, newVersion: string): Promise<FleetSource> {
  const server = await startReleaseServer();
  const key = createMinisignKey();
  const sizes = new Map<string, number>();
  const old = { version: oldVersion, body: manifestBundle(oldVersion) };
  const next = { version: newVersion, body: manifestBundle(newVersion) };
  for (const offer of [old, next]) sizes.set(`/fleet/app-${offer.version}.mjs`, server.publish(`/fleet/app-${offer.version}.mjs`, offer.body).size);
  const published = new Map<number, { text: string; signature: string }>();
  const put = (text: string, signature: string) => {
    sizes.set('/fleet/manifest.json.minisig', server.publish('/fleet/manifest.json.minisig', signature).size);
    sizes.set('/fleet/manifest.json', server.publish('/fleet/manifest.json', text).size);
  };
  const source: FleetSource = {
    server,
    key,
    manifestUrl: server.url('/fleet/manifest.json'),
    async publish(sequence, offer, options = {}) {
      const releases = sequence === 1 ? [old] : [old, { ...next, ...offer }];
      const text = serializeManifest(manifestOf(sequence, { stable: releases }, options.expires));
      const signature = key.sign(Buffer.from(text));
      published.set(sequence, { text, signature });
      put(text, signature);
    },
    async replay(sequence) {
      const old = published.get(sequence);
      if (old === undefined) throw new Error(`sequence ${sequence} was never published`);
      put(old.text, old.signature);
    },
    requests() {
      let bytes = 0;
      for (const request of server.requests) if (request.method === 'GET') bytes += sizes.get(request.path) ?? 0;
      return { count: server.requests.length, bytes };
    },
  };
  await source.publish(1, {});
  return source;
}
