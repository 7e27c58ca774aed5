/**
 * semver's `valid()` (strict; semver 7) without loading semver. Config validation runs in every
 * master at start, and semver's nine CommonJS modules were the master's only start-up
 * dependency: with them, the module loader's path functions ran hot enough for V8 to optimize
 * them, which costs the master a few MB of RSS (docs/benchmarks.md §7). The upgrade path, which
 * compares versions, still loads semver at its first poll. test/core/semver-valid.test.ts holds
 * this to semver's own answers.
 */
const FULL =
  /^v?(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-((?:\d*[a-zA-Z-][a-zA-Z0-9-]*|0|[1-9]\d*)(?:\.(?:\d*[a-zA-Z-][a-zA-Z0-9-]*|0|[1-9]\d*))*))?(?:\+([a-zA-Z0-9-]+(?:\.[a-zA-Z0-9-]+)*))?$/;
/** semver's MAX_LENGTH, checked before it trims. */
const MAX_LENGTH = 256;

/** True when semver's `valid(value)` returns a version (surrounding whitespace allowed, as there). */
export function isValidSemver(value: string): boolean {
  if (value.length > MAX_LENGTH) return false;
  const match = FULL.exec(value.trim());
  if (match === null) return false;
  return [match[1], match[2], match[3]].every((part) => Number(part) <= Number.MAX_SAFE_INTEGER);
}
