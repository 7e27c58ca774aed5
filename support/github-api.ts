/**
 * A local stand-in for GitHub's REST API (the release endpoints GitHubFetcher uses) on
 * 127.0.0.1:0, plus a second server on another port playing the signed-URL asset host that
 * GitHub redirects downloads to. Both record every request, so tests can assert auth and 304s.
 */
import { createHash } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ApiRequest {
  /** 'api' for the REST API, 'download' for the asset host. */
  readonly server: 'api' | 'download';
  readonly method: string;
  /** Path and query, as received (with the API's path prefix). */
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
  /** Status the server answered. */
  readonly status: number;
}

export interface PublishedAsset {
  readonly id: number;
  readonly name: string;
  readonly body: Buffer;
  readonly updatedAt: string;
  readonly browserDownloadUrl: string;
}

export interface PublishedRelease {
  readonly id: number;
  readonly tag: string;
  readonly assets: readonly PublishedAsset[];
}

export interface ReleaseSpec {
  readonly tag: string;
  readonly prerelease?: boolean;
  readonly draft?: boolean;
  readonly assets: readonly { readonly name: string; readonly body: string | Uint8Array }[];
}

export interface GitHubApiOptions {
  readonly owner?: string;
  readonly repo?: string;
  /** Serve the API under a path, as GitHub Enterprise does with '/api/v3'. */
  readonly pathPrefix?: string;
  /** Make the repository private: the API answers 404 without this token and 401 with another. */
  readonly token?: string;
  /** Serve the API over https: with this key and certificate (the asset host stays plain http:). */
  readonly tls?: { readonly key: string | Buffer; readonly cert: string | Buffer };
}

export interface GitHubApi {
  /** What GitHubFetcher's baseUrl should be: origin plus path prefix, no trailing slash. */
  readonly baseUrl: string;
  /** Origin of the asset host that downloads are redirected to. */
  readonly downloadOrigin: string;
  readonly owner: string;
  readonly repo: string;
  /** Every request either server received, in order of arrival. */
  readonly requests: ApiRequest[];
  /** Adds a release (or replaces the one with the same tag, with new asset ids and times); newest is listed first. */
  publishRelease(spec: ReleaseSpec): PublishedRelease;
  /** Adds an asset to a published release, the others untouched (as a slow release upload does). */
  uploadAsset(tag: string, asset: { readonly name: string; readonly body: string | Uint8Array }): PublishedAsset;
  /** While on, the API answers 403 with an exhausted rate limit, as GitHub does. */
  setRateLimited(limited: boolean): void;
  /** While set, the asset host sends each download one byte every `every` ms (a hostile or dying link). */
  setDownloadDrip(every: number | undefined): void;
  close(): Promise<void>;
}

interface StoredRelease {
  readonly id: number;
  readonly spec: ReleaseSpec;
  readonly createdAt: string;
  assets: PublishedAsset[];
}

export async function startGitHubApi(options: GitHubApiOptions = {}): Promise<GitHubApi> {
  const owner = options.owner ?? 'acme';
  const repo = options.repo ?? 'app';
  const prefix = options.pathPrefix ?? '';
  const requests: ApiRequest[] = [];
  let releases: StoredRelease[] = [];
  let nextId = 1;
  let rateLimited = false;
  let dripEvery: number | undefined;
  // Distinct, increasing timestamps, like GitHub's second-precision ones.
  const stamp = () => new Date(Date.UTC(2024, 0, 1) + nextId * 1000).toISOString().replace('.000', '');

  const send = (
    server: ApiRequest['server'],
    request: IncomingMessage,
    response: ServerResponse,
    status: number,
    headers: Record<string, string>,
    body?: string | Buffer,
  ) => {
    requests.push({ server, method: request.method ?? '', url: request.url ?? '', headers: request.headers, status });
    response.writeHead(status, headers);
    response.end(body);
  };
  const sendJson = (request: IncomingMessage, response: ServerResponse, status: number, value: unknown, extra = {}) =>
    send('api', request, response, status, { 'content-type': 'application/json; charset=utf-8', ...extra }, JSON.stringify(value));

  const download = http.createServer((request, response) => {
    const url = new URL(request.url ?? '/', 'http://x');
    const byId = /^\/download\/(\d+)$/.exec(url.pathname);
    const byName = /^\/[^/]+\/[^/]+\/releases\/download\/([^/]+)\/([^/]+)$/.exec(url.pathname);
    const asset = releases
      .flatMap((release) => release.assets.map((item) => ({ release, item })))
      .find(({ release, item }) =>
        byId
          ? String(item.id) === byId[1]
          : byName !== null && release.spec.tag === decodeURIComponent(byName[1] ?? '') && item.name === decodeURIComponent(byName[2] ?? ''),
      )?.item;
    if (asset === undefined) return send('download', request, response, 404, { 'content-type': 'text/plain' }, 'no such asset');
    if (dripEvery !== undefined) return drip('download', request, response, asset.body, dripEvery);
    send('download', request, response, 200, { 'content-type': 'application/octet-stream' }, asset.body);
  });

  const drip = (server: ApiRequest['server'], request: IncomingMessage, response: ServerResponse, body: Buffer, every: number) => {
    requests.push({ server, method: request.method ?? '', url: request.url ?? '', headers: request.headers, status: 200 });
    response.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': body.length });
    response.flushHeaders();
    let offset = 0;
    const timer = setInterval(() => {
      if (response.destroyed || offset >= body.length) {
        clearInterval(timer);
        if (!response.destroyed) response.end();
        return;
      }
      response.write(body.subarray(offset, offset + 1));
      offset += 1;
    }, every);
    response.once('close', () => clearInterval(timer));
  };

  const onApiRequest = (request: IncomingMessage, response: ServerResponse) => {
    const url = new URL(request.url ?? '/', 'http://x');
    const base = `${prefix}/repos/${owner}/${repo}/releases`;
    if (rateLimited) {
      const reset = String(Math.floor(Date.now() / 1000) + 3600);
      return sendJson(request, response, 403, { message: 'API rate limit exceeded' }, {
        'x-ratelimit-remaining': '0',
        'x-ratelimit-reset': reset,
      });
    }
    if (options.token !== undefined && request.headers.authorization !== `token ${options.token}`) {
      return request.headers.authorization === undefined
        ? sendJson(request, response, 404, { message: 'Not Found' })
        : sendJson(request, response, 401, { message: 'Bad credentials' });
    }
    if (request.method === 'GET' && url.pathname === base) {
      const body = JSON.stringify(releases.map((release) => describeRelease(release)));
      const etag = `W/"${createHash('sha256').update(body).digest('hex').slice(0, 32)}"`;
      if (request.headers['if-none-match'] === etag) return send('api', request, response, 304, { etag });
      return send('api', request, response, 200, { 'content-type': 'application/json; charset=utf-8', etag }, body);
    }
    const assetRoute = new RegExp(`^${escape(base)}/assets/(\\d+)$`).exec(url.pathname);
    const asset = releases.flatMap((release) => release.assets).find((item) => String(item.id) === assetRoute?.[1]);
    if (request.method === 'GET' && asset !== undefined) {
      if (request.headers.accept === 'application/octet-stream') {
        // GitHub redirects to a short-lived signed URL on another host.
        return send('api', request, response, 302, { location: `${downloadOrigin}/download/${asset.id}?X-Amz-Signature=signed` });
      }
      return sendJson(request, response, 200, describeAsset(asset));
    }
    sendJson(request, response, 404, { message: 'Not Found', documentation_url: 'https://docs.github.com/rest' });
  };
  const api = options.tls === undefined ? http.createServer(onApiRequest) : https.createServer(options.tls, onApiRequest);

  const apiOrigin = (await listen(api)).replace(/^http:/, options.tls === undefined ? 'http:' : 'https:');
  const downloadOrigin = await listen(download);
  const baseUrl = `${apiOrigin}${prefix}`;

  const describeAsset = (asset: PublishedAsset) => ({
    id: asset.id,
    name: asset.name,
    label: null,
    content_type: 'application/octet-stream',
    state: 'uploaded',
    size: asset.body.length,
    created_at: asset.updatedAt,
    updated_at: asset.updatedAt,
    url: `${baseUrl}/repos/${owner}/${repo}/releases/assets/${asset.id}`,
    browser_download_url: asset.browserDownloadUrl,
  });
  const describeRelease = (release: StoredRelease) => ({
    id: release.id,
    tag_name: release.spec.tag,
    name: release.spec.tag,
    draft: release.spec.draft ?? false,
    prerelease: release.spec.prerelease ?? false,
    created_at: release.createdAt,
    published_at: release.spec.draft === true ? null : release.createdAt,
    url: `${baseUrl}/repos/${owner}/${repo}/releases/${release.id}`,
    assets: release.assets.map(describeAsset),
  });

  const createAsset = (tag: string, asset: { readonly name: string; readonly body: string | Uint8Array }): PublishedAsset => ({
    id: nextId++,
    name: asset.name,
    body: Buffer.from(asset.body),
    updatedAt: stamp(),
    browserDownloadUrl: `${downloadOrigin}/${owner}/${repo}/releases/download/${encodeURIComponent(tag)}/${encodeURIComponent(asset.name)}`,
  });

  return {
    baseUrl,
    downloadOrigin,
    owner,
    repo,
    requests,
    publishRelease(spec) {
      const id = nextId++;
      const assets = spec.assets.map((asset) => createAsset(spec.tag, asset));
      const stored: StoredRelease = { id, spec, createdAt: stamp(), assets };
      releases = [stored, ...releases.filter((release) => release.spec.tag !== spec.tag)];
      return { id, tag: spec.tag, assets };
    },
    uploadAsset(tag, asset) {
      const release = releases.find((candidate) => candidate.spec.tag === tag);
      if (release === undefined) throw new Error(`no release ${tag} to upload ${asset.name} to`);
      const created = createAsset(tag, asset);
      release.assets = [...release.assets.filter((item) => item.name !== asset.name), created];
      return created;
    },
    setRateLimited(limited) {
      rateLimited = limited;
    },
    setDownloadDrip(every) {
      dripEvery = every;
    },
    async close() {
      await Promise.all([api, download].map((server) => close(server)));
    },
  };
}

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

async function listen(server: http.Server | https.Server): Promise<string> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

async function close(server: http.Server | https.Server): Promise<void> {
  // fetch keeps connections alive; they would hold close() open.
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}
