/**
 * Notices when npm or npx, which started the master, is gone. `npx overseer run` and `npm start`
 * do not pass signals on: `kill -TERM <npm pid>` ends npm and leaves the master serving with
 * no one to stop it. The master records its parent at start and looks again on a slow unref'd
 * timer; the parent changes only when it dies (the master is re-parented to init or a
 * subreaper). Only masters npm started are watched: one started by systemd or docker (parent
 * pid 1), by a supervisor, or by a shell that exits on purpose (nohup, &) keeps serving.
 */

/** How often the parent is looked at; process.ppid is one getppid() call. */
export const PARENT_CHECK_MS = 1_000;

/** True when npm or npx started this process (npm sets these for scripts and `npm exec`). */
export function startedByNpm(env: NodeJS.ProcessEnv = process.env): boolean {
  return env.npm_command !== undefined || env.npm_lifecycle_event !== undefined || env.npm_execpath !== undefined;
}

/**
 * Calls `onGone(parentPid)` once when the parent that started this process has exited. Returns
 * a function that stops watching; returns a no-op where nothing is watched (see above). `debug`
 * hears the decision, so a test can wait on it instead of waiting out the check period.
 */
export function watchParent(onGone: (parentPid: number) => void, debug: (message: string) => void = () => {}, env: NodeJS.ProcessEnv = process.env): () => void {
  const parent = process.ppid;
  if (parent <= 1 || !startedByNpm(env)) {
    debug(`not watching the parent (pid ${parent}): npm did not start this master`);
    return () => {};
  }
  debug(`watching the parent (pid ${parent}) every ${PARENT_CHECK_MS} ms: npm started this master`);
  const timer = setInterval(() => {
    if (process.ppid === parent) return;
    clearInterval(timer);
    onGone(parent);
  }, PARENT_CHECK_MS);
  timer.unref();
  return () => clearInterval(timer);
}
