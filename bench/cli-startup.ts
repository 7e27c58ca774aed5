/**
 * Section 7: start-up of a command-line tool (docs/cli.md). The same tool (prints its version)
 * run bare, under overseer/self-update with no check due, with a check due (the background
 * updater is spawned and let go: its time is not counted, but the run waits for it to end before
 * the next one so it does not slow that one), and under run({ noRestart }) (a master that forks
 * the tool). Paired: every round runs each once, in a rotating order, and each ratio is taken
 * against the bare run of the same round. Also: the time to import each entry module.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { startReleaseServer } from '../support/release-server.ts';
import { distDir, overseerUrl } from './lib/apps.ts';
import { now, sleep } from './lib/clock.ts';
import { loadAverage, waitForQuiet } from './lib/procs.ts';
import { log, runStandalone, type SectionOptions, type SectionResult } from './lib/section.ts';
import { median, ms, ratio, table } from './lib/stats.ts';

const selfUpdateUrl = pathToFileURL(path.join(distDir, 'src/self-update/index.js')).href;
const httpUrl = pathToFileURL(path.join(distDir, 'fetchers/http.js')).href;

type Variant = 'bare' | 'self-update, no check due' | 'self-update, check due' | 'run({ noRestart })';
const VARIANTS: readonly Variant[] = ['bare', 'self-update, no check due', 'self-update, check due', 'run({ noRestart })'];

const sources: Record<'bare' | 'self-update' | 'no-restart', string> = {
  bare: `console.log('mytool 1.0.0');\n`,
  'self-update': `import { selfUpdating } from ${JSON.stringify(selfUpdateUrl)};
await selfUpdating({
  version: '1.0.0', checkEvery: Number(process.env.CHECK_EVERY), notify: false,
  fetcher: () => import(${JSON.stringify(httpUrl)}).then(({ HttpFetcher }) => new HttpFetcher({ url: process.env.RELEASE_URL })),
  program() { console.log('mytool 1.0.0'); },
});
`,
  'no-restart': `import { run } from ${JSON.stringify(overseerUrl)};
import { HttpFetcher } from ${JSON.stringify(httpUrl)};
await run({
  version: '1.0.0', noRestart: true, noWarn: true,
  fetcher: new HttpFetcher({ url: process.env.RELEASE_URL }),
  program() { console.log('mytool 1.0.0'); },
});
`,
};

/** Wall time of one run, spawn to exit, in ms. */
function timed(file: string, env: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    const started = now();
    const child = spawn(process.execPath, [file], { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'inherit'] });
    child.once('error', reject);
    child.once('exit', (code) => (code === 0 ? resolve(now() - started) : reject(new Error(`${file} exited with ${code}`))));
  });
}

/** Milliseconds `import(url)` takes in a fresh node (module load and evaluation only). */
function importTime(url: string): Promise<number> {
  const program = `const t = performance.now(); await import(${JSON.stringify(url)}); console.log(performance.now() - t);`;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', program], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
    child.once('error', reject);
    child.once('exit', () => resolve(Number(out.trim())));
  });
}

export async function cliStartupSection(options: SectionOptions): Promise<SectionResult> {
  const rounds = options.quick ? 8 : 30;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'overseer-bench-cli-'));
  const cache = path.join(dir, 'cache');
  const files = Object.fromEntries(Object.entries(sources).map(([name, source]) => {
    const file = path.join(dir, `${name}.mjs`);
    fs.writeFileSync(file, source);
    return [name, file];
  })) as Record<keyof typeof sources, string>;
  const releases = await startReleaseServer();
  // Each source offers the tool's own bytes: a check finds nothing new (the usual case).
  releases.publish('/self-update.mjs', sources['self-update'], { sha256: true });
  releases.publish('/no-restart.mjs', sources['no-restart'], { sha256: true });
  const stateDir = path.join(cache, 'overseer', 'self-update');
  const state = () => {
    const name = fs.existsSync(stateDir) ? fs.readdirSync(stateDir).find((entry) => entry.endsWith('.json')) : undefined;
    return name === undefined ? undefined : (JSON.parse(fs.readFileSync(path.join(stateDir, name), 'utf8')) as { lastResult?: string; checking?: unknown });
  };
  const run = async (variant: Variant): Promise<number> => {
    const base = { XDG_CACHE_HOME: cache };
    switch (variant) {
      case 'bare': return timed(files.bare, base);
      case 'self-update, no check due': return timed(files['self-update'], { ...base, CHECK_EVERY: '86400000', RELEASE_URL: releases.url('/self-update.mjs') });
      case 'self-update, check due': {
        fs.rmSync(stateDir, { recursive: true, force: true });
        const took = await timed(files['self-update'], { ...base, CHECK_EVERY: '0', RELEASE_URL: releases.url('/self-update.mjs') });
        // Not timed: the background check ends before the next run starts.
        const deadline = Date.now() + 20_000;
        for (let current = state(); !(current?.lastResult && !current.checking) && Date.now() < deadline; current = state()) await sleep(20);
        return took;
      }
      case 'run({ noRestart })': return timed(files['no-restart'], { ...base, RELEASE_URL: releases.url('/no-restart.mjs') });
    }
  };
  const times = new Map<Variant, number[]>(VARIANTS.map((variant) => [variant, []]));
  const ratios = new Map<Variant, number[]>(VARIANTS.map((variant) => [variant, []]));
  try {
    const busy = await waitForQuiet();
    const load = loadAverage();
    log(`cli-startup: ${rounds} rounds of ${VARIANTS.length} runs (+1 warm-up round)`);
    for (let round = -1; round < rounds; round++) {
      const order = VARIANTS.map((_, index) => VARIANTS[(index + Math.max(round, 0)) % VARIANTS.length]!);
      const took = new Map<Variant, number>();
      for (const variant of order) took.set(variant, await run(variant));
      if (round < 0) continue;
      for (const variant of VARIANTS) {
        times.get(variant)!.push(took.get(variant)!);
        ratios.get(variant)!.push(took.get(variant)! / took.get('bare')!);
      }
    }
    // The first import() of a file starts the ESM loader: an empty module is the floor.
    const empty = path.join(dir, 'empty.mjs');
    fs.writeFileSync(empty, 'export {};\n');
    const imports: Array<[string, string]> = [['an empty module', pathToFileURL(empty).href], ['overseer/self-update', selfUpdateUrl], ['overseer (run)', overseerUrl]];
    const importTimes = new Map<string, number[]>(imports.map(([name]) => [name, []]));
    for (let round = 0; round < (options.quick ? 5 : 15); round++) {
      for (const [name, url] of imports) importTimes.get(name)!.push(await importTime(url));
    }
    const rows = VARIANTS.map((variant) => {
      const sorted = [...times.get(variant)!].sort((a, b) => a - b);
      return [variant, ms(median(sorted)), `${ms(sorted[0]!)}–${ms(sorted.at(-1)!)}`, `${median(ratios.get(variant)!).toFixed(3)}×`];
    });
    const floor = median(importTimes.get('an empty module')!);
    const importRows = imports.map(([name]) => [name, ms(median(importTimes.get(name)!)), ratio(median(importTimes.get(name)!), floor)]);
    const markdown = [
      '## Command-line tool start-up',
      '',
      `Wall time of one run of a tool that prints its version, spawn to exit, ${rounds} paired rounds; ratio: median of the per-round ratios to the bare run. The machine was ${(busy * 100).toFixed(0)} % busy just before (load average ${load}).`,
      '',
      table(['tool', 'median ms', 'min–max ms', 'vs bare (paired)'], rows),
      '',
      'Time to import the entry module in a fresh node (median):',
      '',
      table(['import', 'median ms', 'vs an empty module'], importRows),
      '',
      `Bare → no check due: ${ratio(median(times.get('self-update, no check due')!), median(times.get('bare')!))} of medians.`,
    ].join('\n');
    return {
      name: 'cli-startup',
      markdown,
      data: { rounds, busyBefore: busy, loadAverage: load, times: Object.fromEntries(times), ratios: Object.fromEntries(ratios), imports: Object.fromEntries(importTimes) },
    };
  } finally {
    await releases.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) await runStandalone('cli-startup', cliStartupSection);
