/**
 * Python's `http.server` serving a folder on 127.0.0.1: the kind of release server the issue met,
 * which sends Last-Modified (whole seconds) and Content-Length but no ETag.
 */
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';

export const hasPython = spawnSync('python3', ['--version']).status === 0;

export interface PythonServer {
  readonly origin: string;
  close(): Promise<void>;
}

/** Starts `python3 -m http.server` on a free port (it prints the port it got) within `timeoutMs`. */
export async function startPythonServer(directory: string, timeoutMs = 10_000): Promise<PythonServer> {
  const child = spawn('python3', ['-u', '-m', 'http.server', '0', '--bind', '127.0.0.1', '--directory', directory], {
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  const close = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = once(child, 'exit');
    child.kill('SIGTERM');
    await exited;
  };
  let output = '';
  try {
    const port = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`python3 -m http.server said no port within ${timeoutMs} ms: ${output}`)), timeoutMs);
      child.once('exit', (code) => reject(new Error(`python3 -m http.server exited (${code}): ${output}`)));
      child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
        output += chunk;
        const match = /port (\d+)/.exec(output);
        if (match) {
          clearTimeout(timer);
          resolve(Number(match[1]));
        }
      });
    });
    return { origin: `http://127.0.0.1:${port}`, close };
  } catch (error) {
    await close();
    throw error;
  }
}
