import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { expectedTakers, startFleet, runScenario, type Fleet } from '../../support/fleet.ts';
import { startFleetSource, type FleetSource } from '../../support/fleet-source.ts';
import { Load } from '../helpers/load.ts';

let fleet: Fleet | undefined;
let source: FleetSource | undefined;
after(async () => {
  await fleet?.stop();
  await source?.server.close();
});

// Ids are fixed (web-0 … web-11), so their buckets for 1.1.0 are known: 3 under 10 %, 6 under
// 50 %, 6 above. Each step then moves some members and leaves others: the default ids needed 30
// members for that (node-0 … node-19 has none under 10 %).
const SIZE = 12;
const ID_PREFIX = 'web';

test('a fleet of 12 real masters on one HTTP source: 10 % → 50 % take exactly their buckets, a pull brings them back, expired and replayed manifests are refused; no failed request on a loaded member', async (t) => {
  const ids = Array.from({ length: SIZE }, (_, index) => `${ID_PREFIX}-${index}`);
  assert.equal(expectedTakers(ids, '1.1.0', 10).size, 3, 'the ids put 3 members under a 10 % rollout');
  assert.equal(expectedTakers(ids, '1.1.0', 50).size, 6, 'and 6 under 50 %');
  source = await startFleetSource('1.0.0', '1.1.0');
  fleet = await startFleet({ size: SIZE, idPrefix: ID_PREFIX, manifestUrl: source.manifestUrl, publicKey: source.key.publicKey, firstVersion: '1.0.0', interval: 500 });
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
  assert.equal(ten!.took, 3);
  assert.equal(fifty!.took, 6, 'raising the rollout adds exactly the members whose bucket is under it');
  assert.equal(pull!.took, SIZE, 'every member runs the old version again');
  assert.equal(expire!.took, 0);
  assert.equal(replay!.took, 0, 'the replayed 10 % manifest moved nobody');
  for (const member of fleet.members) assert.equal(member.version, '1.0.0');
  assert.deepEqual(result.failures, [], 'the loaded member never failed a request');
  assert.ok(result.answers.length > 0);
});
