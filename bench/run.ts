/**
 * `npm run bench [-- --quick] [--only=throughput,handoff,handoff-latency,crash,master-cost,master-memory,upgrade,verify,unmodified,cli-startup,probation]
 * [--pin] [--dist=head] [--no-wait]`: runs the sections in order, prints their tables, and writes
 * bench/results/latest.json, report.md and handoffs.svg. --quick is the CI smoke (< 2 min).
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadAverage, quietWaited, root, setQuietGate, waitForQuiet } from './lib/procs.ts';
import { assertBuilt, log, parseArgs, writeResult, type SectionOptions, type SectionResult } from './lib/section.ts';

const SECTIONS = ['throughput', 'handoff', 'handoff-latency', 'crash', 'master-cost', 'master-memory', 'upgrade', 'verify', 'unmodified', 'cli-startup', 'probation'] as const;
type SectionName = (typeof SECTIONS)[number];

function sh(command: string, args: readonly string[]): string {
  try {
    return execFileSync(command, args, { encoding: 'utf8', cwd: root, stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return '';
  }
}

/** Builds the committed HEAD of src/ and fetchers/ into bench/results/head/dist, away from work in progress in the tree. */
function buildHead(): string {
  const dir = path.join(root, 'bench/results/head');
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  const archive = execFileSync('git', ['archive', 'HEAD', 'src', 'fetchers', 'tsconfig.json', 'package.json'], { cwd: root });
  execFileSync('tar', ['-x', '-C', dir], { input: archive });
  execFileSync(process.execPath, [path.join(root, 'node_modules/typescript/bin/tsc'), '-p', path.join(dir, 'tsconfig.json')], { stdio: 'inherit' });
  // As `npm run build` does (scripts/package-scopes.mjs: the master's memory depends on it).
  if (fs.existsSync(path.join(root, 'scripts/package-scopes.mjs'))) execFileSync(process.execPath, [path.join(root, 'scripts/package-scopes.mjs'), path.join(dir, 'dist')], { stdio: 'inherit' });
  return path.join(dir, 'dist');
}

interface Machine {
  readonly nproc: string;
  readonly cpu: string;
  readonly memory: string;
  readonly node: string;
  readonly kernel: string;
  readonly commit: string;
  readonly dirty: string;
}

function machine(): Machine {
  const cpuinfo = fs.readFileSync('/proc/cpuinfo', 'utf8');
  return {
    nproc: sh('nproc', []) || String(os.availableParallelism()),
    cpu: /model name\s*:\s*(.+)/.exec(cpuinfo)?.[1] ?? os.cpus()[0]?.model ?? 'unknown',
    memory: sh('free', ['-h']),
    node: process.version,
    kernel: `${os.type()} ${os.release()}`,
    commit: sh('git', ['rev-parse', '--short', 'HEAD']),
    dirty: sh('git', ['status', '--short', '--', 'src', 'fetchers']),
  };
}

async function load(name: SectionName): Promise<(options: SectionOptions) => Promise<SectionResult>> {
  switch (name) {
    case 'throughput': return (await import('./throughput.ts')).throughputSection;
    case 'handoff': return (await import('./handoff.ts')).handoffSection;
    case 'handoff-latency': return (await import('./handoff-latency.ts')).handoffLatencySection;
    case 'crash': return (await import('./crash.ts')).crashSection;
    case 'master-cost': return (await import('./master-cost.ts')).masterCostSection;
    case 'master-memory': return (await import('./master-memory.ts')).masterMemorySection;
    case 'upgrade': return (await import('./upgrade.ts')).upgradeSection;
    case 'verify': return (await import('./verify.ts')).verifySection;
    case 'unmodified': return (await import('./unmodified.ts')).unmodifiedSection;
    case 'cli-startup': return (await import('./cli-startup.ts')).cliStartupSection;
    case 'probation': return (await import('./probation.ts')).probationSection;
  }
}

async function main(): Promise<number> {
  const options = parseArgs(process.argv.slice(2));
  const distArg = process.argv.find((arg) => arg.startsWith('--dist='))?.slice('--dist='.length);
  if (distArg === 'head') process.env.BENCH_DIST = buildHead();
  else if (distArg) process.env.BENCH_DIST = path.resolve(distArg);
  else assertBuilt();
  // Full runs wait for other users' work to calm down before each measurement (at most 5 min each, 40 min in all).
  if (!options.quick && !process.argv.includes('--no-wait')) setQuietGate({ maxBusy: 0.12, maxWaitMs: 5 * 60_000, budgetMs: 40 * 60_000 });
  const chosen = SECTIONS.filter((name) => !options.only || options.only.includes(name));
  const meta = { ...machine(), command: `npm run bench -- ${process.argv.slice(2).join(' ')}`.trim(), startedAt: new Date().toISOString(), dist: process.env.BENCH_DIST ?? 'dist', loadBefore: loadAverage() };
  log(`${meta.nproc} cores, ${meta.cpu}, node ${meta.node}, load average ${meta.loadBefore}${options.quick ? ', quick mode' : ''}`);
  const started = performance.now();
  const sections: Record<string, unknown> = {};
  const markdown: string[] = [];
  const loads: Record<string, string> = {};
  let failed = 0;
  for (const name of chosen) {
    try {
      const section = await load(name);
      await waitForQuiet();
      const result = await section(options);
      sections[name] = result.data;
      markdown.push(result.markdown);
      loads[name] = loadAverage();
      process.stdout.write(`\n${result.markdown}\n`);
    } catch (error) {
      failed++;
      const text = error instanceof Error ? error.stack ?? error.message : String(error);
      markdown.push(`### ${name}: FAILED\n\n\`\`\`\n${text}\n\`\`\``);
      sections[name] = { error: text };
      process.stderr.write(`[bench] ${name} failed: ${text}\n`);
    }
  }
  const summary = {
    meta: { ...meta, loadAfterEachSection: loads, waitedForQuietSeconds: quietWaited() / 1000, finishedAt: new Date().toISOString(), seconds: (performance.now() - started) / 1000, quick: options.quick },
    sections,
  };
  const stamp = meta.startedAt.replace(/[:.]/g, '-');
  writeResult(`run-${stamp}${options.quick ? '-quick' : ''}`, summary);
  writeResult('latest', summary);
  const header = [
    `Run: \`${meta.command}\` at ${meta.startedAt}, ${summary.meta.seconds.toFixed(0)} s; commit ${meta.commit}${meta.dirty ? ' (src/fetchers modified in the tree)' : ''}; build ${meta.dist}`,
    `Machine: ${meta.nproc} cores (${meta.cpu}), node ${meta.node}, ${meta.kernel}; load average before ${meta.loadBefore}, after each section ${JSON.stringify(loads)}; waited ${(quietWaited() / 1000).toFixed(0)} s in all for the machine to be quiet`,
    '',
    '```',
    meta.memory,
    '```',
  ].join('\n');
  fs.writeFileSync(path.join(root, 'bench/results/report.md'), `${header}\n\n${markdown.join('\n\n')}\n`);
  if (sections.handoff && !(sections.handoff as { error?: string }).error) {
    const { plotFromHandoff } = await import('./plot.ts');
    const svg = plotFromHandoff(sections.handoff as Parameters<typeof plotFromHandoff>[0]);
    if (svg) fs.writeFileSync(path.join(root, 'bench/results/handoffs.svg'), svg);
  }
  log(`done in ${summary.meta.seconds.toFixed(0)} s; results in bench/results/ (latest.json, report.md, handoffs.svg)`);
  return failed === 0 ? 0 : 1;
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  // The exit hook (lib/procs.ts) kills every process this run started and the PM2 daemon.
  process.once(signal, () => process.exit(130));
}
process.exitCode = await main();
// Servers, sockets and timers of finished sections must not keep the run alive.
setTimeout(() => process.exit(process.exitCode ?? 0), 200).unref();
