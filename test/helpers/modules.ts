/**
 * Which modules a fresh process loads: a child imports `target` (and runs `then`) under a
 * resolve hook that logs every URL, plus the CommonJS cache, so a test can prove that importing
 * a fetcher leaves its SDK unloaded.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { root } from './master.ts';

/** URLs and CommonJS paths a child process loads while importing `target` and running `then`. */
export async function modulesLoadedBy(target: string, then = ''): Promise<string[]> {
  const hooks = [
    "import { appendFileSync } from 'node:fs';",
    'let log;',
    'export function initialize(data) { log = data.log; }',
    'export async function resolve(specifier, context, next) {',
    '  const result = await next(specifier, context);',
    "  appendFileSync(log, result.url + '\\n');",
    '  return result;',
    '}',
  ].join('\n');
  const program = [
    "import { register, createRequire } from 'node:module';",
    "import { appendFileSync } from 'node:fs';",
    `register('data:text/javascript,' + encodeURIComponent(${JSON.stringify(hooks)}), { data: { log: process.env.LOG } });`,
    'const loaded = await import(process.env.TARGET);',
    then,
    "appendFileSync(process.env.LOG, Object.keys(createRequire(process.cwd() + '/').cache).join('\\n'));",
  ].join('\n');
  const directory = await mkdtemp(path.join(os.tmpdir(), 'overseer-lazy-'));
  const log = path.join(directory, 'modules.log');
  try {
    await promisify(execFile)(process.execPath, ['--import', 'tsx', '--input-type=module', '--eval', program], {
      cwd: root,
      env: { ...process.env, LOG: log, TARGET: target },
    });
    return (await readFile(log, 'utf8')).split('\n').filter(Boolean);
  } finally {
    await rm(directory, { recursive: true, force: true });
  }
}
