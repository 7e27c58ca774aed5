/** Small process helpers the tests and the benchmarks share. */
import fs from 'node:fs';

/** True while a process with this pid exists (signal 0 checks without sending anything). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Each thread of `pid`: its name, state and kernel wait channel, from /proc (Linux). */
export function threadsOf(pid: number | undefined): string {
  if (pid === undefined) return 'threads: (no pid)';
  const read = (file: string) => {
    try {
      return fs.readFileSync(file, 'utf8').trim();
    } catch {
      return '?';
    }
  };
  let tids: string[];
  try {
    tids = fs.readdirSync(`/proc/${pid}/task`);
  } catch {
    return `threads of ${pid}: gone`;
  }
  const lines = tids.map((tid) => {
    const stat = read(`/proc/${pid}/task/${tid}/stat`);
    // The state follows the parenthesized name, which may itself hold spaces or parentheses.
    const state = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0];
    return `  ${tid} ${read(`/proc/${pid}/task/${tid}/comm`)} ${state} ${read(`/proc/${pid}/task/${tid}/wchan`)}`;
  });
  return [`threads of ${pid} (tid name state wait-channel):`, ...lines].join('\n');
}
