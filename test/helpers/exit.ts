/**
 * A started process's exit, awaited with a deadline: a process that does not exit fails its test
 * with what it was doing, instead of holding the suite until CI gives up on it.
 */
import type { ChildProcess } from 'node:child_process';
import { threadsOf } from '../../support/process.ts';
import { scale } from './scale.ts';

export { threadsOf };

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
