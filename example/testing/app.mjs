// The app under test: a run() app that answers with its version and pid.
import http from 'node:http';
import { run } from 'overseer';

const VERSION = '1.0.0';

run({
  address: ':3000',
  version: VERSION,
  async program(state) {
    const server = http.createServer((req, res) => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ version: state.version, pid: process.pid }));
    });
    await state.listen(server); // drains gently: no request lost in a handoff
  },
});
