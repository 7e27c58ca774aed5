// An ordinary Node web server, with nothing of overseer in it: `server.listen(3000)`. Under
// `overseer run` it gets zero-downtime restarts as it is. Run from the repository:
//   npm run build && node dist/src/cli/main.js run --listen :3000 -- node example/run/server.mjs
//   curl localhost:3000                 (its pid)
//   kill -USR2 <overseer's pid>         (a new process answers; the old one drains: no request fails)
//   kill -TERM <overseer's pid>         (drains and exits 0)
// Or with a config file: node dist/src/cli/main.js run -c example/run/overseer.node.json
import http from 'node:http';

const server = http.createServer((request, response) => {
  response.end(`hello from ${process.pid}\n`);
});
server.listen(Number(process.env.PORT ?? 3000), () => {
  console.log(`listening on ${JSON.stringify(server.address())}`);
});
