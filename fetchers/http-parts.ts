/**
 * The small pieces HttpFetcher is built from: URLs as shown to users and stripped of
 * credentials, response headers and statuses, and request failures worded for users.
 */
import type { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import { describeError, OverseerError } from '../src/errors.js';

// Not an ESM import of node:http: on Node 22 and 24 that reads every export, and the lazy
// WebSocket getter loads Node's own undici, +10-14 MB RSS (docs/benchmarks.md §9 "Master memory").
const { STATUS_CODES } = process.getBuiltinModule('node:http');

/** Moves user:password from a URL into an Authorization header (unless one is set) and returns the URL without it. */
export function withoutCredentials(url: URL, headers: Record<string, string>): URL {
  if (url.username === '' && url.password === '') return url;
  const user = decodeURIComponent(url.username);
  const password = decodeURIComponent(url.password);
  headers['authorization'] ??= `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
  const bare = new URL(url.href);
  bare.username = '';
  bare.password = '';
  return bare;
}

/** The URL as events and errors show it: no credentials, no query (signed URLs carry secrets there). */
export function redact(url: URL): string {
  return `${url.origin}${url.pathname}${url.search === '' ? '' : '?…'}`;
}

/** The release's file name, which a several-line sha256 sidecar must name. */
export function fileNameOf(url: URL): string {
  return decodeURIComponent(url.pathname.slice(url.pathname.lastIndexOf('/') + 1));
}

export function requestError(method: string, source: string, error: unknown, timeout: number): OverseerError {
  const timedOut =
    error === undefined || hasCode(error, 'UND_ERR_CONNECT_TIMEOUT') || hasCode(error, 'UND_ERR_HEADERS_TIMEOUT');
  const message = timedOut
    ? `${method} ${source} got no response within ${timeout} ms; check the server or raise HttpFetcher.timeout`
    : hasCode(error, 'UND_ERR_BODY_TIMEOUT')
      ? `${method} ${source} stalled: no data for ${timeout} ms (HttpFetcher.timeout)`
      : `${method} ${source} failed: ${describeError(error)}`;
  return new OverseerError('ERR_OVERSEER_FETCH_FAILED', message, error === undefined ? { subject: source } : { cause: error, subject: source });
}

export function statusError(method: string, source: string, statusCode: number): OverseerError {
  const text = STATUS_CODES[statusCode];
  return new OverseerError(
    'ERR_OVERSEER_FETCH_FAILED',
    `${method} ${source} answered ${statusCode}${text === undefined ? '' : ` ${text}`}; check the URL and that the server publishes it`,
    { subject: source },
  );
}

export function header(headers: Dispatcher.ResponseData['headers'], name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** Drops a body nobody will read; undici reports that as an error, which is expected here. */
export function discard(body: Readable): void {
  body.on('error', () => undefined);
  body.destroy();
}

export function isSuccess(statusCode: number): boolean {
  return statusCode >= 200 && statusCode < 300;
}

export function withoutWeakPrefix(etag: string): string {
  return etag.startsWith('W/') ? etag.slice(2) : etag;
}

export function hasCode(error: unknown, code: string): boolean {
  return typeof error === 'object' && error !== null && (error as { code?: unknown }).code === code;
}

/** The conventional place of a sidecar: the release's URL with `suffix` added to its path (the query kept). */
export function besideRelease(url: URL, suffix: string): URL {
  const sidecar = new URL(url.href);
  sidecar.pathname += suffix;
  return sidecar;
}

/** A Last-Modified less than this before the response's Date may still change within its second. */
export const RACY_MS = 2000;

/**
 * The release's id: its ETag; else Last-Modified with Content-Length, once that timestamp is
 * old enough to trust. Last-Modified counts whole seconds, so bytes replaced later in the same
 * second keep it (and often their length), and an id taken then would hide the new bytes for
 * ever: git's "racy timestamp", handled the same way. A Last-Modified within RACY_MS of the
 * response's Date (of now without one), later, or unreadable gives no id: the master then
 * downloads and compares sha256, until the timestamp has aged.
 */
export function identityOf(headers: Dispatcher.ResponseData['headers'], now = Date.now()): string | undefined {
  const etag = header(headers, 'etag');
  if (etag !== undefined) return etag;
  const lastModified = header(headers, 'last-modified');
  if (lastModified === undefined) return undefined;
  const modified = Date.parse(lastModified);
  const date = Date.parse(header(headers, 'date') ?? '');
  const at = Number.isNaN(date) ? now : date;
  if (Number.isNaN(modified) || at - modified < RACY_MS) return undefined;
  return `${lastModified}; ${header(headers, 'content-length') ?? 'no length'}`;
}
