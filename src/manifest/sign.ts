/**
 * The signing half of minisign, with node:crypto only (verification is src/upgrade/minisign.ts):
 * reads a secret key file as `minisign -G` writes it, encrypted (scrypt, as libsodium's
 * crypto_pwhash_scryptsalsa208sha256 runs it, XOR, BLAKE2b-256 checksum) or not (`-W`), signs a
 * file prehashed ("ED", BLAKE2b-512) as `minisign -S` does by default, and makes key pairs that
 * the minisign tool reads.
 */
import { createHash, createPrivateKey, createPublicKey, generateKeyPair, randomBytes, scrypt, sign, type KeyObject } from 'node:crypto';
import { promisify } from 'node:util';
import { basename } from 'node:path';
import { OverseerError } from '../errors.js';
import { parsePublicKey, PREHASH_ALGORITHM, type MinisignPublicKey } from '../upgrade/minisign.js';
import { blake2b } from './blake2b.js';

export interface MinisignSecretKey {
  /** Key id as minisign prints it: 16 upper-case hex digits. */
  readonly keyId: string;
  /** The matching public key, ready for verifySignature. */
  readonly publicKey: MinisignPublicKey;
  /** The public key's base64 line, as `minisign -P` takes it. */
  readonly publicKeyLine: string;
  /** Whether the file was encrypted with a password. */
  readonly encrypted: boolean;
  readonly privateKey: KeyObject;
  readonly keyIdBytes: Buffer;
}

/** scrypt cost as minisign stores it: libsodium's opslimit and memlimit. */
export interface KdfLimits {
  readonly opslimit: number;
  readonly memlimit: number;
}

/** What `minisign -G` uses (libsodium's *_SENSITIVE): scrypt N=2^20, r=8, p=1, 1 GiB for a few seconds. */
export const KDF_SENSITIVE: KdfLimits = Object.freeze({ opslimit: 33554432, memlimit: 1073741824 });
/** libsodium's *_INTERACTIVE (N=2^14, 16 MiB): minisign reads such keys too; for tests and throwaway keys. */
export const KDF_INTERACTIVE: KdfLimits = Object.freeze({ opslimit: 524288, memlimit: 16777216 });

export interface SignOptions {
  /** The file name the default trusted comment names (minisign writes the basename of -m). */
  readonly fileName: string;
  /** Default: minisign's own, `timestamp:<seconds>\tfile:<name>\thashed`. */
  readonly trustedComment?: string;
  /** Default: minisign's own, `signature from minisign secret key`. */
  readonly untrustedComment?: string;
  /** The time in the default trusted comment. */
  readonly now?: Date;
}

export interface GeneratedKeyPair {
  readonly keyId: string;
  /** The `.pub` file, as `minisign -G` writes it. */
  readonly publicKeyFile: string;
  /** The secret key file, as `minisign -G` (or `-G -W` without a password) writes it. */
  readonly secretKeyFile: string;
}

const SIG_ALG = 'Ed';
const KDF_SCRYPT = 'Sc';
const KDF_NONE = '\0\0';
const CHK_ALG = 'B2';
const SALT_BYTES = 32;
const KEY_ID_BYTES = 8;
const SECRET_KEY_BYTES = 64;
const CHECKSUM_BYTES = 32;
// sig_alg, kdf_alg, chk_alg, salt, opslimit, memlimit, then the (maybe encrypted) keynum_sk.
const KEYNUM_SK_OFFSET = 2 + 2 + 2 + SALT_BYTES + 8 + 8;
const KEYNUM_SK_BYTES = KEY_ID_BYTES + SECRET_KEY_BYTES + CHECKSUM_BYTES;
const SECRET_KEY_FILE_BYTES = KEYNUM_SK_OFFSET + KEYNUM_SK_BYTES;
const PUBLIC_KEY_FILE_BYTES = 2 + KEY_ID_BYTES + 32;
// A key file asking for more than twice what minisign ever writes is corrupt or hostile: refuse
// it rather than let it take gigabytes or minutes.
const MAX_SCRYPT_MEMORY = 2 * 1024 * 1024 * 1024;
const MAX_SCRYPT_WORK = 2 ** 21;
// minisign refuses trusted comments of 8192 bytes and more, prefix included.
const MAX_TRUSTED_COMMENT_BYTES = 8192 - 'trusted comment: '.length - 1;
const PKCS8_ED25519_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const PASSWORD_HINT = 'give its password in the MINISIGN_PASSWORD environment variable or with --password-file';

/**
 * Reads a minisign secret key file (its text). `source` names it in errors (a path). An encrypted
 * key needs `password`. Throws ERR_OVERSEER_SECRET_KEY_INVALID saying what is wrong.
 */
export async function readSecretKey(text: string, options: { password?: string | undefined; source?: string } = {}): Promise<MinisignSecretKey> {
  const source = options.source ?? 'the secret key';
  const fail = (problem: string): never => {
    throw new OverseerError('ERR_OVERSEER_SECRET_KEY_INVALID', `${source} ${problem}`, { subject: source });
  };
  const lines = text
    .replace(/^\uFEFF/, '')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '');
  if (lines.some((line) => line.startsWith('trusted comment:'))) return fail('is a .minisig signature, not a secret key; give the file `minisign -G -s` wrote');
  const keyLines = lines.filter((line) => !line.startsWith('untrusted comment:'));
  if (keyLines.length !== 1) {
    return fail(`has ${keyLines.length} key lines where one was expected; a minisign secret key file is an "untrusted comment:" line and one base64 line`);
  }
  const line = keyLines[0] as string;
  if (!BASE64.test(line)) return fail('is not a minisign key: its key line is not base64');
  const bytes = Buffer.from(line, 'base64');
  if (bytes.length === PUBLIC_KEY_FILE_BYTES) return fail('is a minisign public key; signing needs the secret key (the file `minisign -G -s` wrote)');
  if (bytes.length !== SECRET_KEY_FILE_BYTES) return fail(`decodes to ${bytes.length} bytes, not the ${SECRET_KEY_FILE_BYTES} of a minisign secret key`);
  const sigAlg = bytes.toString('latin1', 0, 2);
  const kdfAlg = bytes.toString('latin1', 2, 4);
  const chkAlg = bytes.toString('latin1', 4, 6);
  if (sigAlg !== SIG_ALG) return fail(`uses signature algorithm ${JSON.stringify(sigAlg)}, not "Ed" (Ed25519)`);
  if (chkAlg !== CHK_ALG) return fail(`uses checksum ${JSON.stringify(chkAlg)}, not "B2" (BLAKE2b-256)`);
  if (kdfAlg !== KDF_SCRYPT && kdfAlg !== KDF_NONE) return fail(`uses key derivation ${JSON.stringify(kdfAlg)}, not "Sc" (scrypt) or none`);
  const encrypted = kdfAlg === KDF_SCRYPT;
  const keynumSk = Buffer.from(bytes.subarray(KEYNUM_SK_OFFSET));
  if (encrypted) {
    const password = options.password;
    if (password === undefined || password === '') return fail(`is encrypted with a password; ${PASSWORD_HINT}`);
    const salt = bytes.subarray(6, 6 + SALT_BYTES);
    const limits = { opslimit: readLimit(bytes, 6 + SALT_BYTES), memlimit: readLimit(bytes, 6 + SALT_BYTES + 8) };
    const params = scryptParams(limits);
    if (params.N * params.r * 128 > MAX_SCRYPT_MEMORY || params.N * params.p > MAX_SCRYPT_WORK) {
      return fail(
        `asks scrypt for N=${params.N}, r=${params.r}, p=${params.p} (opslimit ${limits.opslimit}, memlimit ${limits.memlimit}), ` +
          'far more than minisign writes; the file is corrupt or not from minisign',
      );
    }
    const stream = await deriveStream(password, salt, limits);
    for (let i = 0; i < KEYNUM_SK_BYTES; i += 1) keynumSk[i] = (keynumSk[i] as number) ^ (stream[i] as number);
  }
  const keyIdBytes = keynumSk.subarray(0, KEY_ID_BYTES);
  const secret = keynumSk.subarray(KEY_ID_BYTES, KEY_ID_BYTES + SECRET_KEY_BYTES);
  const checksum = keynumSk.subarray(KEY_ID_BYTES + SECRET_KEY_BYTES);
  const expected = secretKeyChecksum(keyIdBytes, secret);
  // minisign -G -W leaves the checksum of an unencrypted key zero; an encrypted key always has one.
  const checksumOk = expected.equals(checksum) || (!encrypted && checksum.every((byte) => byte === 0));
  if (!checksumOk) {
    return fail(
      encrypted
        ? `does not open with this password (its checksum does not match after decryption): wrong password; ${PASSWORD_HINT}`
        : 'is corrupt: its checksum does not match its key',
    );
  }
  // libsodium's 64-byte secret key is the seed and the public key: they must belong together.
  const privateKey = createPrivateKey({ key: Buffer.concat([PKCS8_ED25519_PREFIX, secret.subarray(0, 32)]), format: 'der', type: 'pkcs8' });
  const derived = Buffer.from(createPublicKey(privateKey).export({ format: 'jwk' }).x ?? '', 'base64url');
  if (!derived.equals(secret.subarray(32))) {
    return fail(encrypted ? `does not open with this password (wrong password); ${PASSWORD_HINT}` : 'is corrupt: its Ed25519 seed and public key do not belong together');
  }
  const publicKeyLine = Buffer.concat([Buffer.from(SIG_ALG, 'latin1'), keyIdBytes, derived]).toString('base64');
  const publicKey = parsePublicKey(publicKeyLine, source);
  return Object.freeze({ keyId: publicKey.keyId, publicKey, publicKeyLine, encrypted, privateKey, keyIdBytes: Buffer.from(keyIdBytes) });
}

/** Signs `data` as `minisign -S` does (prehashed, "ED") and returns the whole `.minisig` text. */
export function signMinisign(key: MinisignSecretKey, data: Uint8Array, options: SignOptions): string {
  const trustedComment =
    options.trustedComment ?? `timestamp:${Math.floor((options.now ?? new Date()).getTime() / 1000)}\tfile:${basename(options.fileName)}\thashed`;
  const untrustedComment = options.untrustedComment ?? 'signature from minisign secret key';
  for (const [name, comment] of [['trusted comment', trustedComment], ['untrusted comment', untrustedComment]] as const) {
    if (/[\r\n]/.test(comment)) throw new TypeError(`signMinisign: the ${name} must be one line, received ${JSON.stringify(comment)}`);
  }
  if (Buffer.byteLength(trustedComment) > MAX_TRUSTED_COMMENT_BYTES) {
    throw new TypeError(`signMinisign: the trusted comment is ${Buffer.byteLength(trustedComment)} bytes; minisign takes at most ${MAX_TRUSTED_COMMENT_BYTES}`);
  }
  const signature = sign(null, createHash(PREHASH_ALGORITHM).update(data).digest(), key.privateKey);
  const globalSignature = sign(null, Buffer.concat([signature, Buffer.from(trustedComment, 'utf8')]), key.privateKey);
  const signatureLine = Buffer.concat([Buffer.from('ED', 'latin1'), key.keyIdBytes, signature]).toString('base64');
  return `untrusted comment: ${untrustedComment}\n${signatureLine}\ntrusted comment: ${trustedComment}\n${globalSignature.toString('base64')}\n`;
}

/**
 * Makes a key pair in minisign's formats: encrypted with `password` (scrypt at `kdf`, minisign's
 * own cost by default), or unencrypted (as `minisign -G -W`) when no password is given.
 */
export async function generateMinisignKeyPair(options: { password?: string | undefined; comment?: string; kdf?: KdfLimits } = {}): Promise<GeneratedKeyPair> {
  const { privateKey, publicKey } = await promisify(generateKeyPair)('ed25519');
  const seed = Buffer.from(privateKey.export({ format: 'jwk' }).d ?? '', 'base64url');
  const pk = Buffer.from(publicKey.export({ format: 'jwk' }).x ?? '', 'base64url');
  const keyIdBytes = randomBytes(KEY_ID_BYTES);
  const secret = Buffer.concat([seed, pk]);
  const keynumSk = Buffer.concat([keyIdBytes, secret, secretKeyChecksum(keyIdBytes, secret)]);
  const password = options.password === '' ? undefined : options.password;
  const header = Buffer.alloc(KEYNUM_SK_OFFSET);
  header.write(SIG_ALG, 0, 'latin1');
  header.write(password === undefined ? KDF_NONE : KDF_SCRYPT, 2, 'latin1');
  header.write(CHK_ALG, 4, 'latin1');
  if (password !== undefined) {
    const limits = options.kdf ?? KDF_SENSITIVE;
    const salt = randomBytes(SALT_BYTES);
    salt.copy(header, 6);
    header.writeBigUInt64LE(BigInt(limits.opslimit), 6 + SALT_BYTES);
    header.writeBigUInt64LE(BigInt(limits.memlimit), 6 + SALT_BYTES + 8);
    const stream = await deriveStream(password, salt, limits);
    for (let i = 0; i < KEYNUM_SK_BYTES; i += 1) keynumSk[i] = (keynumSk[i] as number) ^ (stream[i] as number);
  }
  const keyId = Buffer.from(keyIdBytes).reverse().toString('hex').toUpperCase();
  const publicKeyLine = Buffer.concat([Buffer.from(SIG_ALG, 'latin1'), keyIdBytes, pk]).toString('base64');
  const comment = options.comment ?? 'minisign encrypted secret key';
  if (/[\r\n]/.test(comment)) throw new TypeError(`generateMinisignKeyPair: the comment must be one line, received ${JSON.stringify(comment)}`);
  return Object.freeze({
    keyId,
    publicKeyFile: `untrusted comment: minisign public key ${keyId}\n${publicKeyLine}\n`,
    secretKeyFile: `untrusted comment: ${comment}\n${Buffer.concat([header, keynumSk]).toString('base64')}\n`,
  });
}

/** libsodium's pickparams: how crypto_pwhash_scryptsalsa208sha256 turns opslimit and memlimit into scrypt's N, r, p. */
export function scryptParams({ opslimit, memlimit }: KdfLimits): { N: number; r: number; p: number } {
  const ops = Math.max(opslimit, 32768);
  const r = 8;
  let log2N = 1;
  if (ops < memlimit / 32) {
    const maxN = Math.floor(ops / (r * 4));
    while (log2N < 63 && 2 ** log2N <= maxN / 2) log2N += 1;
    return { N: 2 ** log2N, r, p: 1 };
  }
  const maxN = Math.floor(memlimit / (r * 128));
  while (log2N < 63 && 2 ** log2N <= maxN / 2) log2N += 1;
  const maxrp = Math.min(Math.floor(Math.floor(ops / 4) / 2 ** log2N), 0x3fffffff);
  return { N: 2 ** log2N, r, p: Math.max(1, Math.floor(maxrp / r)) };
}

function deriveStream(password: string, salt: Buffer, limits: KdfLimits): Promise<Buffer> {
  const { N, r, p } = scryptParams(limits);
  // OpenSSL's own count of what scrypt needs, plus room: Node refuses to start above maxmem.
  const maxmem = 128 * r * (N + p + 2) + 1024 * 1024;
  return new Promise((resolve, reject) => {
    scrypt(Buffer.from(password, 'utf8'), salt, KEYNUM_SK_BYTES, { N, r, p, maxmem }, (error, key) => (error ? reject(error) : resolve(key)));
  });
}

function secretKeyChecksum(keyIdBytes: Uint8Array, secret: Uint8Array): Buffer {
  return blake2b(Buffer.concat([Buffer.from(SIG_ALG, 'latin1'), keyIdBytes, secret]), CHECKSUM_BYTES);
}

function readLimit(bytes: Buffer, offset: number): number {
  const value = bytes.readBigUInt64LE(offset);
  return value > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(value);
}
