/** Deadlines scale with OVERSEER_TEST_TIMEOUT_SCALE on slow machines. */
export const scale = Number(process.env.OVERSEER_TEST_TIMEOUT_SCALE ?? 1);
