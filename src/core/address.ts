/**
 * Listening addresses as run() and `overseer run` take them: ':3000', '127.0.0.1:3000',
 * '[::1]:3000', a port number or 'unix:/path', and `overseer run --listen`'s `[NAME=]ADDR`.
 */
import net from 'node:net';
import path from 'node:path';
import { OverseerError } from '../errors.js';
import { describeValue } from '../options.js';

export type ParsedAddress =
  | { readonly kind: 'tcp'; readonly host: string | undefined; readonly port: number; readonly text: string }
  | { readonly kind: 'unix'; readonly path: string; readonly text: string };

/** A `[NAME=]ADDR` listener as `overseer run --listen` and app.json's "listen" take it. */
export const LISTENER_NAME = /^[A-Za-z0-9_.-]{1,255}$/;

/** Splits `web=:8080` into its LISTEN_FDNAMES name and its address; without `NAME=`, the name is `fallback`. */
export function splitListen(text: string, fallback: string): { readonly name: string; readonly address: string } {
  const split = text.indexOf('=');
  const name = text.slice(0, split);
  return split > 0 && LISTENER_NAME.test(name) ? { name, address: text.slice(split + 1) } : { name: fallback, address: text };
}

/**
 * Parses ':3000', '127.0.0.1:3000', '[::1]:3000', '3000' and 'unix:/path'. Hosts must be IP
 * literals: the master binds before any resolver would run, and a name could map to several
 * addresses. `name` is how the user wrote the option (`config.address`, `--listen`).
 */
export function parseAddress(given: string | number, name = 'config.address'): ParsedAddress {
  if (typeof given === 'number') {
    // A port number, as server.listen(3000) takes it: all interfaces.
    if (!Number.isInteger(given) || given < 0 || given > 65535) {
      throw new OverseerError('ERR_OVERSEER_BAD_ADDRESS', `${name} ${given} is not a port number (a whole number from 0 to 65535)`, { subject: String(given) });
    }
    return { kind: 'tcp', host: undefined, port: given, text: `:${given}` };
  }
  const text = given;
  const fail = (why: string) =>
    new OverseerError('ERR_OVERSEER_BAD_ADDRESS', `${name} ${describeValue(text)} ${why}`, { subject: text });
  if (text.startsWith('unix:')) {
    const socketPath = text.slice('unix:'.length);
    if (socketPath === '') throw fail('names no socket path; write it as "unix:/run/app.sock"');
    return { kind: 'unix', path: path.resolve(socketPath), text };
  }
  let host: string | undefined;
  let portText: string;
  const bracketed = /^\[([^\]]+)\]:(\w*)$/.exec(text);
  if (bracketed) {
    host = bracketed[1];
    portText = bracketed[2] ?? '';
  } else if (/^\d+$/.test(text)) {
    portText = text;
  } else {
    const colon = text.lastIndexOf(':');
    if (colon === -1) throw fail('has no port; write it as ":3000", "127.0.0.1:3000", "[::1]:3000" or "unix:/path"');
    host = text.slice(0, colon) || undefined;
    portText = text.slice(colon + 1);
    if (host?.includes(':')) throw fail('is an IPv6 address without brackets; write it as "[::1]:3000"');
  }
  if (!/^\d+$/.test(portText) || Number(portText) > 65535) {
    throw fail('has no valid port (0-65535); write it as ":3000", "127.0.0.1:3000" or "[::1]:3000"');
  }
  if (host !== undefined && net.isIP(host) === 0) {
    const hint = host === 'localhost' ? ' (use 127.0.0.1 or [::1])' : '';
    throw fail(`must use an IP literal, not a host name${hint}`);
  }
  return { kind: 'tcp', host, port: Number(portText), text };
}
