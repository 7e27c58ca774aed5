/**
 * The self-update state file: when the last check ran, what it found, an update to announce
 * and a problem to tell the user once. Read synchronously on every run of the tool (one small
 * JSON file), written whole to a temp file and renamed, so no reader ever sees half of it.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export interface SelfUpdateState {
  /** Date.now() when the last background or foreground check was started. */
  readonly lastCheck?: number;
  /** The outcome of the last check that finished. */
  readonly lastResult?: 'up-to-date' | 'updated' | 'rejected' | 'not-writable' | 'failed';
  /** The version the last check found at the source, when it said. */
  readonly found?: string | null;
  /** The last check's error, for `tool.lastCheck` and debugging; never shown on its own. */
  readonly lastError?: string;
  /** An update installed since the tool last ran; `told` once the tool announced it. */
  readonly updated?: { readonly from: string; readonly to: string | null; readonly at: number; readonly told: boolean };
  /** Why the last check could not install (the install is not writable); `told` once shown. */
  readonly problem?: { readonly message: string; readonly at: number; readonly told: boolean };
  /** The background updater at work: its pid, for tests and `ps`. */
  readonly checking?: { readonly pid: number; readonly since: number };
}

/** 32-bit FNV-1a, as hex: a short stable name per install path without loading node:crypto. */
function fnv1a(text: string): string {
  let hash = 0x811c9dc5;
  for (let index = 0; index < text.length; index++) {
    hash ^= text.charCodeAt(index);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash.toString(16).padStart(8, '0');
}

/** The user's cache directory: $XDG_CACHE_HOME, else ~/.cache. */
export function cacheDir(): string {
  const xdg = process.env.XDG_CACHE_HOME;
  return xdg && path.isAbsolute(xdg) ? xdg : path.join(os.homedir(), '.cache');
}

/** `<cache>/overseer/self-update/<name>-<hash of the install path>.json`: per user, per install. */
export function defaultStateFile(bundlePath: string): string {
  return path.join(cacheDir(), 'overseer', 'self-update', `${path.basename(bundlePath).replace(/[^A-Za-z0-9._-]/g, '_')}-${fnv1a(bundlePath)}.json`);
}

/** The state, or {} when there is none or it cannot be parsed (a new state replaces it). */
export function readState(file: string): SelfUpdateState {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return {};
  }
  try {
    const parsed: unknown = JSON.parse(text);
    return typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed) ? (parsed as SelfUpdateState) : {};
  } catch {
    return {};
  }
}

/** Writes the whole state to a temp file beside it and renames it over: readers see old or new. */
export function writeState(file: string, state: SelfUpdateState): void {
  const temp = `${file}.${process.pid}.tmp`;
  const text = `${JSON.stringify(state)}\n`;
  try {
    fs.writeFileSync(temp, text, { mode: 0o600 });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
    fs.writeFileSync(temp, text, { mode: 0o600 });
  }
  try {
    fs.renameSync(temp, file);
  } catch (error) {
    fs.rmSync(temp, { force: true });
    throw error;
  }
}

/** Read, change and write back in one go (the last writer wins; each write is whole). */
export function updateState(file: string, change: (state: SelfUpdateState) => SelfUpdateState): SelfUpdateState {
  const next = change(readState(file));
  writeState(file, next);
  return next;
}
