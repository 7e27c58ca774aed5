/**
 * Which asset of a GitHub release GitHubFetcher runs: by name, RegExp, predicate, or the one
 * named for this platform and arch.
 */

/** An asset name (`{platform}` and `{arch}` filled in), a RegExp tested on names, or a predicate on names. */
export type AssetMatcher = string | RegExp | ((name: string) => boolean);

const PLATFORM_ALIASES: Readonly<Record<string, readonly string[]>> = {
  darwin: ['darwin', 'macos', 'osx'],
  win32: ['win32', 'windows'],
};
const ARCH_ALIASES: Readonly<Record<string, readonly string[]>> = {
  x64: ['x64', 'amd64', 'x86_64'],
  arm64: ['arm64', 'aarch64'],
  ia32: ['ia32', 'i386', '386'],
};

export interface AssetTest {
  readonly test: (name: string) => boolean;
  /** A name given as a string; it may even be a sidecar file. */
  readonly exact: string | undefined;
  /** What was wanted, for errors. */
  readonly wanted: string;
}

/**
 * A name with `{platform}` and `{arch}` in it (`mytool-{platform}-{arch}`) is the name for this
 * process: `mytool-linux-x64`, the usual way single executables are published per platform.
 */
export function assetName(pattern: string, platform: string = process.platform, arch: string = process.arch): string {
  return pattern.replaceAll('{platform}', platform).replaceAll('{arch}', arch);
}

export function assetTest(asset: AssetMatcher | undefined): AssetTest {
  if (typeof asset === 'string') asset = assetName(asset);
  if (typeof asset === 'string') {
    return { test: (name) => name === asset, exact: asset, wanted: JSON.stringify(asset) };
  }
  if (asset instanceof RegExp) {
    // A global or sticky RegExp keeps lastIndex between test() calls; match on a fresh copy.
    const pattern = new RegExp(asset.source, asset.flags.replace(/[gy]/g, ''));
    return { test: (name) => pattern.test(name), exact: undefined, wanted: String(asset) };
  }
  if (typeof asset === 'function') {
    return { test: (name) => Boolean(asset(name)), exact: undefined, wanted: 'the GitHubFetcher.asset predicate' };
  }
  return platformTest(process.platform, process.arch);
}

/** Names carrying this platform and arch as words, in any of their common spellings. */
function platformTest(platform: string, arch: string): AssetTest {
  const word = (aliases: readonly string[]) => new RegExp(`(^|[^a-z0-9])(${aliases.join('|')})($|[^a-z0-9])`, 'i');
  const platformWord = word(PLATFORM_ALIASES[platform] ?? [platform]);
  const archWord = word(ARCH_ALIASES[arch] ?? [arch]);
  return {
    test: (name) => platformWord.test(name) && archWord.test(name),
    exact: undefined,
    wanted: `this platform and arch (${platform} ${arch})`,
  };
}
