/**
 * What master and child say to each other. Every overseer message carries `overseer: PROTOCOL`,
 * so the app's own process.send traffic shares the channel untouched; no `cmd` starts with
 * `NODE_` (Node reserves those).
 */

/** Bumped when a message changes shape; the echo-token check reports it. */
export const PROTOCOL = 1;

/** The one environment marker that picks run()'s role. Absent: master. */
export const ROLE_ENV = 'OVERSEER_ROLE';
export const ROLE_CHILD = 'child';
export const ROLE_CHECK_PREFIX = 'check:';

/** Line a staged bundle prints under the echo-token check; the verifier searches for it in the output. */
export const CHECK_LINE_PREFIX = 'overseer-check ';

/** Under `overseer run --events`, each lifecycle event is one stderr line with this prefix. */
export const EVENT_LINE_PREFIX = 'overseer-event ';

export interface CheckAnswer {
  readonly token: string;
  readonly protocol: number;
  readonly version: string | null;
}

export interface ListenerInfo {
  /** The address as configured, with the real port when it was 0. */
  readonly address: string;
  readonly kind: 'tcp' | 'unix';
}

/** master → child */
export type MasterMessage =
  | { overseer: typeof PROTOCOL; type: 'init'; generation: number; id: string; bundlePath: string; listeners: ListenerInfo[]; terminateTimeout: number; drainSpread?: number | 'auto' | undefined }
  | { overseer: typeof PROTOCOL; type: 'listener'; generation: number; index: number }
  | { overseer: typeof PROTOCOL; type: 'drain'; generation: number; reason: string }
  /** Probation began (count responses and report them) or ended (stop counting). */
  | { overseer: typeof PROTOCOL; type: 'probation'; generation: number; on: boolean };

/** HTTP responses a child finished while on probation, by status class, since it began counting. */
export interface ResponseCounts {
  readonly '1xx': number;
  readonly '2xx': number;
  readonly '3xx': number;
  readonly '4xx': number;
  readonly '5xx': number;
}

/** child → master */
export type ChildMessage =
  | { overseer: typeof PROTOCOL; type: 'hello'; pid: number }
  | { overseer: typeof PROTOCOL; type: 'ready' }
  | { overseer: typeof PROTOCOL; type: 'failed'; error: string }
  | { overseer: typeof PROTOCOL; type: 'restart' }
  | { overseer: typeof PROTOCOL; type: 'responses'; counts: ResponseCounts }
  /** state.reportHealthy() / state.reportUnhealthy(reason). */
  | { overseer: typeof PROTOCOL; type: 'health'; healthy: boolean; reason?: string };

export function isProtocolMessage<T extends { type: string }>(message: unknown): message is T {
  return typeof message === 'object' && message !== null && (message as { overseer?: unknown }).overseer === PROTOCOL
    && typeof (message as { type?: unknown }).type === 'string';
}

type Body<M> = M extends unknown ? Omit<M, 'overseer'> : never;

export function masterMessage(body: Body<MasterMessage>): MasterMessage {
  return { overseer: PROTOCOL, ...body } as MasterMessage;
}

export function childMessage(body: Body<ChildMessage>): ChildMessage {
  return { overseer: PROTOCOL, ...body } as ChildMessage;
}
