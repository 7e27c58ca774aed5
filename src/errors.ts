/**
 * The one error class of overseer. Callers match on `code`, never on the message.
 * Each code has one line in CODES saying when it is thrown; docs/errors.md mirrors the table.
 */

export const CODES = {
  ERR_OVERSEER_INVALID_CONFIG: 'run(), `overseer run` (its config file or flags), an app.json, a fetcher or the supervisor was given an option it cannot use',
  ERR_OVERSEER_UNSUPPORTED: 'the master (with `required: true`) or the supervisor cannot run on this platform',
  ERR_OVERSEER_ALREADY_RUNNING: 'run() was called a second time in the same process',
  ERR_OVERSEER_BAD_ADDRESS: 'an address could not be parsed or bound',
  ERR_OVERSEER_ADDRESS_IN_USE: 'another process already listens on an address',
  ERR_OVERSEER_NOT_A_CHILD: 'a child-only call was made outside a child',
  ERR_OVERSEER_CHILD_FAILED: 'a new child exited or its program threw before it was ready',
  ERR_OVERSEER_READY_TIMEOUT: 'a new child was not ready within readyTimeout',
  ERR_OVERSEER_SHUTTING_DOWN: 'a handoff or a deploy command was asked for, or a new child got ready, while the master or overseer deploy is shutting down',
  ERR_OVERSEER_FETCH_FAILED: 'a fetcher could not reach or read its source',
  ERR_OVERSEER_DOWNLOAD_FAILED: 'a release download broke off, stalled, outlived downloadTimeout or fell below minDownloadRate',
  ERR_OVERSEER_INSECURE_REDIRECT: 'a release source redirected from https: to http:, or to plain http: on another machine without allowInsecureHttp',
  ERR_OVERSEER_TOO_LARGE: 'a release is larger than the maximum bundle size',
  ERR_OVERSEER_CHECKSUM_MISMATCH: 'a release does not match the sha256 its source gave',
  ERR_OVERSEER_CHECKSUM_MISSING: 'verify.sha256 is "required" and the source gave none',
  ERR_OVERSEER_SIGNATURE_INVALID: 'a release signature is malformed or does not verify',
  ERR_OVERSEER_SIGNATURE_MISSING: 'verify.publicKey is set and the release has no signature',
  ERR_OVERSEER_CHECK_FAILED: 'a staged release did not answer the echo-token check',
  ERR_OVERSEER_UNSAFE_ARCHIVE: 'a release folder archive is corrupt or holds an entry it may not (absolute or .. path, path through a link, link leading outside, hard link, device, FIFO)',
  ERR_OVERSEER_DOWNGRADE: 'a release reports a lower version than the running one',
  ERR_OVERSEER_VERSION_UNTRUSTED: 'verify.publicKey is set and a release carries no version that can be trusted',
  ERR_OVERSEER_UPGRADE_CANCELLED: 'preUpgrade threw, cancelling the upgrade',
  ERR_OVERSEER_LOCKED: 'another process holds the bundle lock',
  ERR_OVERSEER_SWAP_FAILED: 'the staged release could not be moved into place',
  ERR_OVERSEER_ROLLED_BACK: 'a swapped-in release did not become ready, or failed its probation, and the previous one was restored',
  ERR_OVERSEER_PROBATION_FAILED: 'a new release failed its probation (it exited, answered 5xx, failed its health probe or reported itself unhealthy)',
  ERR_OVERSEER_UNKNOWN_PROCESS: 'a Supervisor call named an id that was never added, or was removed',
  ERR_OVERSEER_PROCESS_EXISTS: 'Supervisor.add() was given an id that is already in use',
  ERR_OVERSEER_PROCESS_RUNNING: 'supervise() or remove() named a process that is still supervised',
  ERR_OVERSEER_PROCESS_NOT_RUNNING: 'Supervisor.signal() named a process that has no live process group',
  ERR_OVERSEER_SPAWN_FAILED: 'a supervised command could not be started (the process is fatal)',
  ERR_OVERSEER_PROCESS_FAILED: 'a supervised process failed with no retries left (the process is fatal)',
  ERR_OVERSEER_MASTER_RUNNING: 'another `overseer run` master holds the same pid file or control socket',
  ERR_OVERSEER_CONTROL_FAILED: '`overseer ctl` could not reach the master, or the master refused the request',
  ERR_OVERSEER_RELEASE_INVALID: 'an `overseer deploy` release/ folder is empty, or its files and its SHA256SUMS do not list the same paths',
  ERR_OVERSEER_NO_ARCHIVE: 'an `overseer deploy` rollback found no earlier release in archive/',
  ERR_OVERSEER_UNKNOWN_COMMAND: 'a file in an `overseer deploy` command/ folder names no command (stop, start, release, rollback)',
  ERR_OVERSEER_DEPLOY_FAILED: 'an `overseer deploy` command or app folder hit an unexpected error outside overseer (a file system call failed; the message names it)',
  ERR_OVERSEER_UNSAFE_FOLDER: 'the release/, archive/ or command/ folder of an `overseer deploy` app is a symlink or not a folder, so it is not used',
  ERR_OVERSEER_MANIFEST_INVALID: 'a release manifest is not JSON, or a field is missing, unknown or of the wrong kind (the message names it)',
  ERR_OVERSEER_MANIFEST_SCHEMA: 'a release manifest names a schema this overseer does not read',
  ERR_OVERSEER_MANIFEST_UNSAFE_PATH: 'a release manifest names an artifact outside its own location (absolute, .., a scheme, a backslash, an empty segment)',
  ERR_OVERSEER_MANIFEST_NO_CHANNEL: "a release manifest has no entry for the instance's channel",
  ERR_OVERSEER_MANIFEST_EXPIRED: 'a release manifest is past its expires time (the running build keeps serving)',
  ERR_OVERSEER_MANIFEST_ROLLBACK: 'a release manifest has a lower sequence than the last one the instance accepted (a replayed manifest)',
  ERR_OVERSEER_SECRET_KEY_INVALID: 'a minisign secret key file is malformed, encrypted with no password given, or its password is wrong',
  ERR_OVERSEER_RELEASE_REFUSED: '`overseer release` refused a manifest edit or found a problem verifying one (an artifact outside the manifest\'s folder, a version or channel it does not have, an artifact whose size or sha256 differs)',
} as const;

export type ErrorCode = keyof typeof CODES;

export interface OverseerErrorDetails {
  readonly cause?: unknown;
  /** The option, address, path or value the error is about. */
  readonly subject?: string;
  readonly pid?: number;
  readonly exitCode?: number | null;
  readonly signal?: NodeJS.Signals | null;
}

export class OverseerError extends Error {
  override readonly name = 'OverseerError';
  readonly code: ErrorCode;
  // Declared, not defined: a detail that was not given is no own property, so an uncaught
  // error printed by Node (util.inspect) shows only what is set, never `pid: undefined`.
  declare readonly subject: string | undefined;
  declare readonly pid: number | undefined;
  declare readonly exitCode: number | null | undefined;
  declare readonly signal: NodeJS.Signals | null | undefined;

  constructor(code: ErrorCode, message: string, details: OverseerErrorDetails = {}) {
    // Plain: whoever prints the message adds `overseer: ` (the CLI's stderr, the log's own tag).
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.code = code;
    for (const key of ['subject', 'pid', 'exitCode', 'signal'] as const) {
      if (details[key] !== undefined) Object.defineProperty(this, key, { value: details[key], enumerable: true });
    }
  }
}

/** True for an OverseerError, optionally with one of the given codes. */
export function isOverseerError(error: unknown, ...codes: ErrorCode[]): error is OverseerError {
  return error instanceof OverseerError && (codes.length === 0 || codes.includes(error.code));
}

/** A short, single-line description of any thrown value, for events and logs. */
export function describeError(error: unknown): string {
  if (error instanceof Error) return error.message;
  return String(error);
}
