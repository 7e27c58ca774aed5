/**
 * The files of src/ that run by path rather than through an import, found in the sources so the
 * build's list cannot go stale: every `srcPath('x.js')` (src/src-dir.ts) and every
 * `builtFile('x.js')` (src/check/target.ts, which wraps it) names src/x.ts. Used by
 * scripts/bundle.mjs, which keeps each at its path in dist/, and by test/core/package.test.ts.
 */
import fs from 'node:fs';
import path from 'node:path';

/** Functions whose argument names a file under the running src folder. */
const PATH_FUNCTIONS = ['srcPath', 'builtFile'];
/** Calls with a computed argument, allowed only where one of PATH_FUNCTIONS passes its own on. */
const FORWARDERS = [{ file: 'src/check/target.ts', call: 'srcPath(relative)' }];

const CALL = new RegExp(`(?<!function )\\b(${PATH_FUNCTIONS.join('|')})\\(([^)]*)\\)`, 'g');

function sourceFiles(root, dir) {
  return fs.readdirSync(path.join(root, dir), { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile() && entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts'))
    .map((entry) => path.relative(root, path.join(entry.parentPath, entry.name)));
}

/**
 * `entries`: the src/*.ts files named by a literal `'….js'` argument, sorted. Throws on a call whose
 * argument is not a string literal (outside FORWARDERS): its file could not be found here.
 */
export function runtimeEntries(root) {
  const entries = new Set();
  for (const file of [...sourceFiles(root, 'src'), ...sourceFiles(root, 'fetchers')].sort()) {
    const text = fs.readFileSync(path.join(root, file), 'utf8');
    for (const match of text.matchAll(CALL)) {
      const argument = match[2].trim();
      const literal = /^'([^']*)'$|^"([^"]*)"$/.exec(argument);
      if (!literal) {
        if (FORWARDERS.some((forwarder) => forwarder.file === file && forwarder.call === match[0])) continue;
        throw new Error(`scripts/entry-points.mjs: ${file} calls ${match[0]}: name the file as a string literal, so the build keeps it at its path`);
      }
      const relative = literal[1] ?? literal[2];
      if (!relative.endsWith('.js')) continue; // a folder, such as srcPath('..')
      entries.add(path.posix.join('src', relative.replace(/\.js$/, '.ts')));
    }
  }
  return [...entries].sort();
}
