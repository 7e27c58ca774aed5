/**
 * Release bodies as the master consumes them, the same for every fetcher: a Node Readable that
 * ends with the master's abort reason when the poll is aborted, fails with a coded error when the
 * transfer breaks off, and is cut when it outlives its deadline or drips below a minimum rate
 * (a server sending one byte just inside every timeout must not hold a poll open for ever).
 */
import { Transform, type Readable } from 'node:stream';
import { describeError, OverseerError } from '../src/errors.js';
import { rule, rules, type OptionSpec } from '../src/options.js';

/** The options every network fetcher takes for its downloads (release and sidecars). */
export interface DownloadLimitOptions {
  /** The whole download, from the response's headers to its last byte, in ms. @default 3600000 (1 h) */
  readonly downloadTimeout?: number;
  /** Fewer bytes than this per second, averaged over each `downloadRateWindow`, cut the download. 0 turns it off. @default 1024 */
  readonly minDownloadRate?: number;
  /** The window over which `minDownloadRate` is measured, in ms. @default 60000 */
  readonly downloadRateWindow?: number;
}

export interface DownloadLimits {
  readonly timeout: number;
  readonly minRate: number;
  readonly rateWindow: number;
}

export const DOWNLOAD_LIMIT_DEFAULTS: DownloadLimits = { timeout: 3_600_000, minRate: 1024, rateWindow: 60_000 };

export const DOWNLOAD_LIMIT_SPEC: OptionSpec = {
  downloadTimeout: rules.timeout,
  minDownloadRate: rule(
    'a rate in bytes per second (a number from 0; 0 turns the check off)',
    (value) => typeof value === 'number' && Number.isFinite(value) && value >= 0,
  ),
  downloadRateWindow: rules.timeout,
};

export function downloadLimits(options: DownloadLimitOptions): DownloadLimits {
  return {
    timeout: options.downloadTimeout ?? DOWNLOAD_LIMIT_DEFAULTS.timeout,
    minRate: options.minDownloadRate ?? DOWNLOAD_LIMIT_DEFAULTS.minRate,
    rateWindow: options.downloadRateWindow ?? DOWNLOAD_LIMIT_DEFAULTS.rateWindow,
  };
}

export interface LimitedBody {
  /** Where the bytes come from, for messages (no secrets). */
  readonly source: string;
  /** The fetcher's class name, to name the option that sets a limit (`HttpFetcher.downloadTimeout`). */
  readonly fetcher: string;
  readonly limits: DownloadLimits;
  /** Aborted when the master stops: the stream then fails with exactly its reason. */
  readonly signal: AbortSignal;
  /** A fetcher's own wording for an error of its client (a stall it detects itself), else undefined. */
  readonly explain?: (error: unknown, received: number) => string | undefined;
}

/**
 * `body` relayed through a counting Transform. Errors come out as the signal's reason when it
 * aborted, an OverseerError as it is, anything else as ERR_OVERSEER_DOWNLOAD_FAILED; a limit
 * hit destroys `body` and fails the relay with ERR_OVERSEER_DOWNLOAD_FAILED naming the option.
 */
export function limitDownload(body: Readable, { source, fetcher, limits, signal, explain }: LimitedBody): Readable {
  let received = 0;
  let inWindow = 0;
  const started = performance.now();
  const relay = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      received += chunk.length;
      inWindow += chunk.length;
      callback(null, chunk);
    },
  });
  const fail = (error: Error): void => {
    if (!relay.destroyed) relay.destroy(error);
  };
  const limitHit = (message: string): void =>
    fail(new OverseerError('ERR_OVERSEER_DOWNLOAD_FAILED', `download of ${source} ${message}`, { subject: source }));

  const deadline = setTimeout(
    () =>
      limitHit(
        `did not finish within ${limits.timeout} ms (${received} bytes received); raise ${fetcher}.downloadTimeout for releases this large on this link`,
      ),
    limits.timeout,
  );
  // Every full window must bring minRate bytes a second; a drip fails at the end of its first window.
  const needed = (limits.minRate * limits.rateWindow) / 1000;
  const rate =
    limits.minRate > 0
      ? setInterval(() => {
          if (inWindow < needed) {
            const elapsed = Math.round(performance.now() - started);
            limitHit(
              `is too slow: ${inWindow} bytes in the last ${limits.rateWindow} ms (${received} in ${elapsed} ms), under ${fetcher}.minDownloadRate of ${limits.minRate} bytes/s; lower ${fetcher}.minDownloadRate (0 turns the check off) or lengthen ${fetcher}.downloadRateWindow`,
            );
          }
          inWindow = 0;
        }, limits.rateWindow)
      : undefined;

  // Timers alone never keep a process alive; the socket they watch does.
  deadline.unref();
  rate?.unref();
  // A stream its reader abandoned must not crash the master when a limit fires an hour later;
  // readers (pipeline, for await) still see the error through their own listeners.
  relay.on('error', () => undefined);

  const onAbort = (): void => fail(reasonOf(signal));
  body.on('error', (error: unknown) => {
    if (signal.aborted) return onAbort();
    if (error instanceof OverseerError) return fail(error);
    const wording = explain?.(error, received);
    fail(
      new OverseerError(
        'ERR_OVERSEER_DOWNLOAD_FAILED',
        `download of ${source} ${wording ?? `broke off after ${received} bytes: ${describeError(error)}`}`,
        { cause: error, subject: source },
      ),
    );
  });
  relay.once('close', () => {
    clearTimeout(deadline);
    clearInterval(rate);
    signal.removeEventListener('abort', onAbort);
    if (!body.destroyed) {
      // The client reports its own teardown as an error nobody reads any more.
      body.on('error', () => undefined);
      body.destroy();
    }
  });
  if (signal.aborted) onAbort();
  else signal.addEventListener('abort', onAbort, { once: true });
  body.pipe(relay);
  return relay;
}

function reasonOf(signal: AbortSignal): Error {
  return signal.reason instanceof Error ? signal.reason : new Error(String(signal.reason));
}
