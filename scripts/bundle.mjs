/**
 * Builds the runtime JavaScript of dist/ with esbuild, after tsc has checked the types and written
 * the .d.ts files (`npm run build`). Every entry point a user or a process reaches by path (the
 * package's `exports`, the bin, the preloads, the few files the tests import directly) keeps its
 * path; the modules behind them are bundled, and code two entries share goes into shared chunks
 * in dist/src/chunks/, so a class such as OverseerError exists once whichever entries load it.
 * Dynamic import() stays dynamic: a master without a fetcher never loads the upgrade pipeline.
 *
 * Why: Node's ESM loader does path work for every module file it resolves. A master loading ~80
 * files at start and ~100 more at its first poll makes V8 optimize the loader's path functions,
 * which pages in several MB of the optimizing compiler (docs/benchmarks.md §9 "Master memory").
 * Packages (undici, semver, proper-lockfile, the SDKs) stay external: they load from
 * node_modules as before, undici through fetchers/undici-lean.ts.
 *
 * tsc's own .js and .js.map files are removed first, so dist/ holds only what runs.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const dist = path.join(root, 'dist');
const manifest = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));

/** Files reached by path rather than through `exports`: preloads, the CLI, and test fixtures' imports. */
const BY_PATH = [
  'src/preload/listen.ts', // --import'ed into `overseer run` children (core/launch/preload.ts)
  'src/check/preload.ts', // --import'ed by `overseer check` (check/target.ts)
  'src/deploy/cli.ts', // test/fixtures/deploy-main.mjs
  'src/core/config.ts', // test/fixtures/exec-master.mjs
  'src/core/start.ts', // ditto
  'src/core/launch/exec.ts', // ditto, test/upgrade/attacks.test.ts
  'fetchers/manifest.ts',
];

/** dist/src/x.js → src/x.ts */
const source = (built) => built.replace(/^\.?\/?dist\//, '').replace(/\.js$/, '.ts');

function entryPoints() {
  const found = new Set(BY_PATH);
  for (const target of Object.values(manifest.exports)) {
    if (typeof target === 'object' && typeof target.default === 'string') found.add(source(target.default));
  }
  for (const bin of Object.values(manifest.bin)) found.add(source(bin));
  for (const entry of found) {
    if (!fs.existsSync(path.join(root, entry))) throw new Error(`scripts/bundle.mjs: entry point ${entry} does not exist`);
  }
  return [...found].sort();
}

/** Removes tsc's .js output (the .d.ts files stay: they are the package's types). */
function removeJs(dir) {
  if (!fs.existsSync(dir)) return;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const file = path.join(dir, entry.name);
    if (entry.isDirectory()) removeJs(file);
    else if (entry.name.endsWith('.js') || entry.name.endsWith('.js.map')) fs.rmSync(file);
  }
}

removeJs(path.join(dist, 'src'));
removeJs(path.join(dist, 'fetchers'));
fs.rmSync(path.join(dist, 'src/chunks'), { recursive: true, force: true });

await build({
  absWorkingDir: root,
  entryPoints: entryPoints(),
  outbase: '.',
  outdir: 'dist',
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20.19',
  packages: 'external',
  // Class and function names show in errors and logs as they do unbundled.
  keepNames: true,
  sourcemap: true,
  chunkNames: 'src/chunks/[name]-[hash]',
  logLevel: 'warning',
  // The bin's shebang is kept from src/cli/main.ts by esbuild.
});
