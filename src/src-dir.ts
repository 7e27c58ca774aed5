/**
 * The package's `src` folder as it runs: dist/src when built, src/ under tsx. Files reached by
 * path at run time (the preloads, the CLI) are named from here, not from the calling module's own
 * folder: the build bundles modules into entry files and shared chunks (scripts/bundle.mjs), so a
 * module's code does not stay at its source path. Every output file is somewhere under dist/src
 * (chunks in dist/src/chunks), so the nearest folder named `src` above this code is the one.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';

function findSrc(): string {
  // No import.meta.url where an app bundled overseer into CommonJS (a single executable): no
  // file of overseer's runs by path there, and this answer is never used.
  if (typeof import.meta.url !== 'string') return process.cwd();
  const here = path.dirname(fileURLToPath(import.meta.url));
  for (let dir = here; ; dir = path.dirname(dir)) {
    if (path.basename(dir) === 'src') return dir;
    if (path.dirname(dir) === dir) return here;
  }
}

/** Absolute path of `relative` under the running src folder (`preload/listen.js`). */
export function srcPath(relative: string): string {
  return path.join(findSrc(), relative);
}
