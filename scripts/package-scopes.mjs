/**
 * Writes `{"type":"module"}` as package.json into every folder of the build (dist/src, dist/fetchers
 * and their subfolders), run after tsc by `npm run build`. It changes no meaning (the package is
 * already "type": "module"), but Node's ESM loader looks for the nearest package.json of every
 * module it loads, walking up one folder at a time: with one beside each module the walk is one
 * step. Without them the master's ~80 imports make the loader's URL-to-path function hot enough
 * for V8 to optimize it, which pages about 3.5 MB of the optimizing compiler into the master's
 * RSS (docs/benchmarks.md §9: an idle master, no fetcher, +9.9 MB over an idle node → +5.9 MB).
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const dist = process.argv[2] ? path.resolve(process.argv[2]) : path.join(root, 'dist');
const scope = `${JSON.stringify({ type: 'module' })}\n`;

function write(dir) {
  fs.writeFileSync(path.join(dir, 'package.json'), scope);
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    if (entry.isDirectory()) write(path.join(dir, entry.name));
  }
}

for (const part of ['src', 'fetchers']) {
  const dir = path.join(dist, part);
  if (fs.existsSync(dir)) write(dir);
}
