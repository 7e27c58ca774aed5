/**
 * Which signals the master acts on. The restart signal starts a handoff; SIGTERM and SIGINT
 * shut down gracefully; the rest are forwarded to the serving child as they are. SIGUSR1 is
 * forwarded too, so `kill -USR1 <master>` opens the inspector in the app, not in the master.
 */

export const SHUTDOWN_SIGNALS = ['SIGTERM', 'SIGINT'] as const satisfies readonly NodeJS.Signals[];

const FORWARDED: readonly NodeJS.Signals[] = ['SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2', 'SIGWINCH'];

/** The signals forwarded to the child unchanged, given the signals that restart. */
export function forwardedSignals(restartSignals: readonly NodeJS.Signals[]): NodeJS.Signals[] {
  return FORWARDED.filter((signal) => !restartSignals.includes(signal));
}

/** Installs `handler` for each signal; returns a function that removes them again. */
export function onSignals(signals: readonly NodeJS.Signals[], handler: (signal: NodeJS.Signals) => void): () => void {
  const listeners = signals.map((signal) => {
    const listener = () => handler(signal);
    process.on(signal, listener);
    return [signal, listener] as const;
  });
  return () => {
    for (const [signal, listener] of listeners) process.off(signal, listener);
  };
}
