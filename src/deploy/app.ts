/**
 * What the parts of `overseer deploy` share: its options and events, and the record of one
 * application (its folders, its command queue, and what its master last said).
 */
import type fs from 'node:fs';
import path from 'node:path';
import { isOverseerError, type ErrorCode } from '../errors.js';
import type { OverseerEvent, ProbationCause, ProbationEvidence } from '../events.js';
import type { ProcessState } from '../supervisor/supervisor.js';

export const DEPLOY_DEFAULTS = Object.freeze({ archives: 5, poll: 1000 });

export interface DeployOptions {
  /** The deployment folder: one sub-folder per application. */
  readonly dir: string;
  /** Archives kept per app (app.json `archives` overrides it). @default 5 */
  readonly archives?: number;
  /** A release/ without the .ready marker counts as complete once nothing in it changed for this many ms. @default off */
  readonly quietPeriod?: number;
  /** How often command/ folders (and DIR, for new apps) are looked at besides fs.watch. @default 1000 */
  readonly poll?: number;
  /** The `overseer` command to start masters with. @default dist/src/cli/main.js beside this module */
  readonly cliPath?: string;
  readonly onEvent?: (event: DeployEvent) => void;
  /** Each line an app's master or its children print. */
  readonly onOutput?: (line: { readonly app: string; readonly stream: 'stdout' | 'stderr'; readonly text: string }) => void;
}

export type DeployEvent = { readonly at: number; readonly app: string } & (
  | { readonly type: 'app-found' }
  | { readonly type: 'app-error'; readonly error: string; readonly code: string }
  | { readonly type: 'app-state'; readonly state: ProcessState; readonly pid: number | null; readonly exitCode: number | null; readonly signal: NodeJS.Signals | null }
  | { readonly type: 'app-listening'; readonly pid: number; readonly addresses: readonly string[] }
  | { readonly type: 'app-ready'; readonly pid: number; readonly generation: number }
  | { readonly type: 'release-waiting'; readonly why: string }
  | { readonly type: 'release-verified'; readonly checked: number; readonly keyId: string | undefined }
  | { readonly type: 'archives-pruned'; readonly removed: readonly string[] }
  | { readonly type: 'command-done'; readonly command: string; readonly detail: string }
  | { readonly type: 'command-failed'; readonly command: string; readonly error: string; readonly code: string }
  | { readonly type: 'master-event'; readonly event: OverseerEvent }
  /** The probation of a release (app.json "probation"): started, passed, or failed with its evidence. */
  | {
      readonly type: 'release-probation'; readonly outcome: 'started' | 'passed' | 'failed'; readonly pid: number; readonly durationMs: number;
      readonly cause?: ProbationCause | undefined; readonly error?: string | undefined; readonly evidence?: ProbationEvidence | undefined;
    }
);

export type EventBody = DeployEvent extends infer E ? (E extends DeployEvent ? Omit<E, 'at'> : never) : never;

/** What an app's master tells a waiting operation: one of its events, or that it is gone. */
export type MasterNews = { readonly kind: 'event'; readonly event: OverseerEvent } | { readonly kind: 'gone'; readonly state: ProcessState };

export interface App {
  readonly name: string;
  readonly dir: string;
  readonly current: string;
  readonly release: string;
  readonly archive: string;
  readonly command: string;
  /** False after a stop command: the app stays down until start, release or rollback. */
  wanted: boolean;
  /** Operations on this app run one at a time, in order. */
  queue: Promise<void>;
  /** Command files queued or being handled. */
  readonly busy: Set<string>;
  /** The last release-waiting reason reported, so it is said once. */
  waiting: string | undefined;
  /** Unsafe folders already reported (by path), so each is said once until it is fixed. */
  readonly reported: Set<string>;
  /** Pid of the master once it reported master-started (it handles the restart signal from then). */
  masterPid: number | undefined;
  /** The addresses its master bound (real ports), from master-started. */
  addresses: readonly string[];
  readonly listeners: Set<(news: MasterNews) => void>;
  watcher: fs.FSWatcher | undefined;
}

export function newApp(root: string, name: string): App {
  const dir = path.join(root, name);
  return {
    name, dir,
    current: path.join(dir, 'current'),
    release: path.join(dir, 'release'),
    archive: path.join(dir, 'archive'),
    command: path.join(dir, 'command'),
    wanted: true, queue: Promise.resolve(), busy: new Set(), waiting: undefined, reported: new Set(), masterPid: undefined, addresses: [],
    listeners: new Set(), watcher: undefined,
  };
}

/** The code reported for a failure: an OverseerError's own, else the deploy catch-all (the message names the cause). */
export function codeOf(error: unknown): ErrorCode {
  return isOverseerError(error) ? error.code : 'ERR_OVERSEER_DEPLOY_FAILED';
}
