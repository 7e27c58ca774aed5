/**
 * Test-only minisign signer: makes Ed25519 key pairs with node:crypto and writes `.pub` and
 * `.minisig` texts in minisign's exact formats, so tests can sign releases without the tool.
 */
import { createHash, generateKeyPairSync, randomBytes, sign } from 'node:crypto';

export interface MinisignSignOptions {
  /** Default: minisign's own, `timestamp:<seconds>\thashed` (or without `\thashed` for legacy). */
  readonly trustedComment?: string;
  readonly untrustedComment?: string;
  /** Sign the whole message with algorithm "Ed", as `minisign -S -l` does. */
  readonly legacy?: boolean;
}

export interface MinisignTestKey {
  /** Key id as minisign prints it: 16 upper-case hex digits. */
  readonly keyId: string;
  /** The base64 key line alone, as `minisign -P` takes it. */
  readonly publicKey: string;
  /** The whole `.pub` file, as `minisign -G` writes it. */
  readonly publicKeyFile: string;
  /** Returns the whole `.minisig` text for `data`. */
  sign(data: Uint8Array, trustedComment?: string): string;
  signWith(data: Uint8Array, options: MinisignSignOptions): string;
}

export function createMinisignKey(): MinisignTestKey {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const x = publicKey.export({ format: 'jwk' }).x;
  if (x === undefined) throw new Error('node:crypto gave an Ed25519 JWK without x');
  const keyIdBytes = randomBytes(8);
  const keyId = Buffer.from(keyIdBytes).reverse().toString('hex').toUpperCase();
  const publicKeyLine = Buffer.concat([Buffer.from('Ed'), keyIdBytes, Buffer.from(x, 'base64url')]).toString('base64');

  const signWith = (data: Uint8Array, options: MinisignSignOptions): string => {
    const legacy = options.legacy === true;
    const trustedComment =
      options.trustedComment ?? `timestamp:${Math.floor(Date.now() / 1000)}${legacy ? '' : '\thashed'}`;
    const message = legacy ? data : createHash('blake2b512').update(data).digest();
    const signature = sign(null, message, privateKey);
    const globalSignature = sign(null, Buffer.concat([signature, Buffer.from(trustedComment, 'utf8')]), privateKey);
    const signatureLine = Buffer.concat([Buffer.from(legacy ? 'Ed' : 'ED'), keyIdBytes, signature]).toString('base64');
    return (
      `untrusted comment: ${options.untrustedComment ?? 'signature from minisign secret key'}\n` +
      `${signatureLine}\n` +
      `trusted comment: ${trustedComment}\n` +
      `${globalSignature.toString('base64')}\n`
    );
  };

  return {
    keyId,
    publicKey: publicKeyLine,
    publicKeyFile: `untrusted comment: minisign public key ${keyId}\n${publicKeyLine}\n`,
    sign: (data, trustedComment) => signWith(data, trustedComment === undefined ? {} : { trustedComment }),
    signWith,
  };
}
