/**
 * Release bodies as the master consumes them: a Node Readable that ends with the master's
 * abort reason when the poll is aborted, whatever the HTTP client or SDK would have said.
 */
import type { Readable } from 'node:stream';

export function abortWith(body: Readable, signal: AbortSignal): Readable {
  const onAbort = () => body.destroy(signal.reason instanceof Error ? signal.reason : new Error(String(signal.reason)));
  if (signal.aborted) {
    onAbort();
    return body;
  }
  signal.addEventListener('abort', onAbort, { once: true });
  body.once('close', () => signal.removeEventListener('abort', onAbort));
  return body;
}
