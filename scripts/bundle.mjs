/**
 * Builds the runtime JavaScript of dist/ with esbuild, after tsc has checked the types and written
 * the .d.ts files (`npm run build`). Every entry point a user or a process reaches by path (the
 * package's `exports`, the bin, the preloads, the few files the tests import directly) keeps its
 * path (scripts/entry-points.mjs finds those run by path); the modules behind them are bundled,
 * and code two entries share goes into shared chunks in dist/src/chunks/, so a class such as
 * OverseerError exists once whichever entries load it.
 * Dynamic import() stays dynamic: a master without a fetcher never loads the upgrade pipeline.
 *
 * Why: Node's ESM loader does path work for every module file it resolves. A master loading ~17
 * files at start and ~100 more at its first poll made V8 optimize the loader's path functions,
 * which pages in several MB of the optimizing compiler (docs/benchmarks.md §9 "Master memory").
 * Groups of modules that load together become one chunk each (GROUP_ROOTS below). The SDKs and
 * undici's index stay external and load from node_modules; semver, proper-lockfile and the three
 * undici modules a poll uses (fetchers/undici-parts.ts) are bundled: their ~50 CommonJS files at
 * the first poll were enough to wake the compiler again. Bundled dependencies are the versions
 * installed when the package is built.
 *
 * tsc's own .js and .js.map files are removed first, so dist/ holds only what runs.
 */
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { runtimeEntries } from './entry-points.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const dist = path.join(root, 'dist');
const manifest = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));

/**
 * Files the tests and the shared test servers import from dist/ directly (test/fixtures/,
 * support/fleet.ts), besides the package's `exports`. Files run by path at run time (the preloads,
 * through srcPath()) are not listed here: scripts/entry-points.mjs finds them in the sources.
 */
const TEST_ENTRIES = [
  'src/deploy/cli.ts', // test/fixtures/deploy-main.mjs
  'src/core/config.ts', // test/fixtures/exec-master.mjs
  'src/core/start.ts', // ditto
  'src/core/launch/exec.ts', // ditto, test/upgrade/attacks.test.ts
  'fetchers/manifest.ts', // support/fleet.ts
];

/** dist/src/x.js → src/x.ts */
const source = (built) => built.replace(/^\.?\/?dist\//, '').replace(/\.js$/, '.ts');

function entryPoints() {
  const found = new Set([...runtimeEntries(root), ...TEST_ENTRIES]);
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

/** fetchers/undici-parts.ts as static imports of the same paths, which esbuild then bundles. */
const undiciParts = {
  name: 'undici-parts',
  setup(build) {
    const resolveFromRoot = createRequire(path.join(root, 'package.json')).resolve;
    build.onLoad({ filter: /[\\/]fetchers[\\/]undici-parts\.ts$/ }, async (args) => {
      // The `name: 'undici/lib/…'` lines of UNDICI_PARTS, the one list of the three paths.
      const parts = Object.fromEntries([...fs.readFileSync(args.path, 'utf8').matchAll(/^\s+(\w+): '(undici\/lib\/[^']+)',?$/gm)].map((match) => [match[1], match[2]]));
      if (Object.keys(parts).length !== 3) throw new Error(`scripts/bundle.mjs: expected three undici parts in ${args.path}, found ${JSON.stringify(parts)}`);
      const names = Object.keys(parts);
      return {
        loader: 'js',
        contents: [
          ...names.map((name) => `import ${name} from ${JSON.stringify(parts[name])};`),
          `export const UNDICI_PARTS = ${JSON.stringify(parts)};`,
          `export function undiciParts() { return { ${names.join(', ')} }; }`,
        ].join('\n'),
      };
    });
    build.onResolve({ filter: /^undici\/lib\// }, (args) => ({ path: resolveFromRoot(args.path) }));
    // Two undici modules a GET or HEAD over HTTP/1.1 never runs, left out (each loaded at
    // undici's start, or bundled for nothing): HTTP/2, which loads node:http2 (~1.3 MB) and is
    // only used when allowH2 is set (overseer never sets it), and the fetch body helpers, only
    // used for a FormData request body. Each is replaced by a function that says so if reached.
    build.onResolve({ filter: /(client-h2|fetch[\\/]body)\.js$/ }, (args) =>
      (args.importer.includes(`${path.sep}undici${path.sep}`) ? { path: args.path, namespace: 'undici-left-out' } : undefined));
    build.onLoad({ filter: /.*/, namespace: 'undici-left-out' }, (args) => {
      const fail = `function () { throw new Error('overseer bundles no ${path.basename(args.path)} of undici (scripts/bundle.mjs)'); }`;
      return { loader: 'js', contents: args.path.endsWith('client-h2.js') ? `module.exports = ${fail};` : `module.exports = { extractBody: ${fail} };` };
    });
  },
};

removeJs(path.join(dist, 'src'));
removeJs(path.join(dist, 'fetchers'));
fs.rmSync(path.join(dist, 'src/chunks'), { recursive: true, force: true });

const common = {
  absWorkingDir: root,
  bundle: true,
  format: 'esm',
  platform: 'node',
  target: 'node20.19',
  // The SDKs are optional peers, loaded at a poll if installed; undici's index is the fallback of
  // fetchers/undici-lean.ts. The small CommonJS dependencies (semver, proper-lockfile) are bundled.
  external: ['@aws-sdk/*', '@octokit/*', 'undici'],
  // Class and function names show in errors and logs as they do unbundled.
  keepNames: true,
  logLevel: 'warning',
};

/**
 * Groups of modules that load together, each into one chunk: what the master imports at start
 * (src/index.ts), what a fetcher adds (fetchers/index.ts), what its first poll adds (the
 * upgrader). esbuild splits shared code by which entries reach it, and with a dozen entries and
 * lazy imports the master's ~40 modules came out as 14 files, still enough for the loader's path
 * work to wake V8's compiler from a long install path. Each root (entry, or target of a lazy
 * import) that reaches a group imports all of it, so the group's code is reached by the same
 * roots and lands in one chunk. Costs: a root that needs one module of a group loads the group,
 * and the group's modules are not tree-shaken.
 */
const GROUP_ROOTS = ['src/index.ts', 'fetchers/index.ts', 'src/upgrade/upgrader.ts'];

const ours = (file) => /^(src|fetchers)\/.*\.ts$/.test(file);
const graphs = new Map();

/** The modules of ours a root imports statically (lazy imports left out), as root-relative paths. */
function staticGraph(file) {
  const relative = path.relative(root, path.resolve(root, file));
  if (!graphs.has(relative)) {
    graphs.set(relative, build({
      ...common,
      entryPoints: [relative],
      write: false,
      metafile: true,
      plugins: [undiciParts, { name: 'lazy-external', setup: (b) => b.onResolve({ filter: /.*/ }, (args) => (args.kind === 'dynamic-import' ? { external: true } : undefined)) }],
    }).then((result) => new Set(Object.keys(result.metafile.inputs).filter(ours))));
  }
  return graphs.get(relative);
}

async function groupsOf() {
  const groups = [];
  const taken = new Set();
  for (const rootFile of GROUP_ROOTS) {
    const members = [...(await staticGraph(rootFile))].filter((file) => !taken.has(file));
    for (const file of members) taken.add(file);
    groups.push(members);
  }
  return groups;
}

const groups = await groupsOf();

const grouping = {
  name: 'groups',
  setup(b) {
    b.onResolve({ filter: /.*/ }, async (args) => {
      if (args.pluginData?.plain || (args.kind !== 'entry-point' && args.kind !== 'dynamic-import')) return undefined;
      const resolved = await b.resolve(args.path, { kind: args.kind, resolveDir: args.resolveDir || root, importer: args.importer, pluginData: { plain: true } });
      if (resolved.errors.length > 0 || resolved.external) return undefined;
      const relative = path.relative(root, resolved.path);
      if (!ours(relative)) return undefined;
      const graph = await staticGraph(relative);
      const reached = groups.map((members, index) => (members.some((file) => graph.has(file)) ? index : -1)).filter((index) => index >= 0);
      if (reached.length === 0) return undefined;
      return { path: resolved.path, namespace: 'overseer-root', pluginData: { reached } };
    });
    b.onLoad({ filter: /.*/, namespace: 'overseer-root' }, (args) => {
      const text = fs.readFileSync(args.path, 'utf8');
      const shebang = text.startsWith('#!') ? `${text.slice(0, text.indexOf('\n'))}\n` : '';
      const { reached } = args.pluginData;
      return {
        resolveDir: root,
        loader: 'js',
        contents: [
          shebang,
          ...reached.map((index) => `import * as __overseerGroup${index} from 'overseer-group:${index}';`),
          // Never true; it keeps each group's namespace (so all its code) reached from this root.
          `if (globalThis.__overseerNever === true) console.log(${reached.map((index) => `__overseerGroup${index}`).join(', ')});`,
          `export * from ${JSON.stringify(args.path)};`,
        ].join('\n'),
      };
    });
    // The root itself keeps its side effects (the CLI's main(), a preload's hooks): package.json
    // says "sideEffects": false, which would let esbuild drop a module reached only by export *.
    b.onResolve({ filter: /.*/ }, (args) => (args.namespace === 'overseer-root' && args.kind === 'import-statement' && path.isAbsolute(args.path) ? { path: args.path, sideEffects: true } : undefined));
    b.onResolve({ filter: /^overseer-group:\d+$/ }, (args) => ({ path: args.path, namespace: 'overseer-group' }));
    b.onLoad({ filter: /.*/, namespace: 'overseer-group' }, (args) => ({
      resolveDir: root,
      loader: 'js',
      contents: groups[Number(args.path.split(':')[1])].map((file, index) => `export * as m${index} from ${JSON.stringify(path.join(root, file))};`).join('\n'),
    }));
  },
};

await build({
  ...common,
  entryPoints: entryPoints(),
  outbase: '.',
  outdir: 'dist',
  splitting: true,
  sourcemap: true,
  chunkNames: 'src/chunks/[name]-[hash]',
  plugins: [undiciParts, grouping],
});

// Bundled CommonJS (undici, semver, proper-lockfile) calls require() for Node's builtins, and only
// for those (the rest is bundled); an ES module has no require, so the chunks holding such code get
// one, on their first line (source maps keep their line numbers). process.getBuiltinModule rather
// than createRequire(import.meta.url): an app that bundles overseer into CommonJS (a single
// executable, docs/cli.md) has no import.meta.url.
const REQUIRE_LINE = "const require = (id) => { const builtin = process.getBuiltinModule(id); if (builtin === undefined) throw new Error(`overseer's bundle requires ${id}, which is not a Node builtin (scripts/bundle.mjs)`); return builtin; }; ";
for (const dir of [path.join(dist, 'src'), path.join(dist, 'fetchers')]) {
  for (const entry of fs.readdirSync(dir, { recursive: true })) {
    const file = path.join(dir, entry);
    if (!file.endsWith('.js')) continue;
    const text = fs.readFileSync(file, 'utf8');
    if (!text.includes('Dynamic require of "')) continue;
    if (text.startsWith('#!')) throw new Error(`scripts/bundle.mjs: ${file} needs require() and starts with a shebang`);
    fs.writeFileSync(file, REQUIRE_LINE + text);
  }
}
