/**
 * What every benchmark section shares: its options (quick or full), its printed and saved result,
 * and running one section on its own (`node --import tsx bench/<section>.ts [--quick]`).
 */
import fs from 'node:fs';
import path from 'node:path';
import { benchDir, root } from './procs.ts';

export interface SectionOptions {
  readonly quick: boolean;
  /** Pin servers to CPU 0 and the client to CPU 1 in the throughput section (--pin). */
  readonly pin: boolean;
}

export interface SectionResult {
  readonly name: string;
  /** Markdown: tables and short notes, printed and written to the report. */
  readonly markdown: string;
  /** Everything measured, for bench/results/*.json. */
  readonly data: unknown;
}

export function parseArgs(argv: readonly string[]): SectionOptions & { only: string[] | undefined } {
  const only = argv.find((arg) => arg.startsWith('--only='))?.slice('--only='.length).split(',');
  return { quick: argv.includes('--quick'), pin: argv.includes('--pin'), only };
}

export function assertBuilt(): void {
  if (!fs.existsSync(path.join(root, 'dist/src/index.js'))) {
    throw new Error('dist/src/index.js is missing: run `npm run build` before `npm run bench`');
  }
}

export function writeResult(name: string, value: unknown): string {
  const dir = path.join(benchDir, 'results');
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${name}.json`);
  fs.writeFileSync(file, `${JSON.stringify(value, null, 1)}\n`);
  return file;
}

/** Runs one section as a script: prints its markdown, saves its data. */
export async function runStandalone(name: string, section: (options: SectionOptions) => Promise<SectionResult>): Promise<void> {
  const options = parseArgs(process.argv.slice(2));
  assertBuilt();
  const result = await section(options);
  process.stdout.write(`\n${result.markdown}\n`);
  writeResult(`${name}${options.quick ? '-quick' : ''}`, result.data);
}

export function log(message: string): void {
  process.stderr.write(`[bench] ${message}\n`);
}
