/**
 * Launches any executable as a child, handing it the master's sockets the systemd way: fds 3..
 * in address order, LISTEN_FDS, LISTEN_FDNAMES and LISTEN_PID (its own pid). Readiness comes
 * from a pipe (OVERSEER_READY_FD: write "READY=1\n", as sd_notify would) or after a delay.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import type { Launcher, LaunchContext, LaunchedChild, LaunchEvents } from './launcher.js';
import { PROTOCOL, type CheckAnswer } from '../../protocol.js';
import { preloadEnv } from './preload.js';

export type Readiness =
  /** The child writes READY=1 to the pipe named by OVERSEER_READY_FD. */
  | { readonly kind: 'notify' }
  /** The child counts as ready this long after it started (for children that cannot say). */
  | { readonly kind: 'delay'; readonly ms: number };

export interface ExecOptions {
  readonly command: string;
  readonly args: readonly string[];
  readonly cwd?: string | undefined;
  readonly env?: Readonly<Record<string, string>> | undefined;
  readonly readiness: Readiness;
  /** Sent to drain a child; it must exit once drained. @default 'SIGTERM' */
  readonly stopSignal?: NodeJS.Signals | undefined;
  /** LISTEN_FDNAMES entries, one per listener. @default 'listener0', 'listener1', … */
  readonly names?: readonly string[] | undefined;
  /**
   * The file upgrades replace: the command itself, or one of its arguments (a script). The
   * echo-token check runs the command line with this file swapped for the staged release.
   */
  readonly bundlePath: string;
  /** Run the echo-token check on releases (the program must answer it). @default true */
  readonly check?: boolean | undefined;
  /** Load the listen preload (the command is a Node program): `listen(3000)` takes the held socket. @default false */
  readonly preload?: boolean | undefined;
}

export const READY_FD_ENV = 'OVERSEER_READY_FD';

// sh sets LISTEN_PID to its own pid, which exec hands on to the command: Node cannot set an
// environment variable to the pid of a process it has not started yet.
const SET_LISTEN_PID = 'LISTEN_PID=$$; export LISTEN_PID; exec "$0" "$@"';

export class ExecLauncher implements Launcher {
  readonly #options: ExecOptions;

  constructor(options: ExecOptions) {
    this.#options = options;
  }

  async check(file: string, timeout: number): Promise<CheckAnswer> {
    const { command, args, bundlePath } = this.#options;
    // A program that cannot answer the check relies on the checksum, the signature and rollback.
    if (this.#options.check === false) return { token: '', protocol: PROTOCOL, version: null };
    // The command line as it would run the release: paths into the bundle (a file, or a
    // folder and what is inside it) lead into the staged release instead.
    const swap = (item: string) => {
      const full = path.resolve(this.#options.cwd ?? '.', item);
      if (full === bundlePath) return file;
      return full.startsWith(`${bundlePath}${path.sep}`) ? path.join(file, path.relative(bundlePath, full)) : item;
    };
    const cwd = this.#options.cwd === undefined ? undefined : swap(path.resolve(this.#options.cwd));
    const { runEchoCheck } = await import('../../upgrade/verify.js');
    const commandLine = [swap(command), ...args.map(swap)];
    // Not a Node program calling run(): say what this launcher's check asks of the command.
    const advice = `the check ran ${JSON.stringify(commandLine.join(' '))} with the variable OVERSEER_BIN_CHECK set: ` +
      'the program must then print its value on a line of its own and exit 0 (as Go\'s overseer does; an entry calling run() from overseer does it); ' +
      `if it cannot, run the master with --no-check (or "check": false) and rely on the checksum, the signature and rollback; ` +
      `if that command line does not run the release, name the file releases replace with --bundle (now ${bundlePath})`;
    return runEchoCheck({ file, timeout, command: commandLine[0] ?? command, args: commandLine.slice(1), cwd, env: this.#options.env, advice });
  }

  launch(context: LaunchContext, events: LaunchEvents): LaunchedChild {
    const options = this.#options;
    const count = context.listeners.length;
    const readyFd = 3 + count;
    const names = context.listeners.map((_, index) => options.names?.[index] ?? `listener${index}`);
    const env: Record<string, string> = {
      ...process.env as Record<string, string>,
      ...options.env,
      LISTEN_FDS: String(count),
      LISTEN_FDNAMES: names.join(':'),
      OVERSEER_BUNDLE_SHA256: context.sha256,
      OVERSEER_GENERATION: String(context.generation),
    };
    if (options.readiness.kind === 'notify') env[READY_FD_ENV] = String(readyFd);
    if (count === 0) {
      delete env.LISTEN_FDS;
      delete env.LISTEN_FDNAMES;
    }
    if (options.preload === true && count > 0) {
      const stopSignal = options.stopSignal ?? 'SIGTERM';
      Object.assign(env, preloadEnv(context.listeners, env, { readyFd: env[READY_FD_ENV] === undefined ? null : readyFd, stopSignal, terminateTimeout: context.terminateTimeout }));
    }
    const child = spawn('/bin/sh', ['-c', SET_LISTEN_PID, options.command, ...options.args], {
      cwd: options.cwd,
      env,
      detached: true,
      stdio: [
        'inherit', 'inherit', 'inherit',
        ...context.listeners.map((listener) => listener.handle.fd),
        options.readiness.kind === 'notify' ? 'pipe' : 'ignore',
      ],
    });
    if (options.readiness.kind === 'notify') {
      const pipe = child.stdio[readyFd] as Readable | null | undefined;
      if (pipe) {
        const lines = createInterface({ input: pipe });
        lines.on('line', (line) => {
          if (line.trim() === 'READY=1') events.ready();
        });
        pipe.on('error', () => {});
      }
    } else {
      const timer = setTimeout(() => events.ready(), options.readiness.ms);
      child.once('exit', () => clearTimeout(timer));
    }
    const stopSignal = options.stopSignal ?? 'SIGTERM';
    return {
      process: child,
      drain: () => {
        child.kill(stopSignal);
      },
    };
  }
}
