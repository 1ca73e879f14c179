/**
 * The landing queue against a simulated CI, on a fake clock: what the
 * benchmark (bench/landing.ts) and the property tests drive. Pure: the
 * randomness comes from a seed. Each `land` graph takes `ciDuration`, at
 * most `capacity` run at once; a staging commit fails when it holds a bad
 * pull request (one that fails on its own, or the later of a pair that
 * fails together), or, with probability `flakyRate`, for no reason of its
 * own. Staging commits hold their batch's pull requests and those of every
 * batch below them, as the real ones do.
 */
import { initialQueue, step, type Effect, type QueueConfig, type QueueState } from './queue.js';

export type Scenario = {
  prs: number;
  ciDuration: number;
  failureRate: number;
  flakyRate: number;
  capacity: number;
  seed: number;
  /** Pairs of pull requests that pass alone but fail together: [earlier, later]. */
  pairs?: [number, number][];
  /** Pull requests that fail on their own; by default drawn with `failureRate`. */
  bad?: number[];
};

export type Outcome = {
  landed: number[];
  sentBack: number[];
  ciRuns: number;
  elapsed: number;
  /** Every commit the base branch was fast-forwarded to, with the pull requests it holds. */
  baseHistory: { sha: string; prs: number[] }[];
  /** Whether every commit the base got was one whose land graph passed. */
  landedOnlyTested: boolean;
  flaky: number;
};

/** A small seeded generator (mulberry32): the same seed gives the same run. */
export function random(seed: number): () => number {
  let t = seed >>> 0;
  return () => {
    t = (t + 0x6d2b79f5) >>> 0;
    let r = Math.imul(t ^ (t >>> 15), 1 | t);
    r = (r + Math.imul(r ^ (r >>> 7), 61 | r)) ^ r;
    return ((r ^ (r >>> 14)) >>> 0) / 4294967296;
  };
}

export function simulate(scenario: Scenario, config: QueueConfig): Outcome {
  const rand = random(scenario.seed);
  const bad = new Set(
    scenario.bad ??
      Array.from({ length: scenario.prs }, (_, i) => i + 1).filter(
        () => rand() < scenario.failureRate,
      ),
  );
  const pairs = scenario.pairs ?? [];
  /** Staging commit → the pull requests it holds (and the base's). */
  const contents = new Map<string, number[]>([['base-0', []]]);
  const passedShas = new Set<string>(['base-0']);
  let state: QueueState = initialQueue('base-0');
  let now = 0;
  let shaCounter = 0;
  let ciRuns = 0;
  let flaky = 0;
  const landed: number[] = [];
  const sentBack: number[] = [];
  const baseHistory: Outcome['baseHistory'] = [];
  let landedOnlyTested = true;
  /** Tests running and waiting for a slot: [done at, batch, sha]. */
  let running: { at: number; batch: number; sha: string }[] = [];
  const waiting: { batch: number; sha: string }[] = [];
  const pendingEffects: Effect[] = [];

  const apply = (event: Parameters<typeof step>[1]) => {
    const next = step(state, event, config);
    state = next.state;
    pendingEffects.push(...next.effects);
  };

  const fails = (sha: string) => {
    const prs = new Set(contents.get(sha));
    if ([...prs].some((pr) => bad.has(pr))) return true;
    return pairs.some(([a, b]) => prs.has(a) && prs.has(b));
  };

  const drain = () => {
    while (pendingEffects.length > 0) {
      const effect = pendingEffects.shift()!;
      switch (effect.kind) {
        case 'build': {
          const sha = `staging-${++shaCounter}`;
          contents.set(sha, [...contents.get(effect.onto)!, ...effect.prs]);
          apply({ type: 'built', batch: effect.batch, stagingSha: sha });
          break;
        }
        case 'test':
          waiting.push({ batch: effect.batch, sha: effect.stagingSha });
          break;
        case 'cancel':
          running = running.filter((r) => r.batch !== effect.batch);
          for (let i = waiting.length - 1; i >= 0; i--) {
            if (waiting[i]!.batch === effect.batch) waiting.splice(i, 1);
          }
          break;
        case 'land':
          if (!passedShas.has(effect.stagingSha)) landedOnlyTested = false;
          baseHistory.push({ sha: effect.stagingSha, prs: contents.get(effect.stagingSha)! });
          apply({ type: 'landed', batch: effect.batch });
          break;
        case 'landed':
          landed.push(...effect.prs);
          break;
        case 'sent-back':
          sentBack.push(effect.pr);
          break;
        case 'flaky':
          flaky++;
          break;
        case 'dequeued':
        case 'paused':
          break;
      }
    }
  };
  const start = () => {
    while (running.length < scenario.capacity && waiting.length > 0) {
      const next = waiting.shift()!;
      ciRuns++;
      running.push({ at: now + scenario.ciDuration, ...next });
    }
  };

  for (let pr = 1; pr <= scenario.prs; pr++) {
    apply({
      type: 'enqueue',
      pr: { number: pr, headSha: `head-${pr}`, priority: 0, enqueuedAt: pr, single: false },
    });
  }
  drain();
  start();
  while (running.length > 0) {
    running.sort((a, b) => a.at - b.at);
    now = running[0]!.at;
    // Everything that ends at this moment is heard before anything new starts.
    while (running[0]?.at === now) {
      const done = running.shift()!;
      const failed = fails(done.sha) || rand() < scenario.flakyRate;
      if (!failed) passedShas.add(done.sha);
      apply({ type: 'tested', batch: done.batch, result: failed ? 'failure' : 'success' });
      drain();
    }
    start();
  }
  return { landed, sentBack, ciRuns, elapsed: now, baseHistory, landedOnlyTested, flaky };
}
