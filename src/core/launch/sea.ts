/**
 * Single executable applications (node:sea): the program and Node are one file, so the bundle
 * is process.execPath, a child is that executable run again (no script path), and a release
 * is an executable that runs itself. process.getBuiltinModule avoids loading anything else.
 */

let cached: boolean | undefined;

/** True inside a single executable application built with node --experimental-sea-config. */
export function isSea(): boolean {
  if (cached === undefined) {
    try {
      const sea = process.getBuiltinModule('node:sea') as { isSea?: () => boolean } | undefined;
      cached = sea?.isSea?.() === true;
    } catch {
      // Older Node without node:sea: not a single executable.
      cached = false;
    }
  }
  return cached;
}

/** Flags a Node child must not inherit: a second inspector on the same port would fail to start. */
export function childExecArgv(): string[] {
  return process.execArgv.filter((arg) => !/^--(inspect|debug)(-brk|-port|-wait)?(=|$)/.test(arg));
}

/**
 * How to run `file` (a bundle or a release of it) with `args`: through this Node with its flags,
 * or, in a single executable, the file itself.
 */
export function commandFor(file: string, args: readonly string[]): { readonly command: string; readonly args: string[] } {
  return isSea() ? { command: file, args: [...args] } : { command: process.execPath, args: [...childExecArgv(), file, ...args] };
}
