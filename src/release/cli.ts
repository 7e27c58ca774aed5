/**
 * `overseer release`: the publisher's side of a release manifest. Writes the manifest (create,
 * rollout, pull, unpull), signs it with a minisign secret key (sign, or --key on any write), checks
 * it as an instance would (verify), prints it (show) and makes key pairs (keygen). Uploading stays
 * with the tools people already use. Usage mistakes throw ERR_OVERSEER_INVALID_CONFIG with subject
 * "release" (the command exits 2); other failures throw their own code (exit 1).
 */
import { readFile } from 'node:fs/promises';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import semverCompare from 'semver/functions/compare.js';
import { OverseerError } from '../errors.js';
import { DEFAULT_CHANNEL, parseUtc, type Manifest } from '../manifest/document.js';
import { closest } from '../options.js';
import { describeFlagError } from '../cli/parse-flags.js';
import { parsePublicKey, type MinisignPublicKey } from '../upgrade/minisign.js';
import { describeArtifact } from './artifact.js';
import { checkChannel, checkVersion, parsePercent, putRelease, setPulled, setRollout, type Edit } from './edit.js';
import { DEFAULT_EXPIRES, parseExpires } from './expires.js';
import { loadSecretKey, PASSWORD_ENV, readPassword, signManifestFile, writeKeyPair } from './keys.js';
import { emptyManifest, readManifestFile, requireManifestFile, SIGNATURE_SUFFIX, withManifestLock, writeManifestFile } from './manifest-file.js';
import { verifyManifest } from './verify.js';
import { parseS3Url, publishToS3 } from './publish-s3.js';

export const RELEASE_USAGE = `usage: overseer release create  --manifest M --version V [--channel C] [--rollout P] ARTIFACT
       overseer release rollout --manifest M VERSION PERCENT [--channel C]
       overseer release pull    --manifest M VERSION [--channel C]
       overseer release unpull  --manifest M VERSION [--channel C]
       overseer release renew   --manifest M [--expires 30d]
       overseer release sign    --manifest M --key SECRET_KEY
       overseer release verify  --manifest M --public-key KEY [--public-key KEY2]
       overseer release show    --manifest M
       overseer release publish --manifest M --s3 s3://BUCKET/PREFIX [--public-key KEY]
       overseer release keygen  --public-key FILE --secret-key FILE [--unencrypted] [--force]

Writes and signs a release manifest (docs/releases.md): per channel, the releases on offer with
their size, sha256, rollout percentage and pulled state. Uploading the folder stays with your
tools (aws s3 cp, gh release upload, rsync).

Every write (create, rollout, pull, unpull, renew) raises "sequence", sets "expires", replaces the
manifest whole (a temporary file, then a rename) and removes the old M${SIGNATURE_SUFFIX}, which no
longer matches; --key signs the new manifest in the same step.

options:
  -m, --manifest FILE      the manifest (create makes it when it does not exist)
  --channel NAME           the channel (create: default ${DEFAULT_CHANNEL}; rollout, pull, unpull: the
                           channels that have the version)
  --version V              create: the release's semver version
  --rollout PERCENT        create: share of instances that may take it, 0 to 100 (default 100 for a
                           new release, else unchanged)
  --replace                create: give an existing version new bytes (only if no instance took it)
  --expires 30d|ISO        when instances stop trusting this manifest: a duration (30d, 12h, 2w)
                           or a time (2026-12-31, 2026-12-31T12:00:00Z); default ${DEFAULT_EXPIRES}
  -k, --key FILE           the minisign secret key (encrypted, or unencrypted as minisign -G -W
                           writes it); on a write, also sign
  --password-file FILE     the key's password on the first line (default: $${PASSWORD_ENV})
  --trusted-comment TEXT   sign: the signed comment (default timestamp, file and sequence)
  --public-key KEY|FILE    verify: a trusted public key, the base64 line or a .pub file; repeat it
                           during a key rotation. keygen: where to write the public key
  --secret-key FILE        keygen: where to write the secret key (mode 0600)
  --unencrypted            keygen: no password (for a CI secret store; default: encrypted with
                           the password from --password-file or $${PASSWORD_ENV})
  --force                  keygen: overwrite existing key files
  --signature FILE         verify: the signature (default M${SIGNATURE_SUFFIX})
  --s3 s3://BUCKET/PREFIX  publish: upload the artifacts, then M${SIGNATURE_SUFFIX}, then M (credentials and
                           region from the AWS SDK's usual sources: AWS_* variables, profile, role)
  --endpoint URL           publish: an S3-compatible endpoint (MinIO, R2, ...)
  --force-path-style       publish: path-style bucket URLs (most S3-compatible stores)
  -h, --help               this text

verify exits 1 when an instance would refuse the manifest or an artifact.`;

const SUBCOMMANDS = ['create', 'rollout', 'pull', 'unpull', 'renew', 'sign', 'verify', 'show', 'keygen', 'publish'] as const;
type Subcommand = (typeof SUBCOMMANDS)[number];

type Options = NonNullable<ParseArgsConfig['options']>;
const MANIFEST = { manifest: { type: 'string', short: 'm' } } as const satisfies Options;
const SIGNING = { key: { type: 'string', short: 'k' }, 'password-file': { type: 'string' } } as const satisfies Options;
const WRITE = { ...MANIFEST, ...SIGNING, channel: { type: 'string' }, expires: { type: 'string' } } as const satisfies Options;
const HELP = { help: { type: 'boolean', short: 'h' } } as const satisfies Options;

const FLAGS: Record<Subcommand, Options> = {
  create: { ...WRITE, version: { type: 'string' }, rollout: { type: 'string' }, replace: { type: 'boolean' }, ...HELP },
  rollout: { ...WRITE, ...HELP },
  pull: { ...WRITE, ...HELP },
  unpull: { ...WRITE, ...HELP },
  renew: { ...MANIFEST, ...SIGNING, expires: { type: 'string' }, ...HELP },
  sign: { ...MANIFEST, ...SIGNING, 'trusted-comment': { type: 'string' }, ...HELP },
  verify: { ...MANIFEST, 'public-key': { type: 'string', multiple: true }, signature: { type: 'string' }, ...HELP },
  show: { ...MANIFEST, ...HELP },
  publish: {
    ...MANIFEST,
    s3: { type: 'string' },
    endpoint: { type: 'string' },
    region: { type: 'string' },
    'force-path-style': { type: 'boolean' },
    'public-key': { type: 'string', multiple: true },
    ...HELP,
  },
  keygen: {
    'public-key': { type: 'string' },
    'secret-key': { type: 'string' },
    'password-file': { type: 'string' },
    unencrypted: { type: 'boolean' },
    force: { type: 'boolean' },
    comment: { type: 'string' },
    ...HELP,
  },
};

type Values = Record<string, string | boolean | string[] | undefined>;

const usage = (message: string): OverseerError => new OverseerError('ERR_OVERSEER_INVALID_CONFIG', message, { subject: 'release' });

/**
 * Runs `overseer release` with the arguments after `release`. Resolves to the exit code (0, or 1
 * when verify found problems); throws on a usage mistake or a failure.
 */
export async function runRelease(argv: readonly string[], out: NodeJS.WritableStream = process.stdout, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '-h' || name === '--help' || name === 'help') {
    out.write(`${RELEASE_USAGE}\n`);
    return 0;
  }
  if (!(SUBCOMMANDS as readonly string[]).includes(name)) {
    const hint = closest(name, SUBCOMMANDS);
    throw usage(`unknown release command ${JSON.stringify(name)}${hint === undefined ? '' : ` (did you mean ${hint}?)`}; the commands are ${SUBCOMMANDS.join(', ')}`);
  }
  const subcommand = name as Subcommand;
  const options = FLAGS[subcommand];
  let parsed;
  try {
    parsed = parseArgs({ args: [...rest], options, allowPositionals: true, strict: true });
  } catch (error) {
    throw usage(`release ${subcommand}: ${describeFlagError(error, options)}`);
  }
  const values = parsed.values as Values;
  const positionals = parsed.positionals;
  if (values['help'] === true) {
    out.write(`${RELEASE_USAGE}\n`);
    return 0;
  }
  const string = (flag: string): string | undefined => values[flag] as string | undefined;
  const required = (flag: string, example: string): string => {
    const value = string(flag);
    if (value === undefined || value === '') throw usage(`release ${subcommand} needs --${flag} (${example})`);
    return value;
  };
  const positional = (count: number, names: string): void => {
    if (positionals.length !== count) {
      throw usage(
        `release ${subcommand} takes ${names}${positionals.length > count ? `; got also ${positionals.slice(count).map((each) => JSON.stringify(each)).join(' ')}` : ''}`,
      );
    }
  };
  const channelFlag = (): string | undefined => (string('channel') === undefined ? undefined : checkChannel(string('channel') as string));

  switch (subcommand) {
    case 'create': {
      const manifestPath = required('manifest', '--manifest dist/manifest.json');
      const version = checkVersion(required('version', '--version 1.4.0'));
      positional(1, 'one ARTIFACT, the file to publish (inside the manifest\'s folder)');
      const channel = channelFlag() ?? DEFAULT_CHANNEL;
      const rollout = string('rollout') === undefined ? undefined : parsePercent(string('rollout') as string);
      const expires = parseExpires(string('expires') ?? DEFAULT_EXPIRES);
      const password = await passwordFor(values, env);
      const facts = await describeArtifact(manifestPath, positionals[0] as string);
      return write(out, manifestPath, expires, values, password, async () => {
        const current = (await readManifestFile(manifestPath))?.manifest ?? emptyManifest(expires);
        return putRelease(current, { channel, version, ...facts, rollout, replace: values['replace'] === true });
      });
    }
    case 'rollout': {
      const manifestPath = required('manifest', '--manifest dist/manifest.json');
      positional(2, 'VERSION PERCENT, as in `overseer release rollout --manifest M 1.4.0 50`');
      const version = checkVersion(positionals[0] as string);
      const percent = parsePercent(positionals[1] as string);
      const expires = parseExpires(string('expires') ?? DEFAULT_EXPIRES);
      const password = await passwordFor(values, env);
      const channel = channelFlag();
      return write(out, manifestPath, expires, values, password, async () => setRollout((await requireManifestFile(manifestPath)).manifest, version, percent, channel));
    }
    case 'pull':
    case 'unpull': {
      const manifestPath = required('manifest', '--manifest dist/manifest.json');
      positional(1, `one VERSION, as in \`overseer release ${subcommand} --manifest M 1.4.0\``);
      const version = checkVersion(positionals[0] as string);
      const expires = parseExpires(string('expires') ?? DEFAULT_EXPIRES);
      const password = await passwordFor(values, env);
      const channel = channelFlag();
      return write(out, manifestPath, expires, values, password, async () => setPulled((await requireManifestFile(manifestPath)).manifest, version, subcommand === 'pull', channel));
    }
    case 'renew': {
      // Nothing changes but sequence and expires: what a scheduled job runs so a quiet channel never expires.
      const manifestPath = required('manifest', '--manifest dist/manifest.json');
      positional(0, 'no positional arguments');
      const expires = parseExpires(string('expires') ?? DEFAULT_EXPIRES);
      const password = await passwordFor(values, env);
      return write(out, manifestPath, expires, values, password, async () => {
        const { manifest } = await requireManifestFile(manifestPath);
        return { manifest, change: `renewed (was sequence ${manifest.sequence}, expires ${manifest.expires})` };
      });
    }
    case 'sign': {
      const manifestPath = required('manifest', '--manifest dist/manifest.json');
      const keyPath = required('key', '--key ~/.minisign/overseer.key');
      positional(0, 'no positional arguments');
      const password = await passwordFor(values, env);
      await requireManifestFile(manifestPath);
      const key = await loadSecretKey(keyPath, password);
      const signed = await signManifestFile(manifestPath, key, string('trusted-comment'));
      out.write(`signed ${manifestPath} with key ${signed.keyId}: ${signed.signaturePath}\n`);
      return 0;
    }
    case 'verify': {
      const manifestPath = required('manifest', '--manifest dist/manifest.json');
      positional(0, 'no positional arguments');
      const keys = (values['public-key'] as string[] | undefined) ?? [];
      if (keys.length === 0) throw usage('release verify needs --public-key (the base64 line or the .pub file; repeat it to trust several keys)');
      const publicKeys = await Promise.all(keys.map((each) => readPublicKey(each)));
      await requireManifestFile(manifestPath).catch((error: unknown) => {
        // verify reports a manifest that does not parse as a problem; only a missing file stops it here.
        if (error instanceof OverseerError && error.code === 'ERR_OVERSEER_RELEASE_REFUSED') throw error;
      });
      const report = await verifyManifest({ manifestPath, publicKeys, signaturePath: string('signature') });
      for (const line of report.ok) out.write(`ok       ${line}\n`);
      for (const line of report.warnings) out.write(`warning  ${line}\n`);
      for (const line of report.problems) out.write(`PROBLEM  ${line}\n`);
      out.write(
        report.problems.length === 0
          ? `${manifestPath}: instances will accept it\n`
          : `${manifestPath}: instances would refuse it (${report.problems.length} problem${report.problems.length === 1 ? '' : 's'})\n`,
      );
      return report.problems.length === 0 ? 0 : 1;
    }
    case 'show': {
      const manifestPath = required('manifest', '--manifest dist/manifest.json');
      positional(0, 'no positional arguments');
      const { manifest } = await requireManifestFile(manifestPath);
      out.write(describeManifest(manifestPath, manifest));
      return 0;
    }
    case 'publish': {
      const manifestPath = required('manifest', '--manifest dist/manifest.json');
      const { bucket, prefix } = parseS3Url(required('s3', '--s3 s3://my-releases/app/'));
      positional(0, 'no positional arguments');
      const endpoint = string('endpoint');
      if (endpoint !== undefined && !/^https?:\/\/[^\s/]+/.test(endpoint)) throw usage(`--endpoint ${JSON.stringify(endpoint)} is not an http(s) URL`);
      const publicKeys = await Promise.all(((values['public-key'] as string[] | undefined) ?? []).map((each) => readPublicKey(each)));
      const lines = await publishToS3({
        manifestPath,
        target: { bucket, prefix, endpoint, region: string('region'), forcePathStyle: values['force-path-style'] === true },
        publicKeys,
      });
      out.write(`${lines.join('\n')}\n`);
      return 0;
    }
    case 'keygen': {
      const publicKeyPath = required('public-key', '--public-key overseer.pub');
      const secretKeyPath = required('secret-key', '--secret-key ~/.minisign/overseer.key');
      positional(0, 'no positional arguments');
      const password = await readPassword(string('password-file'), env);
      const unencrypted = values['unencrypted'] === true;
      if (unencrypted && password !== undefined) {
        throw usage(`release keygen: --unencrypted and a password (${string('password-file') === undefined ? `$${PASSWORD_ENV}` : '--password-file'}) contradict each other; drop one`);
      }
      if (!unencrypted && password === undefined) {
        throw usage(`release keygen needs a password to encrypt the secret key: put it in $${PASSWORD_ENV} or a --password-file, or pass --unencrypted for a key without one (keep such a key in a secret store)`);
      }
      const comment = string('comment');
      const result = await writeKeyPair({ publicKeyPath, secretKeyPath, password, force: values['force'] === true, ...(comment === undefined ? {} : { comment }) });
      out.write(
        `key ${result.keyId}: secret key ${secretKeyPath} (${result.encrypted ? 'encrypted with the password' : 'unencrypted'}, mode 0600), public key ${publicKeyPath}\n`,
      );
      return 0;
    }
  }
}

async function passwordFor(values: Values, env: NodeJS.ProcessEnv): Promise<string | undefined> {
  if (values['password-file'] !== undefined && values['key'] === undefined) {
    throw usage('--password-file is for the secret key; pass --key too');
  }
  return readPassword(values['password-file'] as string | undefined, env);
}

/**
 * One write: opens the key (before anything is written, so a wrong password leaves the manifest
 * as it was), then under the manifest's lock reads it, makes the edit, writes and signs it.
 */
async function write(
  out: NodeJS.WritableStream,
  manifestPath: string,
  expires: string,
  values: Values,
  password: string | undefined,
  makeEdit: () => Promise<Edit>,
): Promise<number> {
  const keyPath = values['key'] as string | undefined;
  const key = keyPath === undefined ? undefined : await loadSecretKey(keyPath, password);
  const { edit, written, signed } = await withManifestLock(manifestPath, async () => {
    const edit = await makeEdit();
    const written = await writeManifestFile(manifestPath, edit.manifest, expires);
    const signed = key === undefined ? undefined : await signManifestFile(manifestPath, key);
    return { edit, written, signed };
  });
  out.write(`${edit.change}\n${manifestPath}: sequence ${written.manifest.sequence}, expires ${written.manifest.expires}\n`);
  if (signed !== undefined) {
    out.write(`signed with key ${signed.keyId}: ${signed.signaturePath}\n`);
  } else {
    out.write(
      `${written.removedSignature ? `removed ${manifestPath}${SIGNATURE_SUFFIX}: it signed the previous manifest. ` : ''}` +
        `Not signed: sign it with \`overseer release sign --manifest ${manifestPath} --key SECRET_KEY\` (or pass --key) before you upload it\n`,
    );
  }
  return 0;
}

async function readPublicKey(value: string): Promise<MinisignPublicKey> {
  let text = value;
  const path = value.startsWith('@') ? value.slice(1) : value;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if (value.startsWith('@')) throw usage(`--public-key ${value}: ${path} cannot be read (${(error as NodeJS.ErrnoException).code ?? String(error)})`);
  }
  return parsePublicKey(text, `--public-key ${value}`);
}

/** The manifest as a table, for `show`. */
export function describeManifest(path: string, manifest: Manifest): string {
  const expires = parseUtc(manifest.expires) as number;
  const lines = [`${path}: ${manifest.schema}, sequence ${manifest.sequence}, expires ${manifest.expires}${expires <= Date.now() ? ' (EXPIRED)' : ''}`];
  for (const name of Object.keys(manifest.channels).sort()) {
    lines.push(`channel ${name}:`);
    const releases = [...(manifest.channels[name]?.releases ?? [])].sort((a, b) => semverCompare(b.version, a.version));
    if (releases.length === 0) lines.push('  (no releases)');
    for (const release of releases) {
      lines.push(`  ${release.version.padEnd(12)} ${(release.pulled ? 'pulled' : `${release.rollout} %`).padEnd(8)} ${release.path} (${release.size} bytes, sha256 ${release.sha256.slice(0, 12)}…)`);
    }
  }
  return `${lines.join('\n')}\n`;
}
