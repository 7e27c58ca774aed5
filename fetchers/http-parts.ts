/**
 * The small pieces HttpFetcher is built from: URLs as shown to users and stripped of
 * credentials, response headers and statuses, and request failures worded for users.
 */
import { STATUS_CODES } from 'node:http';
import type { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import { describeError, OverseerError } from '../src/errors.js';

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
