/**
 * What keeps an idle master small (docs/benchmarks.md §9): the build gives each folder of
 * dist/ a `{"type":"module"}` package.json (scripts/package-scopes.mjs), and importing overseer
 * loads no CommonJS module (semver stays out until the upgrade path needs it).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { root, scale } from '../helpers/master.ts';
import { modulesLoadedBy } from '../helpers/modules.ts';

async function folders(dir: string): Promise<string[]> {
  const found = [dir];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    if (entry.isDirectory()) found.push(...(await folders(path.join(dir, entry.name))));
  }
  return found;
}

test('every folder of the build has a {"type":"module"} package.json', async () => {
  const all = [...(await folders(path.join(root, 'dist/src'))), ...(await folders(path.join(root, 'dist/fetchers')))];
  assert.ok(all.length > 5, 'the build exists (npm test builds it first)');
  for (const dir of all) {
    const manifest = JSON.parse(await readFile(path.join(dir, 'package.json'), 'utf8')) as unknown;
    assert.deepEqual(manifest, { type: 'module' }, dir);
  }
});

test('importing overseer (the master entry) loads no CommonJS module, no semver and few files', async () => {
  const loaded = await modulesLoadedBy(pathToFileURL(path.join(root, 'dist/src/index.js')).href);
  assert.ok(loaded.some((entry) => entry.endsWith('/dist/src/index.js')), 'the probe sees the entry');
  // The build bundles (scripts/bundle.mjs): the entry and a few shared chunks, not one file per module (~17 before).
  const ours = new Set(loaded.filter((entry) => entry.includes('/dist/src/')));
  assert.ok(ours.size <= 16, `the master's import loads ${ours.size} files of dist: ${[...ours].join(', ')}`);
  assert.ok(!loaded.some((entry) => entry.includes('/dist/src/core/')), 'no per-module files: the modules are bundled');
  assert.deepEqual(loaded.filter((entry) => entry.includes('/node_modules/semver/')), []);
  assert.deepEqual(loaded.filter((entry) => entry.startsWith('/') && entry.includes('/node_modules/') && !entry.includes('/tsx/') && !entry.includes('/esbuild/')), [], 'tsx and its esbuild are the probe\'s own');
});

test("importing overseer's master code loads no undici of Node's own (an ESM import of node:http does on Node 22 and 24)", async () => {
  // On Node 22 and 24, `import http from 'node:http'` reads every export of the module, and its
  // lazy WebSocket, CloseEvent and MessageEvent getters load Node's own undici: +10-14 MB RSS in
  // the master (docs/benchmarks.md §9). overseer takes node:http with process.getBuiltinModule().
  const nodeUndici = async (imports: string[]): Promise<string[]> => {
    const script = `${imports.map((url) => `await import(${JSON.stringify(url)});`).join(' ')} console.log(JSON.stringify(process.moduleLoadList.filter((name) => name.includes('undici'))));`;
    const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script], { timeout: 30_000 * scale });
    return JSON.parse(stdout) as string[];
  };
  const control = await nodeUndici(['node:http']);
  const entries = ['dist/src/index.js', 'dist/src/core/start.js', 'dist/fetchers/index.js'].map((file) => pathToFileURL(path.join(root, file)).href);
  const loaded = await nodeUndici([...entries]);
  assert.ok(loaded.length === 0, `importing ${entries.join(', ')} loaded ${loaded.join(', ')}`);
  // The control proves the check on Node 22 and 24; Node 20's http module has no such getters.
  if (control.length === 0) assert.equal(Number(process.versions.node.split('.')[0]), 20, `the control loaded Node's undici on Node ${process.versions.node}`);
  else assert.ok(control.some((name) => name.includes('internal/deps/undici')), `control: ${control.join(', ')}`);
});
