/**
 * HttpFetcher: polls a release URL with HEAD, names the release by its ETag or Last-Modified,
 * reads optional sha256 and minisign sidecars, and streams the bytes with a GET on open().
 * undici (honouring HTTP_PROXY, HTTPS_PROXY and NO_PROXY) loads at the first fetch, never at import.
 */
import type { Readable } from 'node:stream';
import { debuglog } from 'node:util';
import type { Dispatcher } from 'undici';
import { describeError, OverseerError } from '../src/errors.js';
import { limitWasmCompilation } from '../src/core/master-flags.js';
import type { FetchContext, Fetcher, FetchResult, Release, ReleaseWants } from '../src/upgrade/fetcher.js';
import { assertOptions, required, rules, type OptionSpec } from '../src/options.js';
import { DOWNLOAD_LIMIT_SPEC, downloadLimits, limitDownload, type DownloadLimitOptions, type DownloadLimits } from './body.js';
import { assertSecureOption, isRedirect, MAX_REDIRECTIONS, redirectTarget, tooManyRedirects } from './redirects.js';
import { checkSignature, parseSha256, readSidecar } from './sidecars.js';
import { loadLeanUndici, type LeanUndici } from './undici-lean.js';
import {
  besideRelease,
  discard,
  fileNameOf,
  hasCode,
  header,
  identityOf,
  isSuccess,
  redact,
  requestError,
  statusError,
  withoutCredentials,
  withoutWeakPrefix,
} from './http-parts.js';

export interface HttpFetcherOptions extends DownloadLimitOptions {
  /** The release file (http: or https:). A path ending in `.gz` marks a gzip release. */
  readonly url: string | URL;
  /** How often the master polls, in ms. @default 300000 */
  readonly interval?: number;
  /**
   * Sent with every request (release and sidecars), e.g. `{ authorization: 'Bearer …' }`.
   * All of them are dropped when a redirect leaves the origin (scheme, host and port).
   */
  readonly headers?: Readonly<Record<string, string>>;
  /**
   * A sha256 sidecar: `<hex>` or sha256sum output (`<hex>  <file>`, one line per file).
   * @default `<url>.sha256` when verify.sha256 is 'required' (a 404 there means none), else none
   */
  readonly sha256Url?: string | URL;
  /**
   * The release's minisign signature (its `.minisig` file).
   * @default `<url>.minisig` when verify.publicKey is set (a 404 there means none), else none
   */
  readonly signatureUrl?: string | URL;
  /** Deadline for a response's headers (connect included) and for each silence within a body, in ms. @default 30000 */
  readonly timeout?: number;
  /** Accept plain http: URLs to hosts other than loopback (warns once per origin). @default false */
  readonly allowInsecureHttp?: boolean;
}

const SPEC: OptionSpec = {
  url: required(rules.httpUrl),
  interval: rules.interval,
  headers: rules.headers,
  sha256Url: rules.httpUrl,
  signatureUrl: rules.httpUrl,
  timeout: rules.timeout,
  allowInsecureHttp: rules.boolean,
  ...DOWNLOAD_LIMIT_SPEC,
};

const DEFAULT_INTERVAL = 300_000;
/** How long the sidecars of an unchanged release are trusted before they are read again. */
const SIDECARS_FRESH_MS = 10 * 60_000;
const DEFAULT_TIMEOUT = 30_000;
/** What every request carries; the only headers that follow a redirect to another origin. */
const BASE_HEADERS: Readonly<Record<string, string>> = { 'user-agent': 'overseer', 'accept-encoding': 'identity' };

const debug = debuglog('overseer');

let undici: Promise<LeanUndici> | undefined;

/** undici costs the master memory, so it loads once, at the first request of any HttpFetcher, and only the part a poll needs. */
function loadUndici(): Promise<LeanUndici> {
  limitWasmCompilation();
  undici ??= loadLeanUndici().catch((error: unknown) => {
    undici = undefined;
    throw error;
  });
  return undici;
}

interface Response {
  readonly statusCode: number;
  readonly headers: Dispatcher.ResponseData['headers'];
  readonly body: Dispatcher.ResponseData['body'];
  /** Detaches the caller's signal; call once the body is done with. */
  readonly release: () => void;
}

export class HttpFetcher implements Fetcher {
  /** The options the constructor checks, for callers that name them their own way (`overseer run`'s file and flags). */
  static readonly options: OptionSpec = SPEC;
  readonly name = 'http';
  readonly interval: number;
  readonly #url: URL;
  readonly #source: string;
  readonly #sha256Url: URL | undefined;
  readonly #signatureUrl: URL | undefined;
  readonly #headers: Record<string, string>;
  readonly #timeout: number;
  readonly #limits: DownloadLimits;
  readonly #allowInsecureHttp: boolean;
  #dispatcher: Promise<Dispatcher> | undefined;
  /** False once the server refused HEAD (405/501): every poll then describes an unnamed release. */
  #headAllowed = true;
  /**
   * Sidecars of the last named release, so an unchanged release costs one HEAD per poll. They
   * are read again after SIDECARS_FRESH_MS: a release re-signed or given a corrected checksum
   * under the same ETag is seen then (the master tries a release again when its signature changes).
   */
  #sidecars: { readonly key: string; readonly at: number; readonly sha256: string | undefined; readonly signature: string | undefined } | undefined;

  constructor(options: HttpFetcherOptions) {
    assertOptions('HttpFetcher', options, SPEC);
    this.interval = options.interval ?? DEFAULT_INTERVAL;
    this.#timeout = options.timeout ?? DEFAULT_TIMEOUT;
    this.#limits = downloadLimits(options);
    this.#allowInsecureHttp = options.allowInsecureHttp ?? false;
    const headers: Record<string, string> = { ...BASE_HEADERS };
    for (const [name, value] of Object.entries(options.headers ?? {})) headers[name.toLowerCase()] = value;
    const parse = (value: string | URL, option: string): URL => {
      const url = new URL(String(value));
      // Checked before the credentials move out of the URL: they are what plain http: would leak.
      assertSecureOption(url, `HttpFetcher.${option}`, 'HttpFetcher', this.#allowInsecureHttp);
      return withoutCredentials(url, headers);
    };
    this.#url = parse(options.url, 'url');
    this.#source = redact(this.#url);
    this.#sha256Url = options.sha256Url === undefined ? undefined : parse(options.sha256Url, 'sha256Url');
    this.#signatureUrl = options.signatureUrl === undefined ? undefined : parse(options.signatureUrl, 'signatureUrl');
    this.#headers = headers;
  }

  async fetch(context: FetchContext): Promise<FetchResult> {
    const { signal } = context;
    let id: string | undefined;
    let etag: string | undefined;
    let size: number | undefined;
    let gzip = this.#url.pathname.endsWith('.gz');
    if (this.#headAllowed) {
      const head = await this.#send(this.#url, 'HEAD', signal);
      await head.body.dump().catch(() => undefined);
      head.release();
      if (head.statusCode === 405 || head.statusCode === 501) {
        debug('http: %s refused HEAD (%d); polling with GET from now on', this.#source, head.statusCode);
        this.#headAllowed = false;
      } else if (!isSuccess(head.statusCode)) {
        throw statusError('HEAD', this.#source, head.statusCode);
      } else {
        etag = header(head.headers, 'etag');
        const length = header(head.headers, 'content-length');
        size = length !== undefined && /^\d+$/.test(length) ? Number(length) : undefined;
        id = identityOf(head.headers);
        // undici never decodes, so the bytes arrive exactly as the server sends them.
        gzip ||= /\b(x-)?gzip\b/i.test(header(head.headers, 'content-encoding') ?? '');
      }
    }
    const { sha256, signature } = await this.#readSidecars(id, context.wants, signal);
    const strict = sha256 !== undefined || signature !== undefined;
    const release: Release = {
      id,
      size,
      sha256,
      signature,
      gzip,
      source: this.#source,
      open: (openSignal) => this.#open(openSignal, etag, strict),
    };
    return { type: 'update', release };
  }

  /** Closes the connections; a later fetch() opens new ones. */
  async close(): Promise<void> {
    const dispatcher = this.#dispatcher;
    this.#dispatcher = undefined;
    if (dispatcher === undefined) return;
    try {
      await (await dispatcher).close();
    } catch {
      // undici never loaded or was already closed: nothing is left open.
    }
  }

  /**
   * GETs the release. When the ETag changed since the HEAD and sidecars were read, the
   * sidecars may describe the old bytes, so this fails and the next poll sees a consistent
   * set; without sidecars the newer bytes are fine (the master hashes what it receives).
   */
  async #open(signal: AbortSignal, headEtag: string | undefined, strict: boolean): Promise<Readable> {
    const response = await this.#send(this.#url, 'GET', signal);
    const { statusCode, body } = response;
    const etag = header(response.headers, 'etag');
    const changed = headEtag !== undefined && etag !== undefined && withoutWeakPrefix(etag) !== withoutWeakPrefix(headEtag);
    if (!isSuccess(statusCode) || (changed && strict)) {
      discard(body);
      response.release();
      if (!isSuccess(statusCode)) throw statusError('GET', this.#source, statusCode);
      throw new OverseerError(
        'ERR_OVERSEER_FETCH_FAILED',
        `${this.#source} changed between the poll and the download (ETag ${headEtag} became ${etag}); the next poll reads its new sidecars`,
        { subject: this.#source },
      );
    }
    if (changed) debug('http: %s changed between HEAD and GET (ETag %s -> %s)', this.#source, headEtag, etag);
    return this.#limit(response, this.#source, signal);
  }

  /** The body under the shared download limits, its undici errors worded, the signal detached at the end. */
  #limit(response: Response, source: string, signal: AbortSignal): Readable {
    const timeout = this.#timeout;
    const limited = limitDownload(response.body, {
      source,
      fetcher: 'HttpFetcher',
      limits: this.#limits,
      signal,
      explain: (error, received) =>
        hasCode(error, 'UND_ERR_BODY_TIMEOUT')
          ? `stalled: no data for ${timeout} ms after ${received} bytes (HttpFetcher.timeout)`
          : undefined,
    });
    limited.once('close', response.release);
    return limited;
  }

  /**
   * The sidecars: those configured, else the conventional `<url>.sha256` and `<url>.minisig`
   * when the master's verification requires them (where a 404 means the release has none).
   */
  async #readSidecars(
    id: string | undefined,
    wants: ReleaseWants | undefined,
    signal: AbortSignal,
  ): Promise<{ sha256: string | undefined; signature: string | undefined }> {
    const sha256Url = this.#sha256Url ?? (wants?.sha256 === true ? besideRelease(this.#url, '.sha256') : undefined);
    const signatureUrl = this.#signatureUrl ?? (wants?.signature === true ? besideRelease(this.#url, '.minisig') : undefined);
    if (sha256Url === undefined && signatureUrl === undefined) return { sha256: undefined, signature: undefined };
    const key = `${id}\n${sha256Url?.href ?? ''}\n${signatureUrl?.href ?? ''}`;
    if (id !== undefined && this.#sidecars?.key === key && Date.now() - this.#sidecars.at < SIDECARS_FRESH_MS) return this.#sidecars;
    // A conventional sidecar the master asked for may be absent (a 404 is none); a configured one may not.
    const conventional = { sha256: this.#sha256Url === undefined, signature: this.#signatureUrl === undefined };
    const [sha256, signature] = await Promise.all([
      sha256Url === undefined
        ? undefined
        : this.#readText(sha256Url, conventional.sha256 ? 'sha256 sidecar (verify.sha256 is required)' : 'sha256 sidecar (HttpFetcher.sha256Url)', signal, conventional.sha256)
            .then((text) => (text === undefined ? undefined : parseSha256(text, redact(sha256Url), fileNameOf(this.#url)))),
      signatureUrl === undefined
        ? undefined
        : this.#readText(signatureUrl, conventional.signature ? 'signature (verify.publicKey is set)' : 'signature (HttpFetcher.signatureUrl)', signal, conventional.signature)
            .then((text) => (text === undefined ? undefined : checkSignature(text, redact(signatureUrl)))),
    ]);
    if (id !== undefined) this.#sidecars = { key, at: Date.now(), sha256, signature };
    return { sha256, signature };
  }

  /** A sidecar's text; undefined for a 404 when `absentIsNone` (a conventional sidecar not published). */
  async #readText(url: URL, what: string, signal: AbortSignal, absentIsNone: boolean): Promise<string | undefined> {
    const source = redact(url);
    const response = await this.#send(url, 'GET', signal);
    if (!isSuccess(response.statusCode)) {
      await response.body.dump().catch(() => undefined);
      response.release();
      if (absentIsNone && response.statusCode === 404) return undefined;
      throw statusError('GET', `${source} (the ${what})`, response.statusCode);
    }
    // A sidecar can drip too: it is held to the same limits as the release.
    const body = this.#limit(response, source, signal);
    try {
      return await readSidecar(body, what, source);
    } catch (error) {
      if (signal.aborted) throw signal.reason;
      if (error instanceof OverseerError) throw error;
      throw requestError('GET', source, error, this.#timeout);
    } finally {
      body.destroy();
    }
  }

  /**
   * One request with a deadline for its headers, connect included (undici's own connect and
   * headers timeouts do not cover a proxy's CONNECT). Rejects with the caller's abort reason
   * when `signal` aborts, else with ERR_OVERSEER_FETCH_FAILED.
   */
  async #send(url: URL, method: 'GET' | 'HEAD', signal: AbortSignal): Promise<Response> {
    signal.throwIfAborted();
    const source = redact(url);
    let dispatcher: Dispatcher;
    let request: LeanUndici['request'];
    try {
      [dispatcher, { request }] = await Promise.all([this.#getDispatcher(), loadUndici()]);
    } catch (error) {
      throw new OverseerError('ERR_OVERSEER_FETCH_FAILED', `HttpFetcher could not load undici: ${describeError(error)}`, {
        cause: error,
        subject: source,
      });
    }
    signal.throwIfAborted();
    const controller = new AbortController();
    const onAbort = (): void => controller.abort(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    const release = (): void => signal.removeEventListener('abort', onAbort);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort();
    }, this.#timeout);
    let current = url;
    let headers = this.#headers;
    try {
      for (let redirects = 0; ; redirects += 1) {
        const response = await request(current, { method, headers, dispatcher, signal: controller.signal });
        if (timedOut) {
          discard(response.body);
          throw new Error('the deadline passed as the headers arrived');
        }
        const location = header(response.headers, 'location');
        if (!isRedirect(response.statusCode) || location === undefined) {
          return { statusCode: response.statusCode, headers: response.headers, body: response.body, release };
        }
        discard(response.body);
        if (redirects === MAX_REDIRECTIONS) throw tooManyRedirects(url);
        const next = redirectTarget(current, location, 'HttpFetcher', this.#allowInsecureHttp);
        // Another origin gets none of the configured headers (API keys, tokens, cookies), ever after.
        if (next.crossOrigin) headers = BASE_HEADERS;
        current = next.url;
      }
    } catch (error) {
      release();
      if (signal.aborted) throw signal.reason;
      if (error instanceof OverseerError) throw error;
      throw requestError(method, source, timedOut ? undefined : error, this.#timeout);
    } finally {
      clearTimeout(timer);
    }
  }

  #getDispatcher(): Promise<Dispatcher> {
    if (this.#dispatcher !== undefined) return this.#dispatcher;
    const timeout = this.#timeout;
    // Redirects are followed by #send, which checks each hop and drops headers across origins.
    const created = loadUndici().then(
      ({ EnvHttpProxyAgent }) => new EnvHttpProxyAgent({ connectTimeout: timeout, headersTimeout: timeout, bodyTimeout: timeout }),
    );
    created.catch(() => {
      if (this.#dispatcher === created) this.#dispatcher = undefined;
    });
    this.#dispatcher = created;
    return created;
  }
}
