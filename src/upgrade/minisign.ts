/**
 * minisign signatures with node:crypto only: reads a public key (`verify.publicKey`) and a
 * `.minisig` file in minisign's own formats, and checks a release against them (Ed25519 over the
 * BLAKE2b-512 prehash, or over the whole file for legacy signatures, plus the global signature
 * that binds the trusted comment).
 */
import { createHash, createPublicKey, verify, type KeyObject } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { OverseerError } from '../errors.js';

/** The node:crypto hash name of minisign's prehash; feed it the release bytes as published. */
export const PREHASH_ALGORITHM = 'blake2b512';

export interface MinisignPublicKey {
  /** Key id as minisign prints it: 16 upper-case hex digits. */
  readonly keyId: string;
  readonly key: KeyObject;
}

export interface MinisignSignature {
  /** 'ED': signs the BLAKE2b-512 of the file (minisign's default); 'Ed': legacy, signs the whole file. */
  readonly algorithm: 'ED' | 'Ed';
  /** Key id as minisign prints it: 16 upper-case hex digits. */
  readonly keyId: string;
  /** The 64-byte Ed25519 signature of the message (or of its prehash). */
  readonly signature: Buffer;
  /** The text after "trusted comment: ", as signed. */
  readonly trustedComment: string;
  /** The 64-byte Ed25519 signature of `signature` followed by the trusted comment's bytes. */
  readonly globalSignature: Buffer;
  /** Where the signature came from (a URL or path), for error messages. */
  readonly source: string;
}

/** What was signed: its BLAKE2b-512 (enough for 'ED') or its bytes (needed for legacy 'Ed'). */
export type SignedMessage = { readonly blake2b512: Uint8Array } | { readonly bytes: Uint8Array };

export interface MinisignVerification {
  readonly keyId: string;
  readonly algorithm: 'ED' | 'Ed';
  /** The trusted comment, now known to come from the key holder. */
  readonly trustedComment: string;
}

/** Checks a release while it streams: constant memory for 'ED', the whole release kept for 'Ed'. */
export interface SignatureCheck {
  update(chunk: Uint8Array): void;
  /** Call once, after the last chunk. Throws ERR_OVERSEER_SIGNATURE_INVALID unless the bytes fed are what was signed. */
  verify(): MinisignVerification;
}

const PUBLIC_KEY_OPTION = 'verify.publicKey';
const UNTRUSTED_PREFIX = 'untrusted comment: ';
const TRUSTED_PREFIX = 'trusted comment: ';
const KEY_ID_BYTES = 8;
const PUBLIC_KEY_BYTES = 2 + KEY_ID_BYTES + 32;
const SIGNATURE_BYTES = 64;
const SIGNATURE_LINE_BYTES = 2 + KEY_ID_BYTES + SIGNATURE_BYTES;
// A minisign secret key file decodes to this many bytes; pasting one is a common slip.
const SECRET_KEY_BYTES = 158;
// minisign caps comments at 1024 and trusted comments at 8192 bytes: more is not a .minisig.
const MAX_SIGNATURE_CHARS = 16 * 1024;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const SECRET_KEY_PROBLEM = 'holds a minisign secret key; configure the public key (the .pub file) and keep the secret key out of your config';
const RESIGN_HINT = 'sign the release again with `minisign -S` and publish the new .minisig next to it';

/**
 * Reads a minisign public key: the base64 line alone (what `minisign -P` takes) or the whole
 * `.pub` file. Throws ERR_OVERSEER_INVALID_CONFIG naming `option`.
 */
export function parsePublicKey(text: string, option: string = PUBLIC_KEY_OPTION): MinisignPublicKey {
  const fail = (problem: string): never => {
    throw new OverseerError(
      'ERR_OVERSEER_INVALID_CONFIG',
      `${option} ${problem}; expected a minisign public key: the base64 line (as \`minisign -P\` takes it) ` +
        'or the whole .pub file written by `minisign -G`',
      { subject: option },
    );
  };
  if (typeof text !== 'string') return fail(`must be a string, received ${describeType(text)}`);
  const lines = splitLines(text)
    .map((line) => line.trim())
    .filter((line) => line !== '');
  const [first, second] = lines;
  if (first === undefined) return fail('is empty');
  let line = first;
  if (first.startsWith('untrusted comment:')) {
    if (/secret key/i.test(first)) {
      return fail(SECRET_KEY_PROBLEM);
    }
    if (second === undefined) return fail('has the "untrusted comment:" line but no key line after it');
    line = second;
  } else if (lines.length > 1) {
    return fail(`has ${lines.length} lines where one base64 line, or a comment line and a base64 line, were expected`);
  }
  const bytes = decodeBase64(line);
  if (bytes === undefined) {
    if (/\.pub$/i.test(line) || line.startsWith('../') || line.startsWith('~')) {
      return fail(`looks like a file path (${JSON.stringify(line)}); pass the key itself, for example fs.readFileSync(path, 'utf8')`);
    }
    return fail(`is not valid base64 (${describeBadBase64(line)})`);
  }
  if (bytes.length === SECRET_KEY_BYTES) {
    return fail(SECRET_KEY_PROBLEM);
  }
  if (bytes.length !== PUBLIC_KEY_BYTES) {
    return fail(`decodes to ${bytes.length} bytes, not ${PUBLIC_KEY_BYTES} (2-byte algorithm, 8-byte key id, 32-byte Ed25519 key)`);
  }
  const algorithm = bytes.toString('latin1', 0, 2);
  if (algorithm !== 'Ed') return fail(`uses algorithm ${JSON.stringify(algorithm)}, not "Ed" (Ed25519)`);
  const keyId = formatKeyId(bytes.subarray(2, 2 + KEY_ID_BYTES));
  let key: KeyObject;
  try {
    key = createPublicKey({
      key: { kty: 'OKP', crv: 'Ed25519', x: bytes.subarray(2 + KEY_ID_BYTES).toString('base64url') },
      format: 'jwk',
    });
  } catch (error) {
    throw new OverseerError('ERR_OVERSEER_INVALID_CONFIG', `${option} (key id ${keyId}) is not a usable Ed25519 public key`, {
      subject: option,
      cause: error,
    });
  }
  return Object.freeze({ keyId, key });
}

/**
 * Reads a `.minisig` file (LF or CRLF line endings). `source` names it in errors and becomes
 * their `subject`: the signature's URL or path, or a phrase such as "the signature of <release>".
 * Throws ERR_OVERSEER_SIGNATURE_INVALID saying which line is wrong and how.
 */
export function parseSignature(text: string, source = 'the .minisig file'): MinisignSignature {
  const fail = (problem: string): never => {
    throw new OverseerError(
      'ERR_OVERSEER_SIGNATURE_INVALID',
      `${source}: ${problem}; a .minisig file has 4 lines: "untrusted comment: ...", the base64 signature, ` +
        `"trusted comment: ...", the base64 comment signature. Publish the file exactly as \`minisign -S\` wrote it`,
      { subject: source },
    );
  };
  if (typeof text !== 'string') return fail(`must be text, received ${describeType(text)}`);
  if (text.length > MAX_SIGNATURE_CHARS) {
    return fail(`is ${text.length} characters long, far more than a .minisig file (is it the right URL or file?)`);
  }
  const lines = splitLines(text);
  while (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  const [untrusted, signatureLine, trusted, globalLine] = lines;
  if (untrusted === undefined || untrusted.trim() === '') return fail('is empty');
  if (!untrusted.startsWith(UNTRUSTED_PREFIX)) {
    return fail(`line 1 does not start with ${JSON.stringify(UNTRUSTED_PREFIX)} (it starts ${preview(untrusted)})`);
  }
  if (signatureLine === undefined) return fail('ends after line 1 (the signature line is missing)');
  const signatureBytes = decodeBase64(signatureLine.trim());
  if (signatureBytes === undefined) return fail(`line 2 is not valid base64 (${describeBadBase64(signatureLine.trim())})`);
  if (signatureBytes.length !== SIGNATURE_LINE_BYTES) {
    return fail(
      `line 2 decodes to ${signatureBytes.length} bytes, not ${SIGNATURE_LINE_BYTES} (2-byte algorithm, 8-byte key id, 64-byte signature)`,
    );
  }
  const algorithm = signatureBytes.toString('latin1', 0, 2);
  if (algorithm !== 'ED' && algorithm !== 'Ed') {
    return fail(`line 2 uses algorithm ${JSON.stringify(algorithm)}, not "ED" (prehashed) or "Ed" (legacy)`);
  }
  if (trusted === undefined) return fail('ends after line 2 (the trusted comment line is missing)');
  if (!trusted.startsWith(TRUSTED_PREFIX)) {
    return fail(`line 3 does not start with ${JSON.stringify(TRUSTED_PREFIX)} (it starts ${preview(trusted)})`);
  }
  if (globalLine === undefined) return fail('ends after line 3 (the comment signature line is missing)');
  const globalSignature = decodeBase64(globalLine.trim());
  if (globalSignature === undefined) return fail(`line 4 is not valid base64 (${describeBadBase64(globalLine.trim())})`);
  if (globalSignature.length !== SIGNATURE_BYTES) {
    return fail(`line 4 decodes to ${globalSignature.length} bytes, not ${SIGNATURE_BYTES} (an Ed25519 signature)`);
  }
  return Object.freeze({
    algorithm,
    keyId: formatKeyId(signatureBytes.subarray(2, 2 + KEY_ID_BYTES)),
    signature: signatureBytes.subarray(2 + KEY_ID_BYTES),
    trustedComment: trusted.slice(TRUSTED_PREFIX.length),
    globalSignature,
    source,
  });
}

/**
 * Verifies as `minisign -V` does: key id, the signature of the message (of its BLAKE2b-512 for
 * 'ED', of its bytes for legacy 'Ed'), then the global signature of the trusted comment.
 * Throws ERR_OVERSEER_SIGNATURE_INVALID naming what failed.
 */
export function verifySignature(
  publicKey: MinisignPublicKey,
  signature: MinisignSignature,
  message: SignedMessage,
): MinisignVerification {
  assertKeyId(publicKey, signature);
  let signed: Uint8Array;
  if (signature.algorithm === 'ED') {
    signed = 'blake2b512' in message ? message.blake2b512 : createHash(PREHASH_ALGORITHM).update(message.bytes).digest();
    if (signed.length !== 64) {
      throw new TypeError(`verifySignature: blake2b512 must be the 64-byte digest, received ${signed.length} bytes`);
    }
  } else if ('bytes' in message) {
    signed = message.bytes;
  } else {
    throw new OverseerError(
      'ERR_OVERSEER_SIGNATURE_INVALID',
      `${signature.source} is a legacy minisign signature (algorithm "Ed", made with \`minisign -S -l\` or a ` +
        'minisign older than 0.10) and needs the whole release, which is not available here; sign the release with ' +
        'a current minisign and without -l, which signs its BLAKE2b-512 ("ED") by default',
      { subject: signature.source },
    );
  }
  return finishVerification(publicKey, signature, signed);
}

/**
 * Starts checking a release that will be fed chunk by chunk (the bytes as published). Checks
 * the key id at once, so a release signed with another key is refused before it is downloaded.
 */
export function createSignatureCheck(publicKey: MinisignPublicKey, signature: MinisignSignature): SignatureCheck {
  assertKeyId(publicKey, signature);
  if (signature.algorithm === 'ED') {
    const hash = createHash(PREHASH_ALGORITHM);
    return {
      update: (chunk) => void hash.update(chunk),
      verify: () => finishVerification(publicKey, signature, hash.digest()),
    };
  }
  const chunks: Uint8Array[] = [];
  return {
    update: (chunk) => void chunks.push(Buffer.from(chunk)),
    verify: () => finishVerification(publicKey, signature, Buffer.concat(chunks)),
  };
}

/** Verifies a file on disk that holds the release exactly as published (any algorithm). */
export async function verifyFileSignature(
  publicKey: MinisignPublicKey,
  signature: MinisignSignature,
  path: string,
): Promise<MinisignVerification> {
  const check = createSignatureCheck(publicKey, signature);
  for await (const chunk of createReadStream(path)) check.update(chunk as Buffer);
  return check.verify();
}

function assertKeyId(publicKey: MinisignPublicKey, signature: MinisignSignature): void {
  if (signature.keyId === publicKey.keyId) return;
  throw new OverseerError(
    'ERR_OVERSEER_SIGNATURE_INVALID',
    `the key id in ${signature.source} is ${signature.keyId} but the key id in ${PUBLIC_KEY_OPTION} is ` +
      `${publicKey.keyId}; sign releases with the secret key of the configured public key, or configure the public ` +
      `key of the key that signs them`,
    { subject: signature.source },
  );
}

function finishVerification(
  publicKey: MinisignPublicKey,
  signature: MinisignSignature,
  signed: Uint8Array,
): MinisignVerification {
  if (!verify(null, signed, publicKey.key, signature.signature)) {
    throw new OverseerError(
      'ERR_OVERSEER_SIGNATURE_INVALID',
      `${signature.source} (key id ${signature.keyId}) does not match the release: its bytes are not the ` +
        `ones that were signed (a changed or corrupted release, or a stale .minisig); ${RESIGN_HINT}`,
      { subject: signature.source },
    );
  }
  const comment = Buffer.concat([signature.signature, Buffer.from(signature.trustedComment, 'utf8')]);
  if (!verify(null, comment, publicKey.key, signature.globalSignature)) {
    throw new OverseerError(
      'ERR_OVERSEER_SIGNATURE_INVALID',
      `${signature.source} (key id ${signature.keyId}): the trusted comment ` +
        `${JSON.stringify(signature.trustedComment)} does not match its comment signature, so it was changed after ` +
        `signing; ${RESIGN_HINT}`,
      { subject: signature.source },
    );
  }
  return Object.freeze({ keyId: signature.keyId, algorithm: signature.algorithm, trustedComment: signature.trustedComment });
}

// minisign stores the key id little-endian and prints it as a 64-bit number in upper-case hex.
function formatKeyId(bytes: Buffer): string {
  return Buffer.from(bytes).reverse().toString('hex').toUpperCase();
}

// Strict like minisign's decoder: standard alphabet, padding required, nothing else.
function decodeBase64(text: string): Buffer | undefined {
  if (text === '' || !BASE64.test(text)) return undefined;
  return Buffer.from(text, 'base64');
}

function describeBadBase64(text: string): string {
  if (text === '') return 'the line is empty';
  const bad = /[^A-Za-z0-9+/=]/.exec(text);
  if (bad !== null) return `${JSON.stringify(bad[0])} at column ${bad.index + 1}`;
  if (text.length % 4 !== 0) return `${text.length} characters, not a multiple of 4: truncated or missing its "=" padding`;
  return 'misplaced "=" padding';
}

function splitLines(text: string): string[] {
  return text
    .replace(/^\uFEFF/, '')
    .split('\n')
    .map((line) => (line.endsWith('\r') ? line.slice(0, -1) : line));
}

function preview(line: string): string {
  return JSON.stringify(line.length > 24 ? `${line.slice(0, 24)}…` : line);
}

function describeType(value: unknown): string {
  return value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value;
}

/**
 * The release version a signer put in the trusted comment: a `version:<semver>` word, as in
 * `minisign -S -m app.mjs -t "version:1.2.3 file:app.mjs"` (words are separated by spaces or
 * tabs; minisign's own default comment has none). Only meaningful once the signature verified.
 */
export function signedVersion(trustedComment: string): string | undefined {
  for (const word of trustedComment.split(/[ \t]+/)) {
    if (word.startsWith('version:') && word.length > 'version:'.length) return word.slice('version:'.length);
  }
  return undefined;
}
