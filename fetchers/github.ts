/**
 * GitHubFetcher: the highest-semver release of a GitHub (or GitHub Enterprise) repository, one
 * asset of it, its checksum and minisign signature. Polls with If-None-Match so idle polls cost
 * no rate limit. @octokit/rest (an optional peer) is loaded at the first fetch, never at import.
 */
import { Readable } from 'node:stream';
import type { ReadableStream as NodeReadableStream } from 'node:stream/web';
import type * as OctokitRest from '@octokit/rest';
import prereleaseOf from 'semver/functions/prerelease.js';
import rcompare from 'semver/functions/rcompare.js';
import valid from 'semver/functions/valid.js';
import { OverseerError } from '../src/errors.js';
import { limitWasmCompilation } from '../src/core/master-flags.js';
import type { FetchContext, FetchResult, Fetcher, Release } from '../src/upgrade/fetcher.js';
import { anyOf, assertOptions, required, rule, rules, type OptionSpec } from '../src/options.js';
import { DOWNLOAD_LIMIT_SPEC, downloadLimits, limitDownload, type DownloadLimitOptions, type DownloadLimits } from './body.js';
import { assertSecureOption, policedFetch } from './redirects.js';
import { assetTest, type AssetMatcher, type AssetTest } from './github-assets.js';

export type { AssetMatcher } from './github-assets.js';

export interface GitHubFetcherOptions extends DownloadLimitOptions {
  /** Repository owner (user or organization). */
  readonly owner: string;
  /** Repository name. */
  readonly repo: string;
  /** Poll interval in ms. @default 300000 */
  readonly interval?: number;
  /**
   * Which asset of the release to run: a name, where `{platform}` and `{arch}` stand for this
   * process's (`'mytool-{platform}-{arch}'` is `mytool-linux-x64` here), a RegExp or a predicate.
   * @default the asset named for this platform and arch, in any common spelling
   */
  readonly asset?: AssetMatcher;
  /** A token for private repositories and a higher rate limit. */
  readonly token?: string;
  /** API root; for GitHub Enterprise Server 'https://HOST/api/v3'. @default 'https://api.github.com' */
  readonly baseUrl?: string | URL;
  /** Consider prereleases (flagged on GitHub or with a semver prerelease part). @default false */
  readonly prerelease?: boolean;
  /** Accept a plain http: baseUrl on a host other than loopback (warns once). @default false */
  readonly allowInsecureHttp?: boolean;
}

type OctokitModule = typeof OctokitRest;
type Octokit = OctokitRest.Octokit;

interface AssetData {
  readonly id: number;
  readonly name: string;
  readonly size: number;
  readonly updated_at: string;
  readonly browser_download_url: string;
}

/** What a listing resolved to, and the asset and sidecar stamps it was built from. */
interface Resolved {
  readonly result: FetchResult;
  readonly key: string | undefined;
}

interface ReleaseData {
  readonly tag_name: string;
  readonly draft: boolean;
  readonly prerelease: boolean;
  readonly assets: readonly AssetData[];
}

const SPEC: OptionSpec = {
  owner: required(rules.nonEmptyString),
  repo: required(rules.nonEmptyString),
  interval: rules.interval,
  asset: anyOf(
    rule('an asset name (a non-empty string)', rules.nonEmptyString.test),
    rules.regExp,
    rule('a function (name) => boolean', rules.function.test),
  ),
  token: rules.nonEmptyString,
  baseUrl: rules.httpUrl,
  prerelease: rules.boolean,
  allowInsecureHttp: rules.boolean,
  ...DOWNLOAD_LIMIT_SPEC,
};
const DEFAULT_INTERVAL = 300_000;

/** Checksum and signature files are never the release itself, whatever the matcher says. */
const SIDECAR = /\.(sha256|sha512|minisig|sig|asc)$|(^|[-_.])checksums?\.txt$|^sha(256|512)sums(\.txt)?$/i;
const CHECKSUM_LIST = /(^|[-_.])checksums?\.txt$|^sha256sums(\.txt)?$|\.sha256$/i;
/** Checksum and signature files are a few lines; anything larger is not one. */
const SIDECAR_LIMIT = 1024 * 1024;
const silent = () => {};

/**
 * Releases from a repository's GitHub releases: the highest semver tag, one asset of it, its
 * sha256 from a checksum file and its `.minisig`. Throws ERR_OVERSEER_INVALID_CONFIG on bad options.
 */
export class GitHubFetcher implements Fetcher {
  /** The options the constructor checks, for callers that name them their own way (`overseer run`'s file and flags). */
  static readonly options: OptionSpec = SPEC;
  readonly name = 'github';
  readonly interval: number;
  readonly #owner: string;
  readonly #repo: string;
  readonly #asset: AssetTest;
  readonly #token: string | undefined;
  readonly #baseUrl: string;
  readonly #prerelease: boolean;
  readonly #limits: DownloadLimits;
  readonly #fetch: typeof fetch;
  #sdk: Promise<OctokitModule> | undefined;
  #octokit: Octokit | undefined;
  /** The last listing's ETag and what it resolved to, for If-None-Match polling. */
  #last: Resolved & { readonly etag: string | undefined } | undefined;

  constructor(options: GitHubFetcherOptions) {
    assertOptions('GitHubFetcher', options, SPEC);
    this.#owner = options.owner;
    this.#repo = options.repo;
    this.interval = options.interval ?? DEFAULT_INTERVAL;
    this.#asset = assetTest(options.asset);
    this.#token = options.token;
    this.#baseUrl = String(options.baseUrl ?? 'https://api.github.com').replace(/\/+$/, '');
    this.#prerelease = options.prerelease ?? false;
    this.#limits = downloadLimits(options);
    const allowInsecureHttp = options.allowInsecureHttp ?? false;
    assertSecureOption(new URL(this.#baseUrl), 'GitHubFetcher.baseUrl', 'GitHubFetcher', allowInsecureHttp);
    this.#fetch = policedFetch('GitHubFetcher', allowInsecureHttp);
  }

  async fetch(context: FetchContext): Promise<FetchResult> {
    try {
      const octokit = await this.#connect();
      const last = this.#last;
      let response;
      try {
        response = await octokit.request('GET /repos/{owner}/{repo}/releases', {
          owner: this.#owner,
          repo: this.#repo,
          per_page: 100,
          headers: last?.etag === undefined ? {} : { 'if-none-match': last.etag },
          request: { signal: context.signal },
        });
      } catch (error) {
        // Octokit turns 304 Not Modified into a RequestError; for us it means "as last time".
        if (statusOf(error) === 304 && last !== undefined) return last.result;
        throw error;
      }
      const resolved = await this.#resolve(response.data as unknown, last, context.signal);
      this.#last = { ...resolved, etag: response.headers.etag };
      return resolved.result;
    } catch (error) {
      if (context.signal.aborted) throw context.signal.reason;
      throw this.#failure(error, `could not list the releases of ${this.#owner}/${this.#repo}`);
    }
  }

  close(): void {
    this.#octokit = undefined;
    this.#last = undefined;
  }

  async #resolve(data: unknown, previous: Resolved | undefined, signal: AbortSignal): Promise<Resolved> {
    const latest = this.#pickRelease(data);
    if (latest === undefined) return { result: { type: 'none' }, key: undefined };
    const { release, version } = latest;
    const assets = release.assets;
    const asset = assets.find((candidate) => this.#isWanted(candidate.name));
    if (asset === undefined) {
      const names = assets.map((candidate) => JSON.stringify(candidate.name)).join(', ') || 'none';
      throw new OverseerError(
        'ERR_OVERSEER_FETCH_FAILED',
        `release ${release.tag_name} of ${this.#owner}/${this.#repo} has no asset matching ${this.#asset.wanted} (its assets: ${names}); set GitHubFetcher.asset to a name, RegExp or predicate that picks one`,
        { subject: release.tag_name },
      );
    }
    const id = `${release.tag_name}:${asset.id}:${asset.updated_at}`;
    const signatureAsset = assets.find((candidate) => candidate.name === `${asset.name}.minisig`);
    const lists = this.#checksumLists(asset, assets);
    // A changed listing (a new draft, an edited note) often still points at the same files; a
    // checksum or signature uploaded after the asset changes the key, so it is read then.
    const key = [id, ...[...lists, ...(signatureAsset ? [signatureAsset] : [])].map((item) => `${item.id}:${item.updated_at}`)].join(' ');
    if (previous?.key === key) return previous;
    const described: Release = {
      id,
      version,
      size: asset.size,
      sha256: await this.#checksumOf(asset, lists, signal),
      signature: signatureAsset === undefined ? undefined : await this.#downloadText(signatureAsset, signal),
      gzip: asset.name.endsWith('.gz'),
      source: asset.browser_download_url,
      open: (openSignal) => this.#open(asset, openSignal),
    };
    return { result: { type: 'update', release: described }, key };
  }

  #pickRelease(data: unknown): { release: ReleaseData; version: string } | undefined {
    if (!Array.isArray(data)) {
      throw new OverseerError(
        'ERR_OVERSEER_FETCH_FAILED',
        `the releases of ${this.#owner}/${this.#repo} at ${this.#baseUrl} are not a JSON array; check GitHubFetcher.baseUrl`,
        { subject: this.#baseUrl },
      );
    }
    const candidates: { release: ReleaseData; version: string }[] = [];
    for (const release of data as ReleaseData[]) {
      if (release.draft || typeof release.tag_name !== 'string' || !Array.isArray(release.assets)) continue;
      const version = valid(release.tag_name.replace(/^v/, ''));
      if (version === null) continue;
      if (!this.#prerelease && (release.prerelease || prereleaseOf(version) !== null)) continue;
      candidates.push({ release, version });
    }
    return candidates.sort((a, b) => rcompare(a.version, b.version))[0];
  }

  #isWanted(name: string): boolean {
    if (name === this.#asset.exact) return true;
    return !SIDECAR.test(name) && this.#asset.test(name);
  }

  /** `<asset>.sha256` first, then checksums.txt, SHA256SUMS and *.sha256 lists (not other assets' sidecars). */
  #checksumLists(asset: AssetData, assets: readonly AssetData[]): AssetData[] {
    const sidecar = `${asset.name}.sha256`;
    const names = new Set(assets.map((candidate) => candidate.name));
    const isOthersSidecar = (name: string) =>
      name !== sidecar && /\.sha256$/i.test(name) && names.has(name.slice(0, -'.sha256'.length));
    return assets
      .filter((candidate) => candidate.id !== asset.id && CHECKSUM_LIST.test(candidate.name) && !isOthersSidecar(candidate.name))
      .sort((a, b) => Number(b.name === sidecar) - Number(a.name === sidecar));
  }

  /** The asset's sha256 from the first list that names it (a bare hash counts in its own sidecar). */
  async #checksumOf(asset: AssetData, lists: readonly AssetData[], signal: AbortSignal): Promise<string | undefined> {
    const sidecar = `${asset.name}.sha256`;
    for (const list of lists) {
      const text = await this.#downloadText(list, signal);
      for (const line of text.split(/\r?\n/)) {
        const entry = /^([0-9a-f]{64})(?:\s+\*?(?:\.\/)?(.+?))?\s*$/i.exec(line.trim());
        if (entry?.[1] === undefined) continue;
        if (entry[2] === asset.name || (entry[2] === undefined && list.name === sidecar)) {
          return entry[1].toLowerCase();
        }
      }
    }
    return undefined;
  }

  async #downloadText(asset: AssetData, signal: AbortSignal): Promise<string> {
    const chunks: Buffer[] = [];
    let length = 0;
    for await (const chunk of await this.#open(asset, signal)) {
      length += (chunk as Buffer).length;
      if (length > SIDECAR_LIMIT) {
        throw new OverseerError(
          'ERR_OVERSEER_FETCH_FAILED',
          `asset ${asset.name} of ${this.#owner}/${this.#repo} is over ${SIDECAR_LIMIT} bytes, too large for a checksum or signature file`,
          { subject: asset.browser_download_url },
        );
      }
      chunks.push(chunk as Buffer);
    }
    return Buffer.concat(chunks).toString('utf8');
  }

  /**
   * Streams an asset through the API URL (private repositories need the token there). GitHub
   * answers 302 to a signed URL on another host; policedFetch follows it without any of the
   * request's headers (the token stays with GitHub) and never from https: to http:.
   */
  async #open(asset: AssetData, signal: AbortSignal): Promise<Readable> {
    try {
      const octokit = await this.#connect();
      const response = await octokit.request('GET /repos/{owner}/{repo}/releases/assets/{asset_id}', {
        owner: this.#owner,
        repo: this.#repo,
        asset_id: asset.id,
        headers: { accept: 'application/octet-stream' },
        request: { parseSuccessResponseBody: false, signal },
      });
      const body = response.data as unknown;
      if (!(body instanceof ReadableStream)) {
        throw new OverseerError('ERR_OVERSEER_FETCH_FAILED', `asset ${asset.name} answered without a body`, {
          subject: asset.browser_download_url,
        });
      }
      return limitDownload(Readable.fromWeb(body as NodeReadableStream<Uint8Array>), {
        source: asset.browser_download_url,
        fetcher: 'GitHubFetcher',
        limits: this.#limits,
        signal,
      });
    } catch (error) {
      if (signal.aborted) throw signal.reason;
      throw this.#failure(error, `could not download ${asset.name} of ${this.#owner}/${this.#repo}`);
    }
  }

  #connect(): Promise<Octokit> {
    // Octokit speaks through fetch, whose HTTP parser is WebAssembly (see memory.ts).
    limitWasmCompilation();
    this.#sdk ??= import('@octokit/rest').catch((error: unknown) => {
      this.#sdk = undefined;
      throw new OverseerError(
        'ERR_OVERSEER_FETCH_FAILED',
        'GitHubFetcher needs the package @octokit/rest; install it with `npm install @octokit/rest`',
        { cause: error, subject: '@octokit/rest' },
      );
    });
    return this.#sdk.then(({ Octokit }) => {
      this.#octokit ??= new Octokit({
        baseUrl: this.#baseUrl,
        userAgent: 'overseer',
        log: { debug: silent, info: silent, warn: silent, error: silent },
        request: { fetch: this.#fetch },
        ...(this.#token === undefined ? {} : { auth: this.#token }),
      });
      return this.#octokit;
    });
  }

  #failure(error: unknown, what: string): OverseerError {
    if (error instanceof OverseerError) return error;
    // Octokit wraps what its fetch threw (a refused redirect) in a RequestError.
    const cause = (error as { cause?: unknown } | null)?.cause;
    if (cause instanceof OverseerError) return cause;
    return new OverseerError('ERR_OVERSEER_FETCH_FAILED', `GitHubFetcher ${what}: ${this.#reasonOf(error)}`, {
      cause: error,
      subject: `${this.#owner}/${this.#repo}`,
    });
  }

  /** What went wrong with an API call, and how to fix it where we can tell. */
  #reasonOf(error: unknown): string {
    const status = statusOf(error);
    const response = (error as { response?: { headers?: Record<string, string | undefined> } } | null)?.response;
    const headers = response?.headers;
    const message = error instanceof Error ? error.message : String(error);
    if (status === 404) {
      return `not found (404) at ${this.#baseUrl}; check GitHubFetcher.owner and GitHubFetcher.repo, and pass a token for a private repository`;
    }
    if (status === 401) return 'the token was refused (401); check GitHubFetcher.token';
    if ((status === 403 || status === 429) && headers?.['x-ratelimit-remaining'] === '0') {
      return `the rate limit is used up until ${resetTime(headers['x-ratelimit-reset'])}; pass GitHubFetcher.token for a higher limit`;
    }
    // Octokit reports network failures as status 500 without a response, with the cause's message.
    if (status !== undefined && response !== undefined) return `GitHub answered ${status}: ${message}`;
    return `could not reach ${this.#baseUrl}: ${message}`;
  }
}


function statusOf(error: unknown): number | undefined {
  const status = (error as { status?: unknown } | null)?.status;
  return typeof status === 'number' ? status : undefined;
}

function resetTime(reset: string | undefined): string {
  const seconds = Number(reset);
  return Number.isFinite(seconds) && seconds > 0 ? new Date(seconds * 1000).toISOString() : 'the reset time';
}
