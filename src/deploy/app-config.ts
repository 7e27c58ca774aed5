/**
 * The app.json of one `overseer deploy` application: what to run inside current/, the
 * addresses its master binds, how it reports ready, how releases are verified and how many
 * archives are kept. Read and checked whenever the app starts or takes a release.
 */
import fs from 'node:fs';
import path from 'node:path';
import { CONFIG_SPEC, parseAddress, resolveProbation, splitListen, type ProbationOptions, type ResolvedProbation } from '../core/config.js';
import { OverseerError, describeError } from '../errors.js';
import { parsePublicKey } from '../upgrade/minisign.js';
import { assertOptions, optionNames, rule, rules, withInner, type OptionSpec } from '../options.js';
import { isSignalName } from '../supervisor/options.js';

export const APP_FILE = 'app.json';

export type AppReadiness = { readonly kind: 'notify' } | { readonly kind: 'delay'; readonly ms: number };

export interface AppConfig {
  /** The command and its arguments; run with current/ as working directory. */
  readonly command: readonly [string, ...string[]];
  /** `[NAME=]ADDR` entries, as `overseer run --listen` takes them. */
  readonly listen: readonly string[];
  readonly ready: AppReadiness;
  /** minisign public key (base64 line or whole .pub text): releases must carry a valid SHA256SUMS.minisig. */
  readonly publicKey: string | undefined;
  /** Archives kept in archive/; overrides `overseer deploy --archives`. */
  readonly archives: number | undefined;
  /** Quiet period in ms that counts a release/ without a .ready marker as complete; overrides --quiet-period. */
  readonly quietPeriod: number | undefined;
  readonly env: Readonly<Record<string, string>>;
  readonly readyTimeout: number | undefined;
  readonly terminateTimeout: number | undefined;
  readonly stopSignal: NodeJS.Signals | undefined;
  /** The listen preload for a Node command (`overseer run --no-preload` when false). @default true */
  readonly preload: boolean;
  /** After a release's handoff, the new child must hold (exit, probe) or the previous release comes back. Off unless given. */
  readonly probation: ResolvedProbation | undefined;
}

const MAX_MS = 2 ** 31 - 1;
const milliseconds = rule(`a whole number of milliseconds from 1 to ${MAX_MS}`, (value) => Number.isInteger(value) && (value as number) >= 1 && (value as number) <= MAX_MS);

const SPEC: OptionSpec = {
  command: {
    ...rule('a non-empty array of strings such as ["./server", "--verbose"]', (value) =>
      Array.isArray(value) && value.length > 0 && value.every((item) => typeof item === 'string') && value[0] !== ''),
    required: true,
  },
  // Each address is parsed as `overseer run --listen` parses it, so a bad one is refused here, naming app.json.
  listen: withInner(
    rule('an array of "[NAME=]ADDR" strings such as ["web=:8080"]', (value) => Array.isArray(value) && value.every((item) => typeof item === 'string')),
    (value, names, key) => {
      (value as string[]).forEach((item, index) => parseAddress(splitListen(item, '').address, names.of(`${key}[${index}]`)));
    },
  ),
  ready: rule('"notify" or { "delay": MS }', (value) =>
    value === 'notify' || (typeof value === 'object' && value !== null && !Array.isArray(value) && Object.keys(value).length === 1
      && Number.isInteger((value as { delay?: unknown }).delay) && ((value as { delay: number }).delay) >= 0)),
  publicKey: withInner(rules.nonEmptyString, (value, names, key) => {
    parsePublicKey(value as string, names.of(key));
  }),
  archives: rule('a whole number of archives to keep (0 or more)', (value) => Number.isInteger(value) && (value as number) >= 0),
  quietPeriod: milliseconds,
  env: rule('an object of variable names to string values', (value) =>
    typeof value === 'object' && value !== null && !Array.isArray(value) && Object.values(value).every((each) => typeof each === 'string')),
  readyTimeout: milliseconds,
  terminateTimeout: milliseconds,
  stopSignal: rule('a signal name such as "SIGTERM"', isSignalName),
  preload: rules.boolean,
  probation: CONFIG_SPEC.probation!,
};

/** Reads and checks `<appDir>/app.json`. Throws ERR_OVERSEER_INVALID_CONFIG naming the file and the field. */
export async function readAppConfig(appDir: string): Promise<AppConfig> {
  const file = path.join(appDir, APP_FILE);
  const label = `${path.basename(appDir)}/${APP_FILE}`;
  let text: string;
  try {
    text = await fs.promises.readFile(file, 'utf8');
  } catch (error) {
    throw new OverseerError('ERR_OVERSEER_INVALID_CONFIG', `cannot read ${file}: ${describeError(error)}; every application folder needs an ${APP_FILE}`, { cause: error, subject: file });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new OverseerError('ERR_OVERSEER_INVALID_CONFIG', `${file} is not valid JSON (${describeError(error)})`, { cause: error, subject: file });
  }
  return parseAppConfig(json, label);
}

/** Checks a parsed app.json in one pass; `label` names it in messages (`web/app.json: command must be …`). */
export function parseAppConfig(json: unknown, label: string): AppConfig {
  assertOptions(optionNames(label, (option) => `${label}: ${option}`), json, SPEC);
  const given = json as Record<string, unknown>;
  const listen = (given.listen as string[] | undefined) ?? [];
  const publicKey = given.publicKey as string | undefined;
  const ready = given.ready as 'notify' | { delay: number } | undefined;
  return Object.freeze({
    command: Object.freeze([...(given.command as [string, ...string[]])]) as unknown as readonly [string, ...string[]],
    listen: Object.freeze([...listen]),
    ready: ready === undefined || ready === 'notify' ? { kind: 'notify' as const } : { kind: 'delay' as const, ms: ready.delay },
    publicKey,
    archives: given.archives as number | undefined,
    quietPeriod: given.quietPeriod as number | undefined,
    env: Object.freeze({ ...(given.env as Record<string, string> | undefined) }),
    readyTimeout: given.readyTimeout as number | undefined,
    terminateTimeout: given.terminateTimeout as number | undefined,
    stopSignal: given.stopSignal as NodeJS.Signals | undefined,
    preload: given.preload !== false,
    // Off unless given: a deploy command waits for the verdict.
    probation: given.probation === undefined ? undefined : resolveProbation(given.probation as boolean | ProbationOptions),
  });
}
