/**
 * A started process's exit, awaited with a deadline: a process that does not exit fails its test
 * with what it was doing, instead of holding the suite until CI gives up on it.
 */
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import { scale } from './scale.ts';

/** Longer than any graceful stop a test asks for (a drain up to its terminateTimeout, then SIGKILL); scaled. */
export const EXIT_DEADLINE_MS = 90_000 * scale;

/**
 * `exit`, made so that each wait on it (await, then, Promise.all) lasts at most `deadlineMs`;
 * past it the wait rejects with `explain()` and the state of each of the process's threads (a
 * thread blocked in futex_wait inside V8 is not one waiting for events in epoll_wait). Nothing
 * is armed until something waits on it.
 */
export function boundedExit<T>(child: ChildProcess, exit: Promise<T>, what: string, explain: () => string = () => '', deadlineMs = EXIT_DEADLINE_MS): PromiseLike<T> {
  return {
    then(onFulfilled, onRejected) {
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what} (pid ${child.pid}) did not exit within ${deadlineMs} ms\n${threadsOf(child.pid)}\n${explain()}`)), deadlineMs);
      });
      return Promise.race([exit, deadline]).finally(() => clearTimeout(timer)).then(onFulfilled, onRejected);
    },
  };
}

/** The exit code of `child` (null if a signal ended it), awaited as boundedExit() says. */
export function exitCodeOf(child: ChildProcess, what: string, explain?: () => string): PromiseLike<number | null> {
  const exit = child.exitCode !== null || child.signalCode !== null
    ? Promise.resolve(child.exitCode)
    : new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return boundedExit(child, exit, what, explain);
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
