/**
 * The part of undici a poll needs: EnvHttpProxyAgent (HTTP_PROXY, HTTPS_PROXY, NO_PROXY) and
 * request(). undici's index loads all of undici (fetch, WebSocket, EventSource, cache, mocks):
 * about 17 MB in the master, where these two modules alone cost about 9 MB (docs/benchmarks.md).
 * They load by their paths inside the package (undici-parts.ts; the build bundles them into one
 * chunk); an undici laid out otherwise falls back to the whole package, so a new undici costs
 * memory, never a failed poll.
 */
import type { Dispatcher, EnvHttpProxyAgent } from 'undici';

export interface RequestOptions {
  readonly method: 'GET' | 'HEAD';
  readonly headers: Readonly<Record<string, string>>;
  readonly dispatcher: Dispatcher;
  readonly signal: AbortSignal;
}

export interface LeanUndici {
  readonly EnvHttpProxyAgent: typeof EnvHttpProxyAgent;
  readonly request: (url: URL, options: RequestOptions) => Promise<Dispatcher.ResponseData>;
  /** 'lean' when the two modules loaded by path, 'full' after a fallback to the package's index. */
  readonly loaded: 'lean' | 'full';
}

type ApiRequest = (this: Dispatcher, options: Dispatcher.RequestOptions) => Promise<Dispatcher.ResponseData>;
interface Api {
  readonly request: ApiRequest;
  readonly connect: unknown;
}

/** undici's request(url, opts) for a URL and a dispatcher: what its index's makeDispatcher does. */
function requestWith(apiRequest: ApiRequest): LeanUndici['request'] {
  return (url, { method, headers, dispatcher, signal }) =>
    apiRequest.call(dispatcher, { origin: url.origin, path: `${url.pathname}${url.search}`, method, headers, signal });
}

/** Loads the lean part, or the whole package when its layout is not the expected one. */
export async function loadLeanUndici(): Promise<LeanUndici> {
  try {
    const parts = (await import('./undici-parts.js')).undiciParts();
    const Agent = parts.agent as typeof EnvHttpProxyAgent;
    const api = parts.api as Api;
    const base = parts.dispatcher as { prototype?: object };
    if (typeof Agent === 'function' && typeof api.request === 'function' && typeof api.connect === 'function' && typeof base.prototype === 'object') {
      // As undici's index does: clients reach request/connect as methods (a proxy's CONNECT uses them).
      Object.assign(base.prototype, api);
      return { EnvHttpProxyAgent: Agent, request: requestWith(api.request), loaded: 'lean' };
    }
  } catch {
    // Another layout: the package's public entry below.
  }
  const undici = await import('undici');
  return {
    EnvHttpProxyAgent: undici.EnvHttpProxyAgent,
    request: (url, options) => undici.request(url, { ...options }),
    loaded: 'full',
  };
}
