/**
 * selfUpdating()'s option and result types, shared by index.ts and updater.ts (type-only, so
 * neither imports the other for them), and the full check of its options, loaded only when the
 * quick one in index.ts finds something wrong: the shared checker names the option and suggests
 * the closest known one.
 */
import type { VerifyOptions } from '../core/config.js';
import type { OverseerEvent } from '../events.js';
import { assertOptions, optionNames, required, rule, type OptionSpec } from '../options.js';
import type { Fetcher } from '../upgrade/fetcher.js';

export interface SelfUpdatingOptions {
  /** This build's semver: reported in the echo-token check, the floor against downgrades. */
  readonly version: string;
  /** The tool. Runs at once in this process; its exit code is the process's. */
  readonly program: (tool: Tool) => unknown;
  /**
   * Where releases come from: a fetcher, or better a function that makes one, so its module is
   * only loaded by the background check: `() => import('overseer/fetchers/github').then(...)`.
   * Without it the tool runs and never checks.
   */
  readonly fetcher?: Fetcher | (() => Fetcher | Promise<Fetcher>);
  /** Least time between two background checks, in ms. @default 86400000 (a day) */
  readonly checkEvery?: number;
  /** Release verification, as run() takes it. */
  readonly verify?: VerifyOptions;
  /** The installed file updates replace. @default the entry script, or the executable of a single executable application */
  readonly bundlePath?: string;
  /** Where the time of the last check and its findings are kept. @default $XDG_CACHE_HOME/overseer/self-update/<name>-<hash>.json */
  readonly stateFile?: string;
  /** The tool's name in messages. @default the installed file's name */
  readonly name?: string;
  /** Tells the user, once, that the tool was updated or cannot update itself; false for silence. @default a line on stderr */
  readonly notify?: false | ((message: string) => void);
  /** Time a downloaded release has to answer the echo-token check, in ms. @default 5000 */
  readonly checkTimeout?: number;
  /** Largest release accepted, in bytes. @default 536870912 (512 MiB) */
  readonly maxBundleSize?: number;
}

/** What selfUpdate() did. */
export type SelfUpdateResult =
  | { readonly updated: true; readonly from: string; readonly to: string | null }
  | { readonly updated: false; readonly reason: 'up-to-date' | 'rejected' | 'not-writable' | 'busy' | 'no-fetcher'; readonly message?: string };

export interface SelfUpdateOptions {
  /** Events of this update: `upgrade-progress` carries `received` and `total` bytes for a progress bar. */
  readonly onEvent?: (event: OverseerEvent) => void;
  /** Aborts the download (nothing is installed then). */
  readonly signal?: AbortSignal;
}

/** What the program gets. */
export interface Tool {
  /** The running version. */
  readonly version: string;
  /** The installed file (the script, or the executable). */
  readonly bundlePath: string;
  /** Set on the first run after an update was installed: from which version to which. */
  readonly updated: { readonly from: string; readonly to: string | null } | undefined;
  /** True when this run started a background check. */
  readonly checking: boolean;
  /** Checks and installs now, in this process, for a `mytool self-update` command. */
  selfUpdate(options?: SelfUpdateOptions): Promise<SelfUpdateResult>;
}

/** What the updater (loaded later) needs to know; plain data and the fetcher factory. */
export interface SelfUpdateSettings {
  readonly version: string;
  readonly bundlePath: string;
  readonly stateFile: string;
  readonly name: string;
  readonly fetcher: (() => Promise<Fetcher>) | undefined;
  readonly verify: VerifyOptions | undefined;
  readonly checkEvery: number;
  readonly checkTimeout: number | undefined;
  readonly maxBundleSize: number | undefined;
}


export interface OptionTest {
  readonly expected: string;
  readonly test: (value: unknown) => boolean;
  readonly required?: true;
}

/** Throws ERR_OVERSEER_INVALID_CONFIG naming the bad option (`options.checkEvery`) and what it must be. */
export function assertSelfUpdatingOptions(options: unknown, tests: Readonly<Record<string, OptionTest>>): void {
  const spec: OptionSpec = Object.fromEntries(Object.entries(tests).map(([key, option]) => {
    const base = rule(option.expected, option.test);
    return [key, option.required ? required(base) : base];
  }));
  assertOptions(optionNames('options'), options, spec);
}
