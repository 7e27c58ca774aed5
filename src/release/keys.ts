/**
 * Keys for `overseer release`: the password from a prompt-free source (MINISIGN_PASSWORD or a
 * password file), the secret key file, signing the manifest as it is on disk, and writing a new
 * key pair (`overseer release keygen`).
 */
import { open, readFile, rm } from 'node:fs/promises';
import { basename } from 'node:path';
import { OverseerError } from '../errors.js';
import { parseManifest } from '../manifest/document.js';
import { generateMinisignKeyPair, readSecretKey, signMinisign, type KdfLimits, type MinisignSecretKey } from '../manifest/sign.js';
import { verifySignature, parseSignature } from '../upgrade/minisign.js';
import { SIGNATURE_SUFFIX, writeFileAtomic } from './manifest-file.js';

export const PASSWORD_ENV = 'MINISIGN_PASSWORD';

/** The password: the first line of `passwordFile` when given, else $MINISIGN_PASSWORD, else undefined. */
export async function readPassword(passwordFile: string | undefined, env: NodeJS.ProcessEnv = process.env): Promise<string | undefined> {
  if (passwordFile !== undefined) {
    let text: string;
    try {
      text = await readFile(passwordFile, 'utf8');
    } catch (error) {
      throw new OverseerError('ERR_OVERSEER_INVALID_CONFIG', `--password-file ${passwordFile} cannot be read (${(error as NodeJS.ErrnoException).code ?? String(error)})`, {
        subject: 'release',
        cause: error,
      });
    }
    // As a terminal prompt reads it: up to the end of the first line.
    const line = text.split(/\r?\n/)[0] ?? '';
    if (line === '') throw new OverseerError('ERR_OVERSEER_INVALID_CONFIG', `--password-file ${passwordFile} is empty; put the password on its first line`, { subject: 'release' });
    return line;
  }
  const value = env[PASSWORD_ENV];
  return value === undefined || value === '' ? undefined : value;
}

/** Reads and opens the secret key file at `path`. */
export async function loadSecretKey(path: string, password: string | undefined): Promise<MinisignSecretKey> {
  let text: string;
  try {
    const handle = await open(path, 'r');
    try {
      // A secret key file is about 300 bytes; do not read a huge file given by mistake.
      const { size } = await handle.stat();
      if (size > 64 * 1024) throw new OverseerError('ERR_OVERSEER_SECRET_KEY_INVALID', `${path} is ${size} bytes, not a minisign secret key file`, { subject: path });
      text = await handle.readFile('utf8');
    } finally {
      await handle.close();
    }
  } catch (error) {
    if (error instanceof OverseerError) throw error;
    throw new OverseerError('ERR_OVERSEER_SECRET_KEY_INVALID', `the secret key ${path} cannot be read (${(error as NodeJS.ErrnoException).code ?? String(error)})`, {
      subject: path,
      cause: error,
    });
  }
  return readSecretKey(text, { password, source: `the secret key ${path}` });
}

export interface SignedManifest {
  readonly signaturePath: string;
  readonly keyId: string;
  readonly trustedComment: string;
}

/**
 * Signs the manifest at `manifestPath` as it is on disk and writes `<manifest>.minisig` beside it
 * (atomically). Refuses a manifest that does not parse: nothing unreadable gets signed.
 */
export async function signManifestFile(manifestPath: string, key: MinisignSecretKey, trustedComment?: string): Promise<SignedManifest> {
  const bytes = await readFile(manifestPath);
  const manifest = parseManifest(bytes.toString('utf8'), manifestPath);
  const name = basename(manifestPath);
  const comment = trustedComment ?? `timestamp:${Math.floor(Date.now() / 1000)}\tfile:${name}\tsequence:${manifest.sequence}\thashed`;
  const text = signMinisign(key, bytes, { fileName: name, trustedComment: comment });
  // As minisign -S does: check the signature with the public key before writing it.
  verifySignature(key.publicKey, parseSignature(text, `${manifestPath}${SIGNATURE_SUFFIX}`), { bytes });
  const signaturePath = `${manifestPath}${SIGNATURE_SUFFIX}`;
  await writeFileAtomic(signaturePath, text);
  return { signaturePath, keyId: key.keyId, trustedComment: comment };
}

/**
 * Writes a new key pair: the public key (mode 0644) and the secret key (mode 0600, encrypted
 * unless `password` is undefined). Refuses to overwrite either file unless `force`.
 */
export async function writeKeyPair(options: {
  publicKeyPath: string;
  secretKeyPath: string;
  password: string | undefined;
  force: boolean;
  comment?: string;
  kdf?: KdfLimits;
}): Promise<{ keyId: string; encrypted: boolean }> {
  const pair = await generateMinisignKeyPair({
    password: options.password,
    ...(options.comment === undefined ? {} : { comment: options.comment }),
    ...(options.kdf === undefined ? {} : { kdf: options.kdf }),
  });
  const flags = options.force ? 'w' : 'wx';
  const written: string[] = [];
  try {
    for (const [path, text, mode] of [
      [options.secretKeyPath, pair.secretKeyFile, 0o600],
      [options.publicKeyPath, pair.publicKeyFile, 0o644],
    ] as const) {
      let handle;
      try {
        handle = await open(path, flags, mode);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'EEXIST') {
          throw new OverseerError('ERR_OVERSEER_INVALID_CONFIG', `${path} already exists; keygen does not overwrite a key (pass --force if you mean to replace it)`, {
            subject: 'release',
          });
        }
        throw error;
      }
      try {
        // open() applies the mode only to a new file; an overwritten secret key must not stay readable.
        await handle.chmod(mode);
        await handle.writeFile(text, 'utf8');
        await handle.sync();
      } finally {
        await handle.close();
      }
      written.push(path);
    }
  } catch (error) {
    if (!options.force) for (const path of written) await rm(path, { force: true });
    throw error;
  }
  return { keyId: pair.keyId, encrypted: options.password !== undefined };
}
