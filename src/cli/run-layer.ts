/**
 * What one source of `overseer run` settings (the config file, or the flags) says, and how that
 * source names each option, so one check of the merged settings names an option the way the
 * user wrote it (`--listen`, `<file>: listeners[1].address`) without rewriting any message.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Readiness } from '../core/launch/exec.js';
import { OverseerError, describeError } from '../errors.js';
import type { OptionNames } from '../options.js';

/** One bound socket: its LISTEN_FDNAMES entry and its address. */
export interface ListenerGroup {
  readonly name: string;
  readonly address: string;
}

export type FetchSource = 'http' | 'file' | 's3' | 'github' | 'manifest';

export const FETCH_CLASSES: Readonly<Record<FetchSource, string>> = { http: 'HttpFetcher', file: 'FileFetcher', s3: 'S3Fetcher', github: 'GitHubFetcher', manifest: 'ManifestFetcher' };

export interface FetchSpec {
  readonly source: FetchSource;
  readonly options: Record<string, unknown>;
  /** How errors name this fetcher's options: `<file>: fetch.http.url` or `--fetch-url`. */
  readonly names: OptionNames;
}

/** What one source says; absent keys say nothing. */
export interface Layer {
  listeners?: ListenerGroup[];
  command?: string[];
  cwd?: string;
  env?: Record<string, string>;
  readiness?: Readiness;
  stopSignal?: NodeJS.Signals;
  reopenSignal?: NodeJS.Signals;
  bundle?: string;
  check?: boolean;
  fetch?: FetchSpec;
  fetchInterval?: number;
  /** --allow-insecure-http: the http release source may use plain http: to another machine. */
  allowInsecureHttp?: boolean;
  control?: string;
  pidFile?: string;
  /** The master's options this source gives, as run()'s Config keys (`addresses`, `verify`, …), checked once merged. */
  config: Record<string, unknown>;
  /** How this source names a Config option: `addresses[1]` → `<file>: listeners[1].address` or `--listen`. */
  name: (path: string) => string;
}

export function isSignal(value: unknown): value is NodeJS.Signals {
  return typeof value === 'string' && Object.hasOwn(os.constants.signals, value) && value !== 'SIGKILL' && value !== 'SIGSTOP';
}

/** `@FILE` reads the key from FILE (relative to `base`); anything else is the key itself. */
export function readPublicKey(value: string, base: string, label: string): string {
  if (!value.startsWith('@')) return value;
  const file = path.resolve(base, value.slice(1));
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (error) {
    throw new OverseerError('ERR_OVERSEER_INVALID_CONFIG', `${label}: cannot read the public key file ${file}: ${describeError(error)}`, { subject: label, cause: error });
  }
}

