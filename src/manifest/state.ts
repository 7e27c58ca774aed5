/**
 * What an instance keeps of manifests beside its bundle, as version-floor.ts keeps the version
 * floor: `<bundle>.overseer-manifest` (the highest sequence accepted, so a restart does not
 * reopen the replay window) and `<bundle>.overseer-instance` (the instance's identity for
 * staged rollouts, generated on first start unless the user gives one).
 */
import { randomUUID } from 'node:crypto';
import { constants } from 'node:fs';
import { open, readFile, unlink } from 'node:fs/promises';
import path from 'node:path';
import { OverseerError } from '../errors.js';
import { writeFileAtomically } from '../upgrade/temps.js';

export const INSTANCE_ID_ENV = 'OVERSEER_INSTANCE_ID';
const INSTANCE_ID = /^[\x21-\x7e]{1,200}$/;

export function sequenceFile(bundlePath: string): string {
  return `${path.resolve(bundlePath)}.overseer-manifest`;
}

export function instanceFile(bundlePath: string): string {
  return `${path.resolve(bundlePath)}.overseer-instance`;
}

/** The last accepted sequence; missing is none, nonsense is none with a warning. */
export async function readSequence(bundlePath: string, warn: (message: string) => void): Promise<number | undefined> {
  const file = sequenceFile(bundlePath);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') warn(`cannot read ${file}: ${(error as Error).message}; any manifest sequence is accepted until one is`);
    return undefined;
  }
  const sequence = (JSON.parse(safeJson(text)) as { sequence?: unknown } | null)?.sequence;
  if (typeof sequence === 'number' && Number.isSafeInteger(sequence) && sequence >= 1) return sequence;
  warn(`${file} holds ${JSON.stringify(text.trim().slice(0, 80))}, not {"sequence": N}; ignored`);
  return undefined;
}

export async function writeSequence(bundlePath: string, sequence: number): Promise<void> {
  await writeFileAtomically(sequenceFile(bundlePath), `${JSON.stringify({ sequence })}\n`);
}

/**
 * The instance's identity: `given` (config), else OVERSEER_INSTANCE_ID, else the one persisted
 * beside the bundle, else a new random one written there (first start).
 */
export async function resolveInstanceId(bundlePath: string | undefined, given: string | undefined, warn: (message: string) => void): Promise<string> {
  const chosen = given ?? (process.env[INSTANCE_ID_ENV] || undefined);
  if (chosen !== undefined) {
    if (!INSTANCE_ID.test(chosen)) {
      throw new OverseerError('ERR_OVERSEER_INVALID_CONFIG', `the instance id ${JSON.stringify(chosen.slice(0, 80))} must be 1 to 200 printable ASCII characters without spaces (a hostname, a pod name)`, {
        subject: given === undefined ? INSTANCE_ID_ENV : 'instanceId',
      });
    }
    return chosen;
  }
  if (bundlePath === undefined) return randomUUID();
  const file = instanceFile(bundlePath);
  const read = async () => (await readFile(file, 'utf8')).trim();
  try {
    const id = await read();
    if (INSTANCE_ID.test(id)) return id;
    warn(`${file} holds no usable instance id; a new one is written`);
    await unlink(file).catch(() => {});
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') {
      warn(`cannot read ${file}: ${(error as Error).message}; this run uses a new instance id`);
      return randomUUID();
    }
  }
  const id = randomUUID();
  try {
    // Exclusive: two masters on one bundle agree on the first id written.
    const handle = await open(file, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o644);
    try {
      await handle.writeFile(`${id}\n`);
      await handle.sync();
    } finally {
      await handle.close();
    }
    return id;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return read();
    warn(`cannot write ${file}: ${(error as Error).message}; this run's instance id ${id} changes at the next start, and with it the rollout buckets`);
    return id;
  }
}

function safeJson(text: string): string {
  try {
    JSON.parse(text);
    return text;
  } catch {
    return 'null';
  }
}
