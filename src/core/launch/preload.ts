/**
 * The master's side of the listen preload (src/preload/listen.ts): which commands are Node
 * programs that get it, and the environment that loads it into them.
 */
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { srcPath } from '../../src-dir.js';
import { parseAddress } from '../config.js';
import type { BoundListener } from '../listeners.js';
import { PRELOAD_ENV, type HeldSocket, type PreloadSpec } from '../../preload/held.js';

/** The compiled preload in dist/src (src/ under tsx). */
export const PRELOAD_URL = pathToFileURL(srcPath('preload/listen.js')).href;

const NODE_NAME = /^node(js)?(\d+(\.\d+)*)?$/;
/**
 * Node programs that start the app in a process of their own (npm start, npx, tsx's CLI): the
 * preload would load into the launcher, which hands no fd on; they run unchanged.
 */
const LAUNCHERS = new Set(['npm', 'npx', 'pnpm', 'pnpx', 'yarn', 'yarnpkg', 'corepack', 'tsx', 'ts-node', 'nodemon', 'pm2']);
const NODE_SHEBANG = /^#!\s*\S*?(\/env(\s+-\S+)*\s+)?\S*\bnode(js)?(\d+(\.\d+)*)?(\s|$)/;

/**
 * True for a command that runs Node itself: `node` (or `nodejs`, `node22`, Node's own path) with
 * any arguments (`node --import tsx server.ts`), or an executable file whose first line is a
 * node shebang (`#!/usr/bin/env node`). `file` is the command resolved (PATH, working directory).
 */
export function isNodeProgram(file: string): boolean {
  const name = path.basename(file);
  if (file === process.execPath || NODE_NAME.test(name)) return true;
  if (LAUNCHERS.has(name)) return false;
  let head = '';
  try {
    const fd = fs.openSync(file, 'r');
    try {
      const buffer = Buffer.alloc(256);
      head = buffer.toString('utf8', 0, fs.readSync(fd, buffer, 0, buffer.length, 0));
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    return false;
  }
  return NODE_SHEBANG.test(head.split('\n')[0] ?? '');
}

export interface PreloadOptions {
  readonly readyFd: number | null;
  readonly stopSignal: NodeJS.Signals;
  readonly terminateTimeout: number;
}

/** The variables that load the preload into a child handed `listeners` on fds 3…; `env` is the child's environment so far. */
export function preloadEnv(listeners: readonly BoundListener[], env: Readonly<Record<string, string | undefined>>, options: PreloadOptions): Record<string, string> {
  const sockets = listeners.map((listener, index): HeldSocket => {
    const address = parseAddress(listener.info.address);
    return address.kind === 'unix'
      ? { fd: 3 + index, path: address.path }
      : { fd: 3 + index, port: address.port, host: address.host ?? null };
  });
  const nodeOptions = env.NODE_OPTIONS === undefined || env.NODE_OPTIONS === '' ? null : env.NODE_OPTIONS;
  const spec: PreloadSpec = { sockets, ...options, nodeOptions };
  return {
    [PRELOAD_ENV]: JSON.stringify(spec),
    // Appended: the user's own NODE_OPTIONS stay, and the app's process.execArgv does not show it.
    NODE_OPTIONS: `${nodeOptions === null ? '' : `${nodeOptions} `}--import=${PRELOAD_URL}`,
  };
}
