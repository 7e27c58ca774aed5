/**
 * Section 3: the serving child killed with SIGKILL under the constant-rate load, the master
 * respawning at once (`respawn: { minDelay: 0 }`). The master keeps the socket listening, so
 * connections queue instead of being refused; a bare server killed and started again is the contrast.
 */
import { startBare, startOverseer, type Contender } from './lib/contenders.ts';
import { log, runStandalone, type SectionOptions, type SectionResult } from './lib/section.ts';
import { failureText, ms, table, totalFailures } from './lib/stats.ts';
import { runScenario, type ScenarioResult } from './handoff.ts';

export async function crashSection(options: SectionOptions): Promise<SectionResult> {
  const rate = 2000;
  const kills = options.quick ? 2 : 20;
  const steadyMs = options.quick ? 1000 : 3000;
  const gapMs = 500;
  const results: ScenarioResult[] = [];
  for (const keepAlive of options.quick ? [true] : [true, false]) {
    const scenarios: Array<[string, () => Promise<Contender>]> = [
      ['overseer, SIGKILL child, respawn minDelay 0', async () => {
        const target = await startOverseer({ options: { respawn: { minDelay: 0, maxCrashes: 1000, window: 60_000 } } });
        return { ...target, name: 'overseer (SIGKILL child)', restart: () => target.killChild('SIGKILL') };
      }],
      ['bare node, kill and start again', () => startBare()],
    ];
    for (const [label, start] of scenarios) {
      log(`crash: ${label}, keep-alive ${keepAlive ? 'on' : 'off'}, ${kills} kills at ${rate} rps`);
      results.push(await runScenario({ start, keepAlive, rate, restarts: kills, steadyMs, gapMs, plotRestarts: 0 }));
    }
  }
  const rows = results.map((result) => [
    result.contender,
    result.keepAlive ? 'on' : 'off',
    String(result.restarts),
    String(result.total.failures.refused),
    String(totalFailures(result.total) - result.total.failures.refused),
    failureText(result.total.failures),
    ms(result.steady.p99),
    ms(result.windows.p99),
    ms(result.windows.max),
    ms(result.facts.gapMs?.median ?? result.restartMs.median),
    ms(result.facts.exitSeenMs?.median ?? Number.NaN),
    ms(result.facts.bootMs?.median ?? Number.NaN),
  ]);
  const markdown = [
    `### SIGKILL of the serving process under ${rate} rps (${kills} kills, ${gapMs} ms apart)`,
    '',
    table(['contender', 'keep-alive', 'kills', 'refused', 'other failures', 'refused / reset / timeout / non-2xx', 'steady p99 ms', 'gap p99 ms', 'gap max ms', 'kill → serving again, median ms', 'kill → exit seen ms', 'boot ms'], rows),
    '',
    'The gap window runs from the kill to the replacement being ready. Resets are requests on the killed process\'s connections (in flight, or sent before the client saw the close), which no supervisor can save.',
  ].join('\n');
  return { name: 'crash', markdown, data: { rate, kills, gapMs, results } };
}

if (import.meta.url === `file://${process.argv[1]}`) await runStandalone('crash', crashSection);
