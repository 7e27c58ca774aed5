/**
 * The release manifest: one signed JSON document that names, per channel, the releases on offer
 * (version, artifact path relative to the manifest, size, sha256, rollout percentage, pulled),
 * with a monotonic `sequence` and an `expires` time (freeze and rollback protection, after TUF).
 *
 * The parser faces attackers (the bytes come from a release source; the signature is checked on
 * the same bytes, but a key can leak and a signer can err): it refuses anything it does not know,
 * names the field at fault, and never lets a path leave the manifest's location.
 * The publisher (`overseer release`) and the instance share this module.
 */
import { createHash } from 'node:crypto';
import semverCompare from 'semver/functions/compare.js';
import semverValid from 'semver/functions/valid.js';
import { OverseerError, type ErrorCode } from '../errors.js';

export const MANIFEST_SCHEMA = 'overseer-manifest/1';
/** A manifest is small: one line per release. More than this is not a manifest. */
export const MAX_MANIFEST_BYTES = 1024 * 1024;
/** Releases kept per channel; a publisher prunes old ones. */
export const MAX_RELEASES_PER_CHANNEL = 1000;
export const MAX_CHANNELS = 100;
export const MAX_PATH_LENGTH = 1024;
export const DEFAULT_CHANNEL = 'stable';

export interface ManifestRelease {
  /** A semver version, unique within its channel. */
  readonly version: string;
  /** Where the artifact is, relative to the manifest's location ('/'-separated, no '..'). */
  readonly path: string;
  /** Bytes as published. A longer body is cut at this size. */
  readonly size: number;
  /** sha256 of the bytes as published, 64 lower-case hex digits. */
  readonly sha256: string;
  /** Percentage of instances (by bucket) that may take it, 0..100. Default 100. */
  readonly rollout: number;
  /** Withdrawn: instances running it go back to the newest release they may take. */
  readonly pulled: boolean;
}

export interface ManifestChannel {
  readonly releases: readonly ManifestRelease[];
}

export interface Manifest {
  readonly schema: typeof MANIFEST_SCHEMA;
  /** Integer ≥ 1, raised by every publish; an instance refuses a lower one than it accepted. */
  readonly sequence: number;
  /** ISO-8601 UTC time after which the manifest is refused (a frozen mirror cannot hold an instance back forever). */
  readonly expires: string;
  /** Channel name → its releases. A null-prototype record: no inherited names. */
  readonly channels: Readonly<Record<string, ManifestChannel>>;
}

const CHANNEL_NAME = /^[a-z0-9][a-z0-9._-]{0,63}$/;
// Per path segment: no scheme (':'), no percent-escapes, no query or fragment, no backslash.
const PATH_SEGMENT = /^[A-Za-z0-9._~+@=,-]+$/;
const SHA256 = /^[0-9a-fA-F]{64}$/;
const ISO_UTC = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,3}))?Z$/;
const TOP_KEYS = ['schema', 'sequence', 'expires', 'channels'] as const;
const CHANNEL_KEYS = ['releases'] as const;
const RELEASE_KEYS = ['version', 'path', 'size', 'sha256', 'rollout', 'pulled'] as const;

/** Says whether a channel name is one a manifest may hold (lower-case letters, digits, . _ -). */
export function isChannelName(name: string): boolean {
  return CHANNEL_NAME.test(name);
}

/**
 * Parses and checks a manifest's text. `source` (its URL, key or path) names it in errors.
 * Throws OverseerError: ERR_OVERSEER_MANIFEST_INVALID (not JSON, a missing, unknown or wrong
 * field), ERR_OVERSEER_MANIFEST_SCHEMA (a schema this overseer does not know),
 * ERR_OVERSEER_MANIFEST_UNSAFE_PATH (an artifact path that could leave the manifest's location).
 * The message names the field, such as `channels.stable.releases[1].sha256`.
 */
export function parseManifest(text: string, source: string): Manifest {
  if (typeof text !== 'string') throw fault('ERR_OVERSEER_MANIFEST_INVALID', source, '(the document)', `must be text, received ${typeof text}`);
  if (Buffer.byteLength(text, 'utf8') > MAX_MANIFEST_BYTES) {
    throw fault('ERR_OVERSEER_MANIFEST_INVALID', source, '(the document)', `is larger than ${MAX_MANIFEST_BYTES} bytes; prune old releases`);
  }
  let data: unknown;
  try {
    data = JSON.parse(text.replace(/^\uFEFF/, ''));
  } catch (error) {
    throw fault('ERR_OVERSEER_MANIFEST_INVALID', source, '(the document)', `is not JSON (${(error as Error).message})`);
  }
  const top = object(data, source, '(the document)');
  if (!('schema' in top)) throw fault('ERR_OVERSEER_MANIFEST_INVALID', source, 'schema', `is missing; a manifest starts with "schema": "${MANIFEST_SCHEMA}"`);
  if (top['schema'] !== MANIFEST_SCHEMA) {
    throw fault(
      'ERR_OVERSEER_MANIFEST_SCHEMA',
      source,
      'schema',
      `is ${preview(top['schema'])}, a schema this overseer does not read (it reads "${MANIFEST_SCHEMA}"); upgrade overseer on the instances first, or publish with the schema they read`,
    );
  }
  onlyKeys(top, TOP_KEYS, source, '');
  const sequence = top['sequence'];
  if (typeof sequence !== 'number' || !Number.isSafeInteger(sequence) || sequence < 1) {
    throw fault('ERR_OVERSEER_MANIFEST_INVALID', source, 'sequence', `is ${preview(sequence)}; it must be an integer ≥ 1, raised by every publish`);
  }
  const expires = top['expires'];
  if (typeof expires !== 'string' || parseUtc(expires) === undefined) {
    throw fault('ERR_OVERSEER_MANIFEST_INVALID', source, 'expires', `is ${preview(expires)}; it must be an ISO-8601 UTC time such as "2026-12-31T00:00:00Z"`);
  }
  const channelsValue = object(top['channels'], source, 'channels');
  const names = Object.keys(channelsValue);
  if (names.length > MAX_CHANNELS) throw fault('ERR_OVERSEER_MANIFEST_INVALID', source, 'channels', `has ${names.length} channels, more than ${MAX_CHANNELS}`);
  const channels: Record<string, ManifestChannel> = Object.create(null) as Record<string, ManifestChannel>;
  for (const name of names) {
    if (!isChannelName(name)) {
      throw fault('ERR_OVERSEER_MANIFEST_INVALID', source, `channels[${JSON.stringify(name)}]`, 'is not a channel name (lower-case letters, digits, ".", "_" and "-", at most 64, starting with a letter or digit)');
    }
    channels[name] = parseChannel(channelsValue[name], source, `channels.${name}`);
  }
  return Object.freeze({ schema: MANIFEST_SCHEMA, sequence, expires, channels: Object.freeze(channels) });
}

function parseChannel(value: unknown, source: string, field: string): ManifestChannel {
  const channel = object(value, source, field);
  onlyKeys(channel, CHANNEL_KEYS, source, field);
  const list = channel['releases'];
  if (!Array.isArray(list)) throw fault('ERR_OVERSEER_MANIFEST_INVALID', source, `${field}.releases`, `is ${preview(list)}; it must be an array of releases`);
  if (list.length > MAX_RELEASES_PER_CHANNEL) {
    throw fault('ERR_OVERSEER_MANIFEST_INVALID', source, `${field}.releases`, `holds ${list.length} releases, more than ${MAX_RELEASES_PER_CHANNEL}; prune old ones`);
  }
  const seen = new Set<string>();
  const releases = list.map((item: unknown, index) => {
    const release = parseRelease(item, source, `${field}.releases[${index}]`);
    if (seen.has(release.version)) {
      throw fault('ERR_OVERSEER_MANIFEST_INVALID', source, `${field}.releases[${index}].version`, `repeats ${release.version}; a version appears once per channel`);
    }
    seen.add(release.version);
    return release;
  });
  return Object.freeze({ releases: Object.freeze(releases) });
}

function parseRelease(value: unknown, source: string, field: string): ManifestRelease {
  const item = object(value, source, field);
  onlyKeys(item, RELEASE_KEYS, source, field);
  const version = item['version'];
  if (typeof version !== 'string' || version.length > 256 || semverValid(version) !== version) {
    throw fault('ERR_OVERSEER_MANIFEST_INVALID', source, `${field}.version`, `is ${preview(version)}; it must be a semver version such as "1.4.0" (no "v")`);
  }
  const path = item['path'];
  if (typeof path !== 'string') throw fault('ERR_OVERSEER_MANIFEST_INVALID', source, `${field}.path`, `is ${preview(path)}; it must be a path relative to the manifest`);
  const unsafe = unsafePath(path);
  if (unsafe !== undefined) {
    throw fault('ERR_OVERSEER_MANIFEST_UNSAFE_PATH', source, `${field}.path`, `is ${preview(path)}: ${unsafe}; artifact paths stay at or below the manifest's location`);
  }
  const size = item['size'];
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 1) {
    throw fault('ERR_OVERSEER_MANIFEST_INVALID', source, `${field}.size`, `is ${preview(size)}; it must be the artifact's byte count, an integer ≥ 1`);
  }
  const sha256 = item['sha256'];
  if (typeof sha256 !== 'string' || !SHA256.test(sha256)) {
    throw fault('ERR_OVERSEER_MANIFEST_INVALID', source, `${field}.sha256`, `is ${preview(sha256)}; it must be 64 hex digits`);
  }
  const rollout = item['rollout'] ?? 100;
  if (typeof rollout !== 'number' || !Number.isFinite(rollout) || rollout < 0 || rollout > 100) {
    throw fault('ERR_OVERSEER_MANIFEST_INVALID', source, `${field}.rollout`, `is ${preview(item['rollout'])}; it must be a percentage from 0 to 100`);
  }
  const pulled = item['pulled'] ?? false;
  if (typeof pulled !== 'boolean') throw fault('ERR_OVERSEER_MANIFEST_INVALID', source, `${field}.pulled`, `is ${preview(item['pulled'])}; it must be true or false`);
  return Object.freeze({ version, path, size, sha256: sha256.toLowerCase(), rollout, pulled });
}

/** Why a relative artifact path is unsafe, or undefined when it is safe. */
export function unsafePath(path: string): string | undefined {
  if (path === '') return 'it is empty';
  if (path.length > MAX_PATH_LENGTH) return `it is longer than ${MAX_PATH_LENGTH} characters`;
  if (path.includes('\\')) return 'it holds a backslash';
  if (path.startsWith('/')) return 'it is absolute';
  if (/^[A-Za-z][A-Za-z0-9+.-]*:/.test(path)) return 'it has a scheme';
  for (const segment of path.split('/')) {
    if (segment === '') return 'it has an empty segment';
    if (segment === '.' || segment === '..') return `it has a "${segment}" segment`;
    if (!PATH_SEGMENT.test(segment)) return `segment ${JSON.stringify(segment)} holds a character other than letters, digits and . _ ~ + @ = , -`;
  }
  return undefined;
}

/** The time an `expires` value names (ms since the epoch), or undefined when it is not a real ISO-8601 UTC time. */
export function parseUtc(text: string): number | undefined {
  const match = ISO_UTC.exec(text);
  if (match === null) return undefined;
  const time = Date.parse(text);
  if (!Number.isFinite(time)) return undefined;
  // Date.parse rolls 2026-02-30 over to March: refuse what does not come back the same.
  const back = new Date(time);
  const [, year, month, day, hour, minute, second] = match.map(Number);
  if (back.getUTCFullYear() !== year || back.getUTCMonth() + 1 !== month || back.getUTCDate() !== day) return undefined;
  if (back.getUTCHours() !== hour || back.getUTCMinutes() !== minute || back.getUTCSeconds() !== second) return undefined;
  return time;
}

/** The manifest as JSON: keys in a fixed order, 2-space indentation, a trailing newline; defaults written out. */
export function serializeManifest(manifest: Manifest): string {
  const channels: Record<string, unknown> = {};
  for (const name of Object.keys(manifest.channels).sort()) {
    channels[name] = {
      releases: manifest.channels[name]!.releases.map((release) => ({
        version: release.version,
        path: release.path,
        size: release.size,
        sha256: release.sha256,
        rollout: release.rollout,
        pulled: release.pulled,
      })),
    };
  }
  return `${JSON.stringify({ schema: MANIFEST_SCHEMA, sequence: manifest.sequence, expires: manifest.expires, channels }, null, 2)}\n`;
}

/**
 * The instance's bucket for a release, in [0, 100): the first 4 bytes of
 * sha256(`${instanceId}\0${version}`) scaled to 100. An instance takes a release when its bucket
 * is below the release's rollout, so raising the rollout only adds instances. Each version
 * draws its own buckets, so the first 10 % are not the same machines every time.
 */
export function bucketOf(instanceId: string, version: string): number {
  const digest = createHash('sha256').update(`${instanceId}\0${version}`, 'utf8').digest();
  return (digest.readUInt32BE(0) / 2 ** 32) * 100;
}

export interface ChooseOptions {
  readonly channel: string;
  readonly instanceId: string;
  /** The version this instance runs, when known. */
  readonly currentVersion: string | undefined;
  /** Told otherwise: take the newest release offered even when it is lower (a switch to a channel that is behind). @default false */
  readonly allowDowngrade?: boolean | undefined;
}

export interface ReleaseChoice {
  /**
   * 'upgrade': take `release` (newer than the current one, or the current one is unknown);
   * 'pull-back': the current version is pulled, take `release` even though it is lower;
   * 'downgrade': take `release`, lower than the current one, because ChooseOptions.allowDowngrade says so;
   * 'stay': keep running (`release` is undefined, or the current one).
   */
  readonly action: 'upgrade' | 'pull-back' | 'downgrade' | 'stay';
  /** The release this instance should run, when the manifest offers it one. */
  readonly release: ManifestRelease | undefined;
  /** The newest release of the channel that is not pulled, and this instance's bucket for it. */
  readonly newest: { readonly version: string; readonly rollout: number; readonly bucket: number } | undefined;
  /** One line for `overseer ctl status` and events: why this instance has or has not taken the release. */
  readonly reason: string;
}

/**
 * What this instance should run, by the manifest: the newest release that is not pulled and
 * whose rollout covers the instance's bucket. A pulled current version is the one sanctioned
 * downgrade (to the newest release it may take, lower or not); otherwise nothing lower than the
 * current version is chosen (a channel switch waits for a newer release).
 * Throws ERR_OVERSEER_MANIFEST_NO_CHANNEL when the manifest has no such channel.
 */
export function chooseRelease(manifest: Manifest, options: ChooseOptions): ReleaseChoice {
  const channel = Object.hasOwn(manifest.channels, options.channel) ? manifest.channels[options.channel] : undefined;
  if (channel === undefined) {
    const known = Object.keys(manifest.channels);
    throw new OverseerError(
      'ERR_OVERSEER_MANIFEST_NO_CHANNEL',
      `the manifest (sequence ${manifest.sequence}) has no entry channels.${options.channel}; it offers ${known.length > 0 ? known.join(', ') : 'no channel'}; set the instance's channel to one of them or publish to ${options.channel}`,
      { subject: `channels.${options.channel}` },
    );
  }
  const byNewest = channel.releases.filter((release) => !release.pulled).sort((a, b) => semverCompare(b.version, a.version));
  const top = byNewest[0];
  const newest = top === undefined ? undefined : { version: top.version, rollout: top.rollout, bucket: bucketOf(options.instanceId, top.version) };
  const eligible = byNewest.find((release) => bucketOf(options.instanceId, release.version) < release.rollout);
  const current = options.currentVersion === undefined ? undefined : semverValid(options.currentVersion) ?? undefined;
  const currentPulled = current !== undefined && channel.releases.some((release) => release.pulled && release.version === current);
  const waiting =
    newest !== undefined && eligible !== top
      ? `; ${newest.version} is rolled out to ${newest.rollout} % and this instance's bucket is ${newest.bucket.toFixed(2)}, so it waits`
      : '';
  const stay = (reason: string): ReleaseChoice => ({ action: 'stay', release: eligible !== undefined && current === eligible.version ? eligible : undefined, newest, reason });
  if (eligible === undefined) {
    return stay(
      `${currentPulled ? `running ${current}, which is pulled, but` : ''}${currentPulled ? ' ' : ''}channel ${options.channel} offers this instance no release${waiting}${currentPulled ? '; it keeps serving' : ''}`,
    );
  }
  if (currentPulled) {
    const lower = semverCompare(eligible.version, current!) < 0;
    return { action: lower ? 'pull-back' : 'upgrade', release: eligible, newest, reason: `${current} is pulled: going to ${eligible.version}${lower ? ' (the sanctioned downgrade)' : ''}${waiting}` };
  }
  if (current === undefined) return { action: 'upgrade', release: eligible, newest, reason: `taking ${eligible.version} from channel ${options.channel}${waiting}` };
  const order = semverCompare(eligible.version, current);
  if (order > 0) return { action: 'upgrade', release: eligible, newest, reason: `taking ${eligible.version} (running ${current})${waiting}` };
  if (order === 0) return stay(`running ${current}, the newest release channel ${options.channel} offers this instance${waiting}`);
  if (options.allowDowngrade === true) {
    return { action: 'downgrade', release: eligible, newest, reason: `going down from ${current} to ${eligible.version}, the newest channel ${options.channel} offers this instance (allowDowngrade)${waiting}` };
  }
  return stay(`running ${current}, newer than ${eligible.version}, the newest channel ${options.channel} offers this instance: it waits for a newer one${waiting}`);
}

function object(value: unknown, source: string, field: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw fault('ERR_OVERSEER_MANIFEST_INVALID', source, field, `is ${preview(value)}; it must be an object`);
  }
  return value as Record<string, unknown>;
}

function onlyKeys(value: Record<string, unknown>, allowed: readonly string[], source: string, field: string): void {
  for (const key of Object.keys(value)) {
    if (!allowed.includes(key)) {
      // A typo ("rolout") must not silently mean the default (100 %).
      throw fault(
        'ERR_OVERSEER_MANIFEST_INVALID',
        source,
        field === '' ? key : `${field}.${key}`,
        `is not a field of ${MANIFEST_SCHEMA} (known here: ${allowed.join(', ')})`,
      );
    }
  }
  for (const key of allowed) {
    if (key === 'rollout' || key === 'pulled') continue;
    if (!(key in value)) throw fault('ERR_OVERSEER_MANIFEST_INVALID', source, field === '' ? key : `${field}.${key}`, 'is missing');
  }
}

function fault(code: ErrorCode, source: string, field: string, problem: string): OverseerError {
  return new OverseerError(code, `the manifest ${source}: ${field} ${problem}`, { subject: field });
}

function preview(value: unknown): string {
  if (value === undefined) return 'missing';
  let text: string;
  try {
    text = JSON.stringify(value) ?? String(value);
  } catch {
    text = String(value);
  }
  return text.length > 60 ? `${text.slice(0, 60)}…` : text;
}

/**
 * Freeze and rollback protection: refuses a manifest past its `expires` time
 * (ERR_OVERSEER_MANIFEST_EXPIRED) or with a lower `sequence` than the last one accepted
 * (ERR_OVERSEER_MANIFEST_ROLLBACK). The same sequence again is the same publish, polled again.
 */
export function assertFresh(manifest: Manifest, options: { readonly now: number; readonly lastSequence: number | undefined; readonly source: string }): void {
  const expires = parseUtc(manifest.expires)!;
  if (options.now > expires) {
    throw new OverseerError(
      'ERR_OVERSEER_MANIFEST_EXPIRED',
      `the manifest ${options.source} (sequence ${manifest.sequence}) expired at ${manifest.expires}; the source is stale or frozen: publish a fresh one (\`overseer release create\` sets a new expires) and sign it`,
      { subject: 'expires' },
    );
  }
  if (options.lastSequence !== undefined && manifest.sequence < options.lastSequence) {
    throw new OverseerError(
      'ERR_OVERSEER_MANIFEST_ROLLBACK',
      `the manifest ${options.source} has sequence ${manifest.sequence}, lower than ${options.lastSequence}, the last one this instance accepted: an old manifest replayed (or a mirror behind); publish with a higher sequence`,
      { subject: 'sequence' },
    );
  }
}
