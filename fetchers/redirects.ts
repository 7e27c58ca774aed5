/**
 * Where a fetcher may send its credentials: the transport policy every network fetcher shares.
 * Plain http: is refused except on loopback (the tests and the demo serve releases on
 * 127.0.0.1) unless the user allows it; a redirect may never go from https: to http:; and a
 * redirect to another origin (scheme, host and port) carries none of the configured headers.
 */
import { OverseerError } from '../src/errors.js';
import { invalidOption } from '../src/options.js';

export const MAX_REDIRECTIONS = 5;
const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);
const warned = new Set<string>();

export function isRedirect(statusCode: number): boolean {
  return REDIRECT_STATUSES.has(statusCode);
}

/** 127.0.0.0/8, ::1 and localhost: traffic that never leaves the machine. */
export function isLoopback(url: URL): boolean {
  const host = url.hostname.toLowerCase();
  return host === 'localhost' || host.endsWith('.localhost') || host === '[::1]' || /^127(\.\d{1,3}){3}$/.test(host);
}

/** A plain-http URL to another machine: readable and changeable by anyone on the path. */
export function isInsecure(url: URL): boolean {
  return url.protocol === 'http:' && !isLoopback(url);
}

/**
 * Checks a configured URL: plain http: to another machine throws ERR_OVERSEER_INVALID_CONFIG
 * unless `allowInsecureHttp`, and then warns once per origin.
 */
export function assertSecureOption(url: URL, option: string, fetcher: string, allowInsecureHttp: boolean): void {
  if (!isInsecure(url)) return;
  if (!allowInsecureHttp) {
    throw invalidOption(
      option,
      `an https: URL (plain http: is accepted only for loopback hosts, or with ${fetcher}.allowInsecureHttp: true, which lets anyone on the network read the credentials and change the release)`,
      `${url.origin}${url.pathname}`,
    );
  }
  warnInsecure(url, fetcher);
}

/**
 * The next hop of a redirect from `from` to `location`, or a thrown ERR_OVERSEER_INSECURE_REDIRECT.
 * `crossOrigin` tells the caller to drop every configured header from here on.
 */
export function redirectTarget(
  from: URL,
  location: string,
  fetcher: string,
  allowInsecureHttp: boolean,
): { readonly url: URL; readonly crossOrigin: boolean } {
  const shown = `${from.origin}${from.pathname}`;
  let url: URL;
  try {
    url = new URL(location, from);
  } catch (error) {
    throw new OverseerError('ERR_OVERSEER_FETCH_FAILED', `${shown} redirected to ${JSON.stringify(location.slice(0, 200))}, which is not a URL`, {
      cause: error,
      subject: shown,
    });
  }
  const target = `${url.origin}${url.pathname}`;
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw insecure(`${shown} redirected to ${target}, which is not http: or https:; the redirect is not followed`, shown);
  }
  if (from.protocol === 'https:' && url.protocol === 'http:') {
    throw insecure(
      `${shown} redirected from https: to plain http: (${target}); the redirect is refused, as it would hand the download to anyone on the network. Fix the server's redirect to stay on https:`,
      shown,
    );
  }
  if (isInsecure(url)) {
    if (!allowInsecureHttp) {
      throw insecure(
        `${shown} redirected to plain http: on another machine (${target}); the redirect is refused. Serve it over https:, or set ${fetcher}.allowInsecureHttp: true to accept that risk`,
        shown,
      );
    }
    warnInsecure(url, fetcher);
  }
  return { url, crossOrigin: url.origin !== from.origin };
}

export function tooManyRedirects(from: URL): OverseerError {
  const shown = `${from.origin}${from.pathname}`;
  return new OverseerError('ERR_OVERSEER_FETCH_FAILED', `${shown} redirected more than ${MAX_REDIRECTIONS} times; point the fetcher at the final URL`, {
    subject: shown,
  });
}

function insecure(message: string, subject: string): OverseerError {
  return new OverseerError('ERR_OVERSEER_INSECURE_REDIRECT', message, { subject });
}

function warnInsecure(url: URL, fetcher: string): void {
  if (warned.has(url.origin)) return;
  warned.add(url.origin);
  process.emitWarning(
    `${fetcher} fetches from ${url.origin} over plain http: (allowInsecureHttp is set): anyone on the network can read its credentials and change the release; use https: or sign releases (verify.publicKey)`,
    { code: 'OVERSEER_INSECURE_HTTP' },
  );
}

/**
 * A fetch for clients that take one (Octokit) that follows redirects itself under this policy:
 * fetch's own `redirect: 'follow'` takes https: to http: and keeps custom headers across origins.
 */
export function policedFetch(fetcher: string, allowInsecureHttp: boolean): typeof fetch {
  return async (input, init = {}) => {
    const first = new URL(input instanceof Request ? input.url : String(input));
    let current = first;
    let options: RequestInit = { ...init, redirect: 'manual' };
    for (let redirects = 0; ; redirects += 1) {
      const response = await fetch(current, options);
      const location = response.headers.get('location');
      if (!isRedirect(response.status) || location === null) return response;
      await response.body?.cancel().catch(() => undefined);
      if (redirects === MAX_REDIRECTIONS) throw tooManyRedirects(first);
      const next = redirectTarget(current, location, fetcher, allowInsecureHttp);
      // 303 turns any method into a bodiless GET, as fetch does.
      if (response.status === 303 && options.method !== undefined && options.method !== 'GET' && options.method !== 'HEAD') {
        const { body: _body, duplex: _duplex, ...rest } = options as RequestInit & { duplex?: string };
        options = { ...rest, method: 'GET' };
      }
      // The token and every other header stay with the origin they were given for.
      if (next.crossOrigin) options = { ...options, headers: {} };
      current = next.url;
    }
  };
}
