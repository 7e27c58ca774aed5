/**
 * One clock for the benchmarks: epoch milliseconds with sub-millisecond precision, comparable
 * with the `at` (Date.now()) of overseer's events in other processes.
 */
export { now } from '../../src/check/load.ts';

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
