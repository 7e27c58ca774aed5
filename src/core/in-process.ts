/**
 * The fallback where the master cannot run (config.required false): the program runs in this
 * process with state.enabled false, listening on the configured addresses itself. No handoffs,
 * no upgrades; shutdown is still signalled on SIGTERM/SIGINT and by config.signal.
 */
import net from 'node:net';
import type { ParsedAddress, ResolvedConfig } from './config.js';
import { createLog } from '../events.js';
import { createState } from './state.js';

function listenOptions(address: ParsedAddress): net.ListenOptions {
  if (address.kind === 'unix') return { path: address.path };
  return address.host === undefined ? { port: address.port } : { port: address.port, host: address.host };
}

export async function runInProcess(config: ResolvedConfig, reason: string): Promise<void> {
  createLog(config, 'in-process').warn(`running the program without a master: ${reason}`);
  const listeners = config.addresses.map(listenOptions);
  const shutdown = new AbortController();
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.once(signal, () => {
      shutdown.abort(signal);
      // Nothing drains here: keep the default meaning of the signal for the process.
      process.kill(process.pid, signal);
    });
  }
  // config.signal stops the program here too: the program sees it as state.shutdown.
  config.signal?.addEventListener('abort', () => shutdown.abort(config.signal?.reason), { once: true });
  if (config.signal?.aborted) shutdown.abort(config.signal.reason);
  const state = createState({
    enabled: false,
    id: '',
    version: config.version,
    listeners,
    addresses: config.addresses.map((address) => address.text),
    bundlePath: config.bundlePath ?? process.argv[1] ?? '',
    shutdown: shutdown.signal,
  });
  await config.program(state);
}
