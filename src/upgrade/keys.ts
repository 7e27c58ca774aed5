/**
 * Several trusted keys (verify.publicKey as an array): a signature names its key id, and the
 * key with that id checks it. Rotation: publish with the new key while instances trust both.
 */
import { OverseerError } from '../errors.js';
import type { MinisignPublicKey, MinisignSignature } from './minisign.js';

export interface TrustedKeys {
  readonly publicKey: MinisignPublicKey | undefined;
  readonly publicKeys?: readonly MinisignPublicKey[] | undefined;
}

/** The configured key whose id the signature names; throws ERR_OVERSEER_SIGNATURE_INVALID listing the trusted ids when none does. */
export function keyFor(verify: TrustedKeys, signature: MinisignSignature): MinisignPublicKey {
  const keys = verify.publicKeys ?? (verify.publicKey === undefined ? [] : [verify.publicKey]);
  return pickKey(keys, signature);
}

export function pickKey(keys: readonly MinisignPublicKey[], signature: MinisignSignature): MinisignPublicKey {
  const key = keys.find((candidate) => candidate.keyId === signature.keyId);
  if (key !== undefined) return key;
  // One key: minisign.ts's own key-id message (it names both ids).
  if (keys.length === 1) return keys[0]!;
  throw new OverseerError(
    'ERR_OVERSEER_SIGNATURE_INVALID',
    `the key id in ${signature.source} is ${signature.keyId}, none of the ${keys.length} keys of verify.publicKey (${keys.map((k) => k.keyId).join(', ')}); ` +
      'sign with the secret key of a trusted key, or add its public key to verify.publicKey (see docs/releases.md, "Rotating a key")',
    { subject: signature.source },
  );
}
