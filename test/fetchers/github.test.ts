import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import path from 'node:path';
import { Readable } from 'node:stream';
import { assertAbortEndsStream, context, readAll, releaseOf } from '../helpers/fetch.ts';
import { modulesLoadedBy } from '../helpers/modules.ts';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { GitHubFetcher, type GitHubFetcherOptions } from '../../fetchers/github.ts';
import { isOverseerError } from '../../src/errors.ts';
import { startGitHubApi, type GitHubApi, type GitHubApiOptions } from '../../support/github-api.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const sha256 = (data: string | Buffer) => createHash('sha256').update(data).digest('hex');

async function rejectsWithCode(promise: Promise<unknown>, code: 'ERR_OVERSEER_FETCH_FAILED', pattern: RegExp) {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(isOverseerError(error, code), `expected ${code}, got ${String(error)}`);
    assert.match(error.message, pattern);
    return true;
  });
}

/** This platform's asset name, spelled the way release tools often do (x86_64, aarch64, macOS). */
function aliasedPlatformName(): string {
  const platform = process.platform === 'darwin' ? 'macOS' : process.platform === 'win32' ? 'Windows' : process.platform;
  const arch = process.arch === 'x64' ? 'x86_64' : process.arch === 'arm64' ? 'aarch64' : process.arch;
  return `app_${platform}_${arch}.mjs`;
}
const otherPlatform = process.platform === 'freebsd' ? 'openbsd' : 'freebsd';

describe('GitHubFetcher', () => {
  let api: GitHubApi;
  const fetchers: GitHubFetcher[] = [];

  async function useApi(options: GitHubApiOptions = {}): Promise<GitHubApi> {
    await api.close();
    api = await startGitHubApi(options);
    return api;
  }

  function fetcher(options: Partial<GitHubFetcherOptions> = {}): GitHubFetcher {
    const created = new GitHubFetcher({ owner: api.owner, repo: api.repo, baseUrl: api.baseUrl, ...options });
    fetchers.push(created);
    return created;
  }

  beforeEach(async () => {
    api = await startGitHubApi();
  });

  afterEach(async () => {
    for (const created of fetchers.splice(0)) created.close();
    await api.close();
  });

  test('picks the highest semver tag, not the newest release, and describes its asset', async () => {
    api.publishRelease({ tag: '1.2.0', assets: [{ name: 'app.mjs', body: 'v1.2.0' }] });
    const published = api.publishRelease({ tag: 'v1.10.0', assets: [{ name: 'app.mjs', body: 'v1.10.0' }] });
    api.publishRelease({ tag: 'v1.9.0', assets: [{ name: 'app.mjs', body: 'v1.9.0' }] });
    api.publishRelease({ tag: 'nightly', assets: [{ name: 'app.mjs', body: 'nightly' }] });

    const release = releaseOf(await fetcher({ asset: 'app.mjs' }).fetch(context()));
    const asset = published.assets[0]!;
    assert.equal(release.version, '1.10.0');
    assert.equal(release.id, `v1.10.0:${asset.id}:${asset.updatedAt}`);
    assert.equal(release.size, 'v1.10.0'.length);
    assert.equal(release.source, asset.browserDownloadUrl);
    assert.equal(release.gzip, false);
    assert.equal(release.sha256, undefined);
    assert.equal(release.signature, undefined);
    assert.equal((await readAll(await release.open(new AbortController().signal))).toString(), 'v1.10.0');
  });

  test('skips prereleases unless prerelease: true', async () => {
    api.publishRelease({ tag: 'v1.0.0', assets: [{ name: 'app.mjs', body: '1.0.0' }] });
    api.publishRelease({ tag: 'v1.1.0-rc.1', assets: [{ name: 'app.mjs', body: 'rc' }] });
    api.publishRelease({ tag: 'v1.2.0', prerelease: true, assets: [{ name: 'app.mjs', body: 'flagged' }] });

    assert.equal(releaseOf(await fetcher({ asset: 'app.mjs' }).fetch(context())).version, '1.0.0');
    assert.equal(releaseOf(await fetcher({ asset: 'app.mjs', prerelease: true }).fetch(context())).version, '1.2.0');
  });

  test('skips drafts, and says none when nothing is published', async () => {
    assert.deepEqual(await fetcher({ asset: 'app.mjs' }).fetch(context()), { type: 'none' });
    api.publishRelease({ tag: 'v2.0.0', draft: true, assets: [{ name: 'app.mjs', body: 'draft' }] });
    assert.deepEqual(await fetcher({ asset: 'app.mjs' }).fetch(context()), { type: 'none' });
    api.publishRelease({ tag: 'v1.0.0', assets: [{ name: 'app.mjs', body: 'one' }] });
    assert.equal(releaseOf(await fetcher({ asset: 'app.mjs' }).fetch(context())).version, '1.0.0');
  });

  test('picks the asset by name, RegExp or predicate, never a checksum or signature file', async () => {
    api.publishRelease({
      tag: 'v1.0.0',
      assets: [
        { name: 'server.mjs.sha256', body: sha256('server') },
        { name: 'server.mjs.minisig', body: 'sig' },
        { name: 'checksums.txt', body: '' },
        { name: 'server.mjs', body: 'server' },
        { name: 'worker.mjs.gz', body: 'worker' },
      ],
    });
    const read = async (options: Partial<GitHubFetcherOptions>) => {
      const release = releaseOf(await fetcher(options).fetch(context()));
      return (await readAll(await release.open(new AbortController().signal))).toString();
    };
    assert.equal(await read({ asset: 'server.mjs' }), 'server');
    assert.equal(await read({ asset: 'server.mjs.minisig' }), 'sig', 'an exact name may pick any asset');
    assert.equal(await read({ asset: /^server/ }), 'server');
    assert.equal(await read({ asset: (name) => name.startsWith('worker') }), 'worker');

    const global = fetcher({ asset: /server/g });
    assert.equal(releaseOf(await global.fetch(context())).source.endsWith('/server.mjs'), true);
    assert.equal(releaseOf(await global.fetch(context())).source.endsWith('/server.mjs'), true, 'lastIndex of a /g RegExp does not leak');

    const gz = releaseOf(await fetcher({ asset: /worker/ }).fetch(context()));
    assert.equal(gz.gzip, true);
  });

  test('defaults to the asset named for this platform and arch, in their common spellings', async () => {
    api.publishRelease({
      tag: 'v1.0.0',
      assets: [
        { name: `app-${otherPlatform}-${process.arch}.mjs`, body: 'other platform' },
        { name: `app-${process.platform}-mips.mjs`, body: 'other arch' },
        { name: `app-${process.platform}-${process.arch}.mjs`, body: 'mine' },
      ],
    });
    const release = releaseOf(await fetcher().fetch(context()));
    assert.equal((await readAll(await release.open(new AbortController().signal))).toString(), 'mine');

    api.publishRelease({
      tag: 'v1.1.0',
      assets: [
        { name: `app_${otherPlatform}_${process.arch}.mjs`, body: 'other platform' },
        { name: aliasedPlatformName(), body: 'mine, aliased' },
      ],
    });
    const aliased = releaseOf(await fetcher().fetch(context()));
    assert.equal((await readAll(await aliased.open(new AbortController().signal))).toString(), 'mine, aliased');
  });

  test('a release without a matching asset is a coded error naming the tag and its assets', async () => {
    api.publishRelease({ tag: 'v3.1.4', assets: [{ name: `app-${otherPlatform}-mips.mjs`, body: 'x' }, { name: 'notes.txt', body: 'y' }] });
    await rejectsWithCode(fetcher().fetch(context()), 'ERR_OVERSEER_FETCH_FAILED', /v3\.1\.4.*notes\.txt/);
    await rejectsWithCode(fetcher({ asset: 'app.mjs' }).fetch(context()), 'ERR_OVERSEER_FETCH_FAILED', /"app\.mjs".*"notes\.txt"/);
  });

  test('sends the token to the API but not to the host the download is redirected to', async () => {
    await useApi({ token: 'secret-token' });
    const body = randomBytes(64 * 1024);
    api.publishRelease({ tag: 'v1.0.0', assets: [{ name: 'app.mjs', body }, { name: 'checksums.txt', body: `${sha256(body)}  app.mjs\n` }] });

    await rejectsWithCode(fetcher({ asset: 'app.mjs' }).fetch(context()), 'ERR_OVERSEER_FETCH_FAILED', /404.*token/);
    await rejectsWithCode(fetcher({ asset: 'app.mjs', token: 'wrong' }).fetch(context()), 'ERR_OVERSEER_FETCH_FAILED', /401/);

    const release = releaseOf(await fetcher({ asset: 'app.mjs', token: 'secret-token' }).fetch(context()));
    assert.deepEqual(await readAll(await release.open(new AbortController().signal)), body);

    const apiRequests = api.requests.filter((request) => request.server === 'api' && request.status < 400);
    const downloads = api.requests.filter((request) => request.server === 'download');
    assert.ok(apiRequests.length >= 3, 'listing, checksums.txt and the asset went through the API');
    for (const request of apiRequests) assert.equal(request.headers.authorization, 'token secret-token');
    assert.equal(apiRequests.filter((request) => request.status === 302).length, 2);
    assert.equal(downloads.length, 2);
    for (const request of downloads) {
      assert.equal(request.status, 200);
      assert.equal(request.headers.authorization, undefined, `token leaked to ${request.url}`);
    }
  });

  test('polls with If-None-Match: a 304 reuses the last descriptor, a new release is seen', async () => {
    const first = api.publishRelease({
      tag: 'v1.0.0',
      assets: [{ name: 'app.mjs', body: 'one' }, { name: 'checksums.txt', body: `${sha256('one')}  app.mjs\n` }],
    });
    const polling = fetcher({ asset: 'app.mjs' });
    const initial = releaseOf(await polling.fetch(context()));
    const again = releaseOf(await polling.fetch(context()));
    assert.equal(again, initial, 'the same descriptor, not a rebuilt one');

    const listings = api.requests.filter((request) => request.url.startsWith('/repos/acme/app/releases?'));
    assert.equal(listings.length, 2);
    assert.equal(listings[0]?.status, 200);
    assert.equal(listings[1]?.status, 304);
    assert.equal(listings[0]?.headers['if-none-match'], undefined);
    assert.match(String(listings[1]?.headers['if-none-match']), /^W\/"/);
    const checksumDownloads = api.requests.filter((request) => request.url.endsWith(`/assets/${first.assets[1]!.id}`));
    assert.equal(checksumDownloads.length, 1, 'a 304 downloads nothing');

    api.publishRelease({ tag: 'v1.1.0', assets: [{ name: 'app.mjs', body: 'two' }] });
    const newer = releaseOf(await polling.fetch(context()));
    assert.equal(newer.version, '1.1.0');
    assert.notEqual(newer.id, initial.id);
    assert.equal(api.requests.filter((request) => request.url.startsWith('/repos/acme/app/releases?')).at(-1)?.status, 200);
  });

  test('a checksum or signature uploaded after the asset is read on the next poll', async () => {
    api.publishRelease({ tag: 'v1.0.0', assets: [{ name: 'app.mjs', body: 'one' }] });
    const polling = fetcher({ asset: 'app.mjs' });
    const bare = releaseOf(await polling.fetch(context()));
    assert.equal(bare.sha256, undefined);

    api.publishRelease({ tag: 'v0.9.0', draft: true, assets: [{ name: 'app.mjs', body: 'draft' }] });
    assert.equal(releaseOf(await polling.fetch(context())), bare, 'an unrelated listing change rebuilds nothing');

    api.uploadAsset('v1.0.0', { name: 'checksums.txt', body: `${sha256('one')}  app.mjs\n` });
    const summed = releaseOf(await polling.fetch(context()));
    assert.equal(summed.id, bare.id, 'the same bytes keep their id');
    assert.equal(summed.sha256, sha256('one'));

    api.uploadAsset('v1.0.0', { name: 'app.mjs.minisig', body: 'signature' });
    const signed = releaseOf(await polling.fetch(context()));
    assert.equal(signed.sha256, sha256('one'));
    assert.equal(signed.signature, 'signature');
  });

  test('surfaces the sha256 from checksums.txt, SHA256SUMS or <asset>.sha256, and the .minisig text', async () => {
    const minisig = 'untrusted comment: signature from minisign secret key\nRUQ...\ntrusted comment: t\nabc\n';
    api.publishRelease({
      tag: 'v1.0.0',
      assets: [
        { name: 'a.mjs', body: 'a' },
        { name: 'b.mjs', body: 'b' },
        { name: 'c.mjs', body: 'c' },
        { name: 'd.mjs', body: 'd' },
        { name: 'a.mjs.minisig', body: minisig },
        { name: 'app_1.0.0_checksums.txt', body: `${sha256('x')}  other.mjs\n${sha256('a').toUpperCase()}  a.mjs\n` },
        { name: 'SHA256SUMS', body: `${sha256('b')} *b.mjs\r\n` },
        { name: 'c.mjs.sha256', body: `${sha256('c')}\n` },
      ],
    });
    const a = releaseOf(await fetcher({ asset: 'a.mjs' }).fetch(context()));
    assert.equal(a.sha256, sha256('a'));
    assert.equal(a.signature, minisig);
    assert.equal(releaseOf(await fetcher({ asset: 'b.mjs' }).fetch(context())).sha256, sha256('b'));
    assert.equal(releaseOf(await fetcher({ asset: 'c.mjs' }).fetch(context())).sha256, sha256('c'));
    const d = releaseOf(await fetcher({ asset: 'd.mjs' }).fetch(context()));
    assert.equal(d.sha256, undefined, 'no list names d.mjs');
    assert.equal(d.signature, undefined);
  });

  test('baseUrl points it at GitHub Enterprise style roots', async () => {
    await useApi({ pathPrefix: '/api/v3' });
    api.publishRelease({ tag: 'v1.0.0', assets: [{ name: 'app.mjs', body: 'enterprise' }] });
    const release = releaseOf(await fetcher({ asset: 'app.mjs', baseUrl: `${api.baseUrl}/` }).fetch(context()));
    assert.equal((await readAll(await release.open(new AbortController().signal))).toString(), 'enterprise');
    assert.ok(api.requests.every((request) => request.server === 'download' || request.url.startsWith('/api/v3/')));

    const wrongRoot = api.baseUrl.replace('/api/v3', '');
    await rejectsWithCode(fetcher({ asset: 'app.mjs', baseUrl: wrongRoot }).fetch(context()), 'ERR_OVERSEER_FETCH_FAILED', /404/);
  });

  test('open() streams the exact bytes as a Node Readable', async () => {
    const body = randomBytes(3 * 1024 * 1024 + 17);
    api.publishRelease({ tag: 'v1.0.0', assets: [{ name: 'big.mjs', body }] });
    const release = releaseOf(await fetcher({ asset: 'big.mjs' }).fetch(context()));
    assert.equal(release.size, body.length);
    const stream = await release.open(new AbortController().signal);
    assert.ok(stream instanceof Readable);
    let chunks = 0;
    const received: Buffer[] = [];
    for await (const chunk of stream) {
      chunks++;
      received.push(chunk as Buffer);
    }
    assert.ok(chunks > 1, 'arrives in chunks, not as one buffer');
    assert.equal(sha256(Buffer.concat(received)), sha256(body));
  });

  test('aborting the open() signal mid-download ends the stream with the abort reason', async () => {
    api.publishRelease({ tag: 'v1.0.0', assets: [{ name: 'big.mjs', body: randomBytes(8 * 1024 * 1024) }] });
    const release = releaseOf(await fetcher({ asset: 'big.mjs' }).fetch(context()));
    await assertAbortEndsStream(release, 8 * 1024 * 1024);
  });

  test('errors are coded (rate limit, unreachable API); an abort rejects with its reason', async () => {
    api.publishRelease({ tag: 'v1.0.0', assets: [{ name: 'app.mjs', body: 'x' }] });
    api.setRateLimited(true);
    await rejectsWithCode(fetcher({ asset: 'app.mjs' }).fetch(context()), 'ERR_OVERSEER_FETCH_FAILED', /rate limit.*token/);
    api.setRateLimited(false);

    const reason = new Error('the master stops');
    const aborted = new AbortController();
    aborted.abort(reason);
    await assert.rejects(fetcher({ asset: 'app.mjs' }).fetch(context(aborted.signal)), (error) => error === reason);
    const release = releaseOf(await fetcher({ asset: 'app.mjs' }).fetch(context()));
    await assert.rejects(release.open(aborted.signal), (error) => error === reason);

    const closedPort = api.baseUrl;
    await api.close();
    api = await startGitHubApi();
    await rejectsWithCode(fetcher({ asset: 'app.mjs', baseUrl: closedPort }).fetch(context()), 'ERR_OVERSEER_FETCH_FAILED', /acme\/app: could not reach http/);
  });

  test('validates its options in the constructor', () => {
    const fails = (options: unknown, pattern: RegExp) =>
      assert.throws(() => new GitHubFetcher(options as GitHubFetcherOptions), (error: unknown) => {
        assert.ok(isOverseerError(error, 'ERR_OVERSEER_INVALID_CONFIG'));
        assert.match(error.message, pattern);
        return true;
      });
    fails(undefined, /GitHubFetcher options must be an object such as \{ owner, repo \}; got undefined/);
    fails({ owner: 'a' }, /GitHubFetcher\.repo must be given \(a non-empty string\); got undefined/);
    fails({ owner: 42, repo: 'r' }, /GitHubFetcher\.owner must be a non-empty string; got 42/);
    fails({ owner: 'a', repo: 'r', tokn: 'x' }, /GitHubFetcher has no option "tokn" \(did you mean "token"\?\)/);
    fails({ owner: 'a', repo: 'r', interval: -1 }, /GitHubFetcher\.interval must be .*; got -1/);
    fails({ owner: 'a', repo: 'r', asset: 7 }, /GitHubFetcher\.asset must be .*RegExp.*; got 7/);
    fails({ owner: 'a', repo: 'r', asset: '' }, /GitHubFetcher\.asset/);
    fails({ owner: 'a', repo: 'r', baseUrl: 'ftp://x' }, /GitHubFetcher\.baseUrl must be an absolute http: or https: URL/);
    fails({ owner: 'a', repo: 'r', prerelease: 'yes' }, /GitHubFetcher\.prerelease must be true or false; got "yes"/);
    fails({ owner: 'a', repo: 'r', token: '' }, /GitHubFetcher\.token/);

    const defaults = new GitHubFetcher({ owner: 'a', repo: 'r' });
    assert.equal(defaults.name, 'github');
    assert.equal(defaults.interval, 300_000);
  });
});


test('importing and constructing GitHubFetcher loads neither Octokit nor all of semver', async () => {
  const octokit = /[\\/]node_modules[\\/]@octokit[\\/]/;
  const fullSemver = /[\\/]node_modules[\\/]semver[\\/]index\.js$/;
  const control = await modulesLoadedBy('@octokit/rest');
  assert.ok(control.some((url) => octokit.test(url)), 'the probe sees an eager import of Octokit');

  const fetcherUrl = pathToFileURL(path.join(root, 'fetchers/github.ts')).href;
  const loaded = await modulesLoadedBy(fetcherUrl, "new loaded.GitHubFetcher({ owner: 'a', repo: 'r' });");
  assert.ok(loaded.includes(fetcherUrl), 'the probe saw the fetcher load');
  assert.ok(loaded.some((url) => /semver[\\/]functions[\\/]valid\.js/.test(url)), 'the probe sees CommonJS too');
  assert.deepEqual(loaded.filter((url) => octokit.test(url) || fullSemver.test(url)), []);
});
