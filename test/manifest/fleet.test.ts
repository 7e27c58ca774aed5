import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { startFleet, runScenario, type Fleet } from '../../support/fleet.ts';
import { startFleetSource, type FleetSource } from '../../support/fleet-source.ts';
import { Load } from '../helpers/load.ts';

let fleet: Fleet | undefined;
let source: FleetSource | undefined;
after(async () => {
  await fleet?.stop();
  await source?.server.close();
});

test('a fleet of 30 real masters on one HTTP source: 10 % → 50 % take exactly their buckets, a pull brings them back, expired and replayed manifests are refused; no failed request on a loaded member', async (t) => {
  source = await startFleetSource('1.0.0', '1.1.0');
  fleet = await startFleet({ size: 30, manifestUrl: source.manifestUrl, publicKey: source.key.publicKey, firstVersion: '1.0.0', interval: 500 });
  const watched = fleet.members[0]!;
  const load = new Load({ port: watched.port, keepAlive: true, concurrency: 2 });
  const reports = await runScenario({
    fleet,
    publish: (sequence, offer, options) => source!.publish(sequence, offer, options),
    replay: (sequence) => source!.replay(sequence),
    requests: () => source!.requests(),
    newVersion: '1.1.0',
    oldVersion: '1.0.0',
    steps: ['10%', '50%', 'pull', 'expire', 'replay'],
    timeoutMs: 180_000,
  });
  const result = await load.stop();
  for (const report of reports) {
    assert.deepEqual(report.wrong, [], `${report.step}: the members that took the release are exactly those whose bucket is under the rollout`);
    t.diagnostic(`${report.step}: took ${report.took}/${fleet.members.length}, expected ${report.expected ?? '-'}, settled in ${report.settleMs} ms, ${report.requests} requests`);
  }
  const [ten, fifty, pull, expire, replay] = reports;
  assert.ok(fifty!.took >= ten!.took, 'raising the rollout only adds members');
  assert.equal(pull!.took, 30, 'every member runs the old version again');
  assert.equal(expire!.took, 0);
  assert.equal(replay!.took, 0, 'the replayed 10 % manifest moved nobody');
  for (const member of fleet.members) assert.equal(member.version, '1.0.0');
  assert.deepEqual(result.failures, [], 'the loaded member never failed a request');
  assert.ok(result.answers.length > 0);
});
