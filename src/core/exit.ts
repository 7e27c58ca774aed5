/**
 * The only place overseer ends a process. The master exits with its child's code; a child
 * exits once drained; a bundle under the echo-token check exits after printing its answer.
 * Everything else returns or rejects.
 */
import os from 'node:os';

export function exitProcess(code: number): never {
  process.exit(code);
}

/** The exit code a shell reports for a process ended by `signal`: 128 + its number. */
export function codeForSignal(signal: NodeJS.Signals): number {
  const signals: Partial<Record<string, number>> = os.constants.signals;
  return 128 + (signals[signal] ?? 0);
}
