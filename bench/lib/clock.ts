/**
 * One clock for the benchmarks: epoch milliseconds with sub-millisecond precision, comparable
 * with the `at` (Date.now()) of overseer's events in other processes.
 */
export const now = (): number => performance.timeOrigin + performance.now();

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
