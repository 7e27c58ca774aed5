#!/usr/bin/env node
// A self-updating command-line tool (docs/cli.md). It prints its version and exits; with
// RELEASE_URL set it checks that URL for a newer build of itself while it runs, and the next
// run is that build:
//   RELEASE_URL=http://127.0.0.1:4000/tool.mjs node example/cli/tool.mjs
import { run } from 'overseer';
import { HttpFetcher } from 'overseer/fetchers';

const url = process.env.RELEASE_URL;

await run({
  version: '1.0.0',
  noRestart: true,
  ...(url ? { fetcher: new HttpFetcher({ url }) } : {}),
  onEvent(event) {
    if (event.type === 'upgrade-progress' && event.total) {
      const width = 30;
      const done = Math.round((event.received / event.total) * width);
      process.stderr.write(`\rupdating [${'#'.repeat(done)}${' '.repeat(width - done)}]`);
    }
    if (event.type === 'upgrade-applied') process.stderr.write(`\nupdated to ${event.version}; it runs next time\n`);
    if (event.type === 'upgrade-rejected') process.stderr.write(`update refused: ${event.error}\n`);
  },
  async program(state) {
    console.log(`tool ${state.version} (${state.enabled ? `under overseer, bundle ${state.id.slice(0, 12)}` : 'in-process'})`);
  },
});
