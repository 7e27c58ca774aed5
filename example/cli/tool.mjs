#!/usr/bin/env node
// A self-updating command-line tool (docs/cli.md). It prints its version at once and exits; with
// RELEASE_URL set it checks that URL for a newer build of itself at most once a minute, in a
// background process it does not wait for, and the next run is that build:
//   RELEASE_URL=http://127.0.0.1:4000/tool.mjs node example/cli/tool.mjs
//   RELEASE_URL=http://127.0.0.1:4000/tool.mjs node example/cli/tool.mjs self-update   # now, with a progress bar
import { selfUpdating } from 'overseer/self-update';

const url = process.env.RELEASE_URL;

await selfUpdating({
  version: '1.0.0',
  checkEvery: 60_000,
  // Loaded only when a check runs: a run with no check due imports nothing else.
  ...(url ? { fetcher: async () => new (await import('overseer/fetchers/http')).HttpFetcher({ url }) } : {}),
  async program(tool) {
    if (process.argv[2] === 'self-update') {
      const result = await tool.selfUpdate({
        onEvent(event) {
          if (event.type === 'upgrade-progress' && event.total) {
            const width = 30;
            const done = Math.round((event.received / event.total) * width);
            process.stderr.write(`\rupdating [${'#'.repeat(done)}${' '.repeat(width - done)}]`);
          }
        },
      });
      console.log(result.updated ? `\nupdated from ${result.from} to ${result.to}` : result.message ?? 'already up to date');
      return;
    }
    console.log(`tool ${tool.version}${tool.checking ? ' (checking for updates in the background)' : ''}`);
  },
});
