import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import { test } from 'node:test';
import { root } from '../helpers/master.ts';

const read = (file: string) => JSON.parse(fs.readFileSync(`${root}/${file}`, 'utf8')) as Record<string, unknown>;

// `npm install` rewrites the lock's root entry whenever it differs from package.json (a missing
// `bin` once made every fresh clone dirty); checked by hand: fresh clone, npm install, empty git diff.
test('package-lock.json describes package.json as npm install would write it', () => {
  const pkg = read('package.json');
  const lock = read('package-lock.json');
  assert.equal(lock.name, pkg.name);
  assert.equal(lock.version, pkg.version);
  assert.equal(lock.lockfileVersion, 3);
  const rootEntry = (lock.packages as Record<string, Record<string, unknown>>)[''];
  assert.ok(rootEntry, 'the lock has a root package entry');
  for (const key of ['name', 'version', 'license', 'bin', 'engines', 'dependencies', 'devDependencies', 'peerDependencies', 'peerDependenciesMeta']) {
    assert.deepEqual(rootEntry[key], pkg[key], `package-lock.json packages[""].${key} matches package.json`);
  }
  // Every declared dependency is locked.
  const locked = lock.packages as Record<string, unknown>;
  for (const name of Object.keys({ ...(pkg.dependencies as object), ...(pkg.devDependencies as object) })) {
    assert.ok(locked[`node_modules/${name}`], `${name} is in package-lock.json`);
  }
});

test('the package says MIT and ships the MIT license text', () => {
  assert.equal(read('package.json').license, 'MIT');
  const license = fs.readFileSync(`${root}/LICENSE`, 'utf8');
  assert.match(license, /^MIT License\n\nCopyright \(c\) 2026 the overseer authors\n/);
  assert.match(license, /THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND/);
});

// scripts/entry-points.mjs finds the files run by path (srcPath('x.js')) for the build; a file
// it missed would be absent from dist/ and break only the installed package.
test('every file run by path through srcPath() is found in the sources and built at its path', async () => {
  const { runtimeEntries } = await import(`${root}/scripts/entry-points.mjs`) as { runtimeEntries(dir: string): string[] };
  const entries = runtimeEntries(root);
  for (const expected of ['src/preload/listen.ts', 'src/check/preload.ts', 'src/cli/main.ts']) assert.ok(entries.includes(expected), `${expected} in ${entries.join(', ')}`);
  for (const entry of entries) {
    const built = `${root}/dist/${entry.replace(/\.ts$/, '.js')}`;
    assert.ok(fs.existsSync(built), `${entry} is run by path but the build has no ${built}`);
  }

  const scratch = fs.mkdtempSync(`${os.tmpdir()}/overseer-entries-`);
  try {
    fs.mkdirSync(`${scratch}/src/new`, { recursive: true });
    fs.mkdirSync(`${scratch}/fetchers`);
    fs.writeFileSync(`${scratch}/src/new/spawner.ts`, "spawn(node, [srcPath('new/worker.js')]);\nconst up = srcPath('..');\n");
    assert.deepEqual(runtimeEntries(scratch), ['src/new/worker.ts'], 'a new srcPath() target becomes an entry point; a folder does not');
    fs.writeFileSync(`${scratch}/fetchers/dynamic.ts`, "const file = srcPath(name + '.js');\n");
    assert.throws(() => runtimeEntries(scratch), /fetchers\/dynamic\.ts calls srcPath\(name \+ '\.js'\): name the file as a string literal/);
  } finally {
    fs.rmSync(scratch, { recursive: true, force: true });
  }
});
