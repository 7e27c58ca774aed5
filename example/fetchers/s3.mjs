// Serves on :3000 and upgrades itself from an S3 object. Run a copy (an upgrade replaces the
// file that runs): `cp example/fetchers/s3.mjs /tmp/app.mjs && node /tmp/app.mjs`, then upload a
// new build to s3://$S3_BUCKET/$S3_KEY, ideally with its sha256 as metadata:
//   aws s3 cp app.mjs s3://my-bucket/app.mjs --metadata sha256=$(sha256sum app.mjs | cut -d' ' -f1)
// For MinIO, R2 or a local s3rver set S3_ENDPOINT (path-style addressing is then used).
// Needs `npm install @aws-sdk/client-s3`; it is loaded only when the fetcher first polls.
import http from 'node:http';
import { run } from 'overseer';
import { S3Fetcher } from 'overseer/fetchers/s3';

const endpoint = process.env.S3_ENDPOINT;

run({
  address: ':3000',
  version: '1.0.0',
  fetcher: new S3Fetcher({
    bucket: process.env.S3_BUCKET ?? 'my-releases',
    key: process.env.S3_KEY ?? 'app/app.mjs',
    region: process.env.AWS_REGION ?? 'us-east-1',
    interval: 60_000,
    // Credentials come from the SDK's usual chain (env, profile, instance role) unless given here.
    ...(endpoint ? { endpoint, forcePathStyle: true } : {}),
  }),
  verify: { sha256: process.env.S3_REQUIRE_SHA256 ? 'required' : 'optional' },
  onEvent: (event) => event.type !== 'upgrade-progress' && console.log('[overseer]', event.type),
  async program(state) {
    const server = http.createServer((req, res) => {
      res.end(`app ${state.version} (${state.id.slice(0, 12)}) says hello\n`);
    });
    await state.listen(server);
    console.log(`child ${process.pid} serving ${state.address}`);
  },
});
