/**
 * Verification of a staged release before it may be swapped in: the source's sha256, the
 * minisign signature, the echo-token handshake (the staged file really starts as an overseer
 * program, and says its version). Versions and downgrades: version-floor.ts.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import type { StagedRelease } from './bundle.js';
import type { ResolvedConfig } from '../core/config.js';
import { OverseerError } from '../errors.js';
import type { Release } from './fetcher.js';
import { keyFor } from './keys.js';
import { parseSignature, signedVersion, verifySignature } from './minisign.js';
import { CHECK_LINE_PREFIX, PROTOCOL, ROLE_CHECK_PREFIX, ROLE_ENV, type CheckAnswer } from '../protocol.js';

/** Output kept from a staged bundle under the check, for the error message. */
const OUTPUT_LIMIT = 64 * 1024;

export interface CheckOptions {
  /** The staged file, for messages. */
  readonly file: string;
  /** How to run it: the same node and flags for a bundle, the command line for an executable. */
  readonly command: string;
  readonly args: readonly string[];
  readonly cwd?: string | undefined;
  /** Added to the master's environment, as the child would get it. */
  readonly env?: Readonly<Record<string, string>> | undefined;
  readonly timeout: number;
  /** How to fix a release that does not answer (exits without the token, or never exits); the launcher knows what it runs. */
  readonly advice?: string | undefined;
}

/** The advice for a Node bundle (the NodeLauncher's release). */
export const NODE_CHECK_ADVICE = 'its entry must call run() from overseer, before doing anything slow';

/**
 * Runs the staged release with a fresh token in OVERSEER_ROLE (and in OVERSEER_BIN_CHECK, the
 * variable Go's overseer uses, so its binaries pass too); run() in it must print the token back
 * (with its version and protocol) and exit 0 within the timeout. Output around the answer line
 * is tolerated: banners and warnings are common.
 */
export function runEchoCheck(options: CheckOptions): Promise<CheckAnswer> {
  const token = randomBytes(16).toString('hex');
  return new Promise((resolve, reject) => {
    const child = spawn(options.command, options.args, {
      cwd: options.cwd,
      env: { ...process.env, ...options.env, [ROLE_ENV]: `${ROLE_CHECK_PREFIX}${token}`, OVERSEER_BIN_CHECK: token },
      stdio: ['ignore', 'pipe', 'pipe'],
      // Its own process group, so whatever it starts (a shell's program without `exec`) ends with it.
      detached: true,
    });
    const killGroup = () => {
      try {
        if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
    };
    // Nothing a check starts may outlive it, nor hold its output pipes open.
    child.once('exit', killGroup);
    let output = '';
    const collect = (chunk: Buffer) => {
      if (output.length < OUTPUT_LIMIT) output += chunk.toString('utf8');
    };
    child.stdout.on('data', collect);
    child.stderr.on('data', collect);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup();
    }, options.timeout);
    const fail = (why: string) => new OverseerError(
      'ERR_OVERSEER_CHECK_FAILED',
      `the release did not pass the echo-token check: ${why}${output.trim() ? `; its output:\n${output.trim().slice(-2000)}` : ''}`,
      { subject: options.file },
    );
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(fail(error.message));
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      if (timedOut) return reject(fail(`no answer within ${options.timeout} ms; ${options.advice ?? NODE_CHECK_ADVICE}`));
      const answer = findAnswer(output, token);
      if (!answer) return reject(fail(`it exited (${signal ?? `code ${code}`}) without printing the token; ${options.advice ?? NODE_CHECK_ADVICE}`));
      if (code !== 0) return reject(fail(`it printed the token but exited with ${signal ?? `code ${code}`}`));
      if (answer.protocol !== PROTOCOL) return reject(fail(`it speaks overseer protocol ${answer.protocol}, this master speaks ${PROTOCOL}; restart the master to move across`));
      resolve(answer);
    });
  });
}

function findAnswer(output: string, token: string): CheckAnswer | undefined {
  for (const line of output.split('\n')) {
    // Go's overseer prints the bare token; it knows nothing of versions.
    if (line.trim() === token) return { token, protocol: PROTOCOL, version: null };
    const at = line.indexOf(CHECK_LINE_PREFIX);
    if (at === -1) continue;
    try {
      const answer = JSON.parse(line.slice(at + CHECK_LINE_PREFIX.length)) as Partial<CheckAnswer>;
      if (answer.token === token && typeof answer.protocol === 'number') {
        return { token, protocol: answer.protocol, version: typeof answer.version === 'string' ? answer.version : null };
      }
    } catch {
      // Not our line after all; keep looking.
    }
  }
  return undefined;
}

/**
 * What verification needs from the source, checked before any download: a release that lacks
 * a required checksum or signature now may get one later (checksums.txt uploaded after the
 * asset), so this failure is not held against the release.
 */
export function verifyDeclared(release: Release, verify: ResolvedConfig['verify']): void {
  if (release.sha256 === undefined && verify.sha256 === 'required') {
    throw new OverseerError(
      'ERR_OVERSEER_CHECKSUM_MISSING',
      `${release.source} comes without a sha256 and verify.sha256 is 'required'; publish a checksum (sidecar, checksums.txt or metadata) or set verify.sha256 to 'optional'`,
      { subject: release.source },
    );
  }
  // A release a verified manifest binds (its sha256 and size signed) needs no signature of its own.
  if (verify.publicKey && release.signature === undefined && release.manifest === undefined) {
    throw new OverseerError(
      'ERR_OVERSEER_SIGNATURE_MISSING',
      `${release.source} has no minisign signature and verify.publicKey is set; publish <asset>.minisig next to it (see docs/signing.md)`,
      { subject: release.source },
    );
  }
}

/**
 * sha256 and minisign signature of the published bytes, computed while they streamed: run right
 * after staging, before a single byte is extracted, run or moved. Returns the version the signer
 * put in the trusted comment (`version:<semver>`), when there is a key and one.
 */
export function verifyIntegrity(staged: StagedRelease, release: Release, verify: ResolvedConfig['verify']): { readonly signedVersion: string | undefined } {
  verifyDeclared(release, verify);
  if (release.sha256 !== undefined && release.sha256.toLowerCase() !== staged.rawSha256) {
    throw new OverseerError(
      'ERR_OVERSEER_CHECKSUM_MISMATCH',
      `${release.source} has sha256 ${staged.rawSha256}, but its source says ${release.sha256.toLowerCase()}; the download is corrupt or was tampered with`,
      { subject: release.source },
    );
  }
  // The bytes matched the sha256 of a manifest whose signature verified: its version is signed too.
  if (release.manifest !== undefined && release.sha256 !== undefined) return { signedVersion: release.manifest.version };
  if (!verify.publicKey || release.signature === undefined) return { signedVersion: undefined };
  const signature = parseSignature(release.signature, `the signature of ${release.source}`);
  // The prehash is computed while staging only when a key is set (stageRelease's `prehash`).
  if (staged.rawBlake2b512 === undefined) throw new Error('the release was staged without its BLAKE2b-512 prehash while verify.publicKey is set');
  const { trustedComment } = verifySignature(keyFor(verify, signature), signature, { blake2b512: staged.rawBlake2b512 });
  return { signedVersion: signedVersion(trustedComment) };
}
