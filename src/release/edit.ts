/**
 * The changes `overseer release` makes to a manifest, as pure functions: add or update a release,
 * set a rollout percentage, pull or unpull a version. Each returns the new manifest (sequence and
 * expires are set when it is written) and one line saying what changed. Bad input throws with the
 * value named: ERR_OVERSEER_INVALID_CONFIG for a malformed flag value (a usage mistake),
 * ERR_OVERSEER_RELEASE_REFUSED for an edit the manifest does not allow.
 */
import semverValid from 'semver/functions/valid.js';
import semverCompare from 'semver/functions/compare.js';
import { OverseerError } from '../errors.js';
import { isChannelName, type Manifest, type ManifestChannel, type ManifestRelease } from '../manifest/document.js';

export interface Edit {
  readonly manifest: Manifest;
  /** What changed, for the command's output. */
  readonly change: string;
}

export interface ReleaseEntry {
  readonly channel: string;
  readonly version: string;
  readonly path: string;
  readonly size: number;
  readonly sha256: string;
  /** Default: kept for an existing entry, 100 for a new one. */
  readonly rollout?: number | undefined;
  /** Replace the bytes of a version already in the channel (only before any instance took it). */
  readonly replace?: boolean;
}

const usage = (message: string, subject: string): OverseerError => new OverseerError('ERR_OVERSEER_INVALID_CONFIG', message, { subject });
const refuse = (message: string, subject: string): OverseerError => new OverseerError('ERR_OVERSEER_RELEASE_REFUSED', message, { subject });

/** Checks a version flag: a semver version exactly as the manifest stores it. */
export function checkVersion(version: string): string {
  if (semverValid(version) === version) return version;
  const cleaned = semverValid(version.trim().replace(/^[vV=]/, ''));
  throw usage(
    `version ${JSON.stringify(version)} is not a semver version such as "1.4.0"${cleaned !== null && cleaned !== version ? ` (did you mean ${cleaned}?)` : ''}`,
    'release',
  );
}

/** Checks a channel flag. */
export function checkChannel(channel: string): string {
  if (isChannelName(channel)) return channel;
  throw usage(
    `channel ${JSON.stringify(channel)} is not a channel name: lower-case letters, digits, ".", "_" and "-", at most 64, starting with a letter or digit (such as stable or beta)`,
    'release',
  );
}

/** Reads a percentage: 0 to 100, decimals allowed, an optional "%". */
export function parsePercent(text: string): number {
  const trimmed = text.trim().replace(/\s*%$/, '');
  const value = /^\d+(?:\.\d+)?$/.test(trimmed) ? Number(trimmed) : Number.NaN;
  if (!Number.isFinite(value) || value < 0 || value > 100) {
    throw usage(`rollout ${JSON.stringify(text)} is not a percentage from 0 to 100 (such as 10, 50 or 100)`, 'release');
  }
  return value;
}

/** Adds `entry` to its channel, or updates the entry of the same version. */
export function putRelease(manifest: Manifest, entry: ReleaseEntry): Edit {
  const channels = copyChannels(manifest);
  const releases = [...(channels[entry.channel]?.releases ?? [])];
  const index = releases.findIndex((release) => release.version === entry.version);
  const existing = releases[index];
  let change: string;
  if (existing === undefined) {
    releases.push({ version: entry.version, path: entry.path, size: entry.size, sha256: entry.sha256, rollout: entry.rollout ?? 100, pulled: false });
    releases.sort((a, b) => semverCompare(a.version, b.version));
    change = `added ${entry.version} to channel ${entry.channel}: ${entry.path} (${entry.size} bytes, sha256 ${entry.sha256.slice(0, 12)}…), rollout ${entry.rollout ?? 100} %`;
  } else {
    const sameBytes = existing.sha256 === entry.sha256 && existing.size === entry.size;
    if (!sameBytes && entry.replace !== true) {
      throw refuse(
        `version ${entry.version} is already in channel ${entry.channel} with other bytes (${existing.path}, ${existing.size} bytes, sha256 ` +
          `${existing.sha256.slice(0, 12)}…; the new file is ${entry.size} bytes, sha256 ${entry.sha256.slice(0, 12)}…): instances that took ` +
          `${entry.version} would never see the new bytes. Publish it as a new version, or pass --replace if no instance has taken it yet`,
        entry.version,
      );
    }
    const rollout = entry.rollout ?? existing.rollout;
    releases[index] = { ...existing, path: entry.path, size: entry.size, sha256: entry.sha256, rollout };
    change = sameBytes
      ? `${entry.version} in channel ${entry.channel} is unchanged (same bytes)${rollout === existing.rollout ? '' : `; rollout ${existing.rollout} % → ${rollout} %`}`
      : `replaced the bytes of ${entry.version} in channel ${entry.channel}: ${entry.path} (${entry.size} bytes, sha256 ${entry.sha256.slice(0, 12)}…)`;
  }
  channels[entry.channel] = { releases };
  return { manifest: { ...manifest, channels }, change };
}

/** Sets the rollout percentage of `version` (in `channel`, or in the one channel that has it). */
export function setRollout(manifest: Manifest, version: string, percent: number, channel: string | undefined): Edit {
  const name = channelsWith(manifest, version, channel, 'rollout')[0] as string;
  return updateRelease(manifest, name, version, (release) => {
    const note = release.pulled ? ` (${version} is pulled: instances take it only once it is unpulled)` : '';
    return { release: { ...release, rollout: percent }, change: `${version} in channel ${name}: rollout ${release.rollout} % → ${percent} %${note}` };
  });
}

/**
 * Marks `version` pulled (or not) in `channel`, or in every channel that has it: a bad build is
 * bad wherever it was published.
 */
export function setPulled(manifest: Manifest, version: string, pulled: boolean, channel: string | undefined): Edit {
  let result: Edit = { manifest, change: '' };
  const changes: string[] = [];
  for (const name of channelsWith(manifest, version, channel, pulled ? 'pull' : 'unpull')) {
    result = updateRelease(result.manifest, name, version, (release) => ({
      release: { ...release, pulled },
      change:
        release.pulled === pulled
          ? `${version} in channel ${name} was already ${pulled ? 'pulled' : 'not pulled'}`
          : pulled
            ? `pulled ${version} in channel ${name}: instances running it go back to the newest release they may take`
            : `unpulled ${version} in channel ${name} (rollout ${release.rollout} %)`,
    }));
    changes.push(result.change);
  }
  return { manifest: result.manifest, change: changes.join('\n') };
}

function channelsWith(manifest: Manifest, version: string, channel: string | undefined, command: string): string[] {
  checkVersion(version);
  const names = Object.keys(manifest.channels);
  if (channel !== undefined) {
    if (!names.includes(channel)) {
      throw refuse(`the manifest has no channel ${channel}; it has ${names.length > 0 ? names.join(', ') : 'none'}`, channel);
    }
    if (!hasVersion(manifest.channels[channel], version)) {
      throw refuse(`channel ${channel} has no release ${version}; it has ${describeVersions(manifest.channels[channel])}`, version);
    }
    return [channel];
  }
  const holding = names.filter((name) => hasVersion(manifest.channels[name], version));
  if (holding.length === 0) {
    const offered = names.map((name) => `${name}: ${describeVersions(manifest.channels[name])}`).join('; ');
    throw refuse(`no channel of the manifest has release ${version} (${offered || 'it has no channels'})`, version);
  }
  if (holding.length > 1 && command === 'rollout') {
    throw usage(`${version} is in channels ${holding.join(', ')}; say which with --channel`, 'release');
  }
  return holding;
}

function updateRelease(
  manifest: Manifest,
  channel: string,
  version: string,
  update: (release: ManifestRelease) => { release: ManifestRelease; change: string },
): Edit {
  const channels = copyChannels(manifest);
  const releases = [...(channels[channel]?.releases ?? [])];
  const index = releases.findIndex((release) => release.version === version);
  const { release, change } = update(releases[index] as ManifestRelease);
  releases[index] = release;
  channels[channel] = { releases };
  return { manifest: { ...manifest, channels }, change };
}

function copyChannels(manifest: Manifest): Record<string, ManifestChannel> {
  return Object.assign(Object.create(null) as Record<string, ManifestChannel>, manifest.channels);
}

function hasVersion(channel: ManifestChannel | undefined, version: string): boolean {
  return channel !== undefined && channel.releases.some((release) => release.version === version);
}

function describeVersions(channel: ManifestChannel | undefined): string {
  const versions = channel?.releases.map((release) => release.version) ?? [];
  return versions.length > 0 ? versions.join(', ') : 'no releases';
}
