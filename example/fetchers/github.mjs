// Serves on :3000 and upgrades itself from the latest GitHub release of GITHUB_REPO (owner/name).
// Run a copy (an upgrade replaces the file that runs):
// `cp example/fetchers/github.mjs /tmp/app.mjs && GITHUB_REPO=acme/app node /tmp/app.mjs`.
// Each release should carry `app.mjs` and a `checksums.txt` (`sha256sum app.mjs > checksums.txt`);
// sign it too (`minisign -Sm app.mjs` → app.mjs.minisig) and set MINISIGN_PUBLIC_KEY to enforce that.
// GITHUB_TOKEN is needed for private repositories and lifts the rate limit (60 → 5000 requests/hour).
// Needs `npm install @octokit/rest`; it is loaded only when the fetcher first polls.
import http from 'node:http';
import { run } from 'overseer';
import { GitHubFetcher } from 'overseer/fetchers/github';

const [owner = 'acme', repo = 'app'] = (process.env.GITHUB_REPO ?? 'acme/app').split('/');

run({
  address: ':3000',
  version: '1.0.0',
  fetcher: new GitHubFetcher({
    owner,
    repo,
    asset: 'app.mjs', // or a RegExp, a predicate, or leave it out to pick the asset named for this platform/arch
    interval: 5 * 60_000,
    ...(process.env.GITHUB_TOKEN ? { token: process.env.GITHUB_TOKEN } : {}),
    ...(process.env.GITHUB_API_URL ? { baseUrl: process.env.GITHUB_API_URL } : {}), // GitHub Enterprise: https://HOST/api/v3
  }),
  verify: {
    sha256: 'required',
    ...(process.env.MINISIGN_PUBLIC_KEY ? { publicKey: process.env.MINISIGN_PUBLIC_KEY } : {}),
  },
  onEvent: (event) => event.type !== 'upgrade-progress' && console.log('[overseer]', event.type),
  async program(state) {
    const server = http.createServer((req, res) => {
      res.end(`app ${state.version} (${state.id.slice(0, 12)}) says hello\n`);
    });
    await state.listen(server);
    console.log(`child ${process.pid} serving ${state.address}`);
  },
});
