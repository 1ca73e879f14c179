/**
 * The landing queue's throughput (issue 7, acceptance 3): the real queue
 * logic (src/autoland/queue.ts) against a simulated CI on a fake clock
 * (src/autoland/simulate.ts). 200 pull requests, each `land` graph taking
 * T, capacity for 8 at once, each pull request bad with probability p, and
 * 1% of runs failing for no reason (flaky). A serial queue tests one pull
 * request at a time on the base; Tower batches, speculates and bisects.
 * Medians over BENCH_SEEDS (101) seeds: one run is noisy.
 */
import { DEFAULT_QUEUE_CONFIG, type QueueConfig } from '../src/autoland/queue.js';
import { simulate } from '../src/autoland/simulate.js';
import { median } from './stats.js';

const SEEDS = Number(process.env.BENCH_SEEDS ?? 101);
const CAPACITY = 8;
const serial: QueueConfig = { minBatch: 1, maxBatch: 1, maxParallel: 1, infraRetries: 3 };
const tower: QueueConfig = { ...DEFAULT_QUEUE_CONFIG, maxParallel: CAPACITY };

function measure(config: QueueConfig, failureRate: number) {
  const perT: number[] = [];
  const runsPerLanded: number[] = [];
  for (let seed = 1; seed <= SEEDS; seed++) {
    const outcome = simulate(
      { prs: 200, ciDuration: 1, failureRate, flakyRate: 0.01, capacity: CAPACITY, seed },
      config,
    );
    if (!outcome.landedOnlyTested) throw new Error('the queue landed an untested commit');
    if (outcome.landed.length + outcome.sentBack.length !== 200) {
      throw new Error('the queue lost a pull request');
    }
    perT.push(outcome.landed.length / outcome.elapsed);
    runsPerLanded.push(outcome.ciRuns / Math.max(1, outcome.landed.length));
  }
  return { perT: median(perT), runsPerLanded: median(runsPerLanded) };
}

export function landingSuite(): string {
  const rows = [0, 0.05, 0.1, 0.2, 0.3].map((p) => {
    const s = measure(serial, p);
    const t = measure(tower, p);
    return `| ${(p * 100).toFixed(0)}% | ${s.perT.toFixed(2)} | ${t.perT.toFixed(2)} | ${(t.perT / s.perT).toFixed(1)}× | ${s.runsPerLanded.toFixed(2)} | ${t.runsPerLanded.toFixed(2)} |`;
  });
  return [
    '### Landing queue: landed pull requests per CI duration T',
    '',
    `200 pull requests, each bad with probability p, 1% of runs flaky, capacity for ${CAPACITY} land graphs at once; median of ${SEEDS} seeds. Every run checks that no untested commit landed and no pull request was lost.`,
    '',
    '| p | serial (landed/T) | Tower (landed/T) | Tower ÷ serial | serial (CI runs per landed) | Tower (CI runs per landed) |',
    '| ---: | ---: | ---: | ---: | ---: | ---: |',
    ...rows,
  ].join('\n');
}
