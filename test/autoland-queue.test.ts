import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_QUEUE_CONFIG,
  batchSize,
  initialQueue,
  positionOf,
  restoreQueue,
  step,
  type Effect,
  type QueueConfig,
  type QueueEvent,
  type QueueState,
  type QueuedPr,
} from '../src/autoland/queue.js';
import { random, simulate } from '../src/autoland/simulate.js';

const config: QueueConfig = { ...DEFAULT_QUEUE_CONFIG, maxParallel: 4, maxBatch: 4 };

const pr = (number: number, options: Partial<QueuedPr> = {}): QueuedPr => ({
  number,
  headSha: `head-${number}`,
  priority: 0,
  enqueuedAt: number,
  single: false,
  ...options,
});

/** Applies events in turn, keeping every effect. */
function run(
  events: QueueEvent[],
  start: QueueState = initialQueue('base'),
  using: QueueConfig = config,
) {
  let state = start;
  const effects: Effect[] = [];
  for (const event of events) {
    const next = step(state, event, using);
    state = next.state;
    effects.push(...next.effects);
  }
  return { state, effects };
}

/** A queue driven event by event: `go` applies events and returns their effects. */
function driven(using: QueueConfig) {
  const q = {
    state: initialQueue('base'),
    go: (events: QueueEvent[]): Effect[] => {
      const effects: Effect[] = [];
      for (const event of events) {
        const next = step(q.state, event, using);
        q.state = next.state;
        effects.push(...next.effects);
      }
      return effects;
    },
  };
  return q;
}

/** Enqueues while paused, then resumes: the pull requests are batched together. */
const enqueued = (...numbers: number[]): QueueEvent[] => [
  { type: 'pause' },
  ...numbers.map((n) => ({ type: 'enqueue' as const, pr: pr(n) })),
  { type: 'resume' },
];

const kinds = (effects: Effect[]) => effects.map((e) => e.kind);
const builds = (effects: Effect[]) =>
  effects.flatMap((e) =>
    e.kind === 'build' ? [{ batch: e.batch, onto: e.onto, prs: e.prs }] : [],
  );

describe('the landing queue', () => {
  it('lands the scenario of the issue: one bad pull request, and a pair that fails together', () => {
    const outcome = simulate(
      {
        prs: 10,
        ciDuration: 1,
        failureRate: 0,
        flakyRate: 0,
        capacity: 8,
        seed: 7,
        bad: [4],
        pairs: [[6, 8]],
      },
      { ...DEFAULT_QUEUE_CONFIG, maxParallel: 8 },
    );
    expect(outcome.landed.sort((a, b) => a - b)).toEqual([1, 2, 3, 5, 6, 7, 9, 10]);
    expect(outcome.sentBack.sort((a, b) => a - b)).toEqual([4, 8]);
    expect(outcome.landedOnlyTested).toBe(true);
    // In queue order: #6 lands before #8, so #8, the later of the pair, is the one sent back.
    expect(outcome.landed).toEqual([1, 2, 3, 5, 6, 7, 9, 10]);
    // Every commit the base got holds only pull requests that landed.
    for (const commit of outcome.baseHistory) {
      expect(commit.prs.every((n) => outcome.landed.includes(n))).toBe(true);
    }
  });

  it('never lands an untested combination, and never loses a pull request', () => {
    fc.assert(
      fc.property(
        fc.record({
          prs: fc.integer({ min: 1, max: 30 }),
          failureRate: fc.constantFrom(0, 0.05, 0.2, 0.5),
          flakyRate: fc.constantFrom(0, 0.05),
          capacity: fc.integer({ min: 1, max: 8 }),
          maxParallel: fc.integer({ min: 1, max: 8 }),
          maxBatch: fc.integer({ min: 1, max: 8 }),
          seed: fc.integer(),
          pair: fc.option(
            fc.tuple(fc.integer({ min: 1, max: 30 }), fc.integer({ min: 1, max: 30 })),
          ),
        }),
        (s) => {
          const pairs: [number, number][] =
            s.pair && s.pair[0] < s.pair[1] && s.pair[1] <= s.prs ? [[s.pair[0], s.pair[1]]] : [];
          const outcome = simulate(
            {
              prs: s.prs,
              ciDuration: 1,
              failureRate: s.failureRate,
              flakyRate: s.flakyRate,
              capacity: s.capacity,
              seed: s.seed,
              pairs,
            },
            { minBatch: 1, maxBatch: s.maxBatch, maxParallel: s.maxParallel, infraRetries: 3 },
          );
          expect(outcome.landedOnlyTested).toBe(true);
          // The queue lands in order: nothing overtakes a pull request queued before it.
          expect(outcome.landed).toEqual([...outcome.landed].sort((a, b) => a - b));
          const all = [...outcome.landed, ...outcome.sentBack].sort((a, b) => a - b);
          expect(all).toEqual(Array.from({ length: s.prs }, (_, i) => i + 1));
          for (const [a, b] of pairs) {
            expect(outcome.landed.includes(a) && outcome.landed.includes(b)).toBe(false);
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it('builds each batch on the one below, and lands only a batch on the tip once it passed', () => {
    const { state, effects } = run(enqueued(1, 2, 3, 4));
    // The failure rate a new queue assumes (3%) gives pairs.
    expect(builds(effects)).toEqual([{ batch: 1, onto: 'base', prs: [1, 2] }]);
    expect(state.batches.map((b) => [b.id, b.parent])).toEqual([
      [1, null],
      [2, 1],
    ]);
    const next = run(
      [
        { type: 'built', batch: 1, stagingSha: 's1' },
        { type: 'built', batch: 2, stagingSha: 's2' },
        { type: 'tested', batch: 2, result: 'success' },
      ],
      state,
    );
    expect(builds(next.effects)).toEqual([{ batch: 2, onto: 's1', prs: [3, 4] }]);
    expect(kinds(next.effects)).not.toContain('land');
    const landed = run(
      [
        { type: 'tested', batch: 1, result: 'success' },
        { type: 'landed', batch: 1 },
      ],
      next.state,
    );
    expect(landed.effects).toContainEqual({
      kind: 'land',
      batch: 1,
      stagingSha: 's1',
      prs: [1, 2],
    });
    expect(landed.effects).toContainEqual({ kind: 'landed', batch: 1, prs: [1, 2], sha: 's1' });
    expect(landed.effects).toContainEqual({
      kind: 'land',
      batch: 2,
      stagingSha: 's2',
      prs: [3, 4],
    });
    expect(landed.state.baseSha).toBe('s1');
  });

  it('counts the second half of a failed batch failed without testing it again, and sends it back once the first lands', () => {
    // Triples, one land graph at a time.
    const triples: QueueConfig = { ...config, minBatch: 3, maxBatch: 3, maxParallel: 1 };
    const { state } = run(enqueued(1, 2, 3), initialQueue('base'), triples);
    const failing = run(
      [
        { type: 'built', batch: 1, stagingSha: 's1' },
        { type: 'tested', batch: 1, result: 'failure', failures: ['test'] },
      ],
      state,
      triples,
    );
    // The first half goes on the base; the second on top of it is the failed commit again.
    expect(builds(failing.effects)).toEqual([{ batch: 2, onto: 'base', prs: [1, 2] }]);
    const second = failing.state.batches.find((b) => b.id === 3)!;
    expect(second).toMatchObject({ parent: 2, state: 'failed', inferred: true, stagingSha: 's1' });
    const sent = run(
      [
        { type: 'built', batch: 2, stagingSha: 'h1' },
        { type: 'tested', batch: 2, result: 'success' },
        { type: 'landed', batch: 2 },
      ],
      failing.state,
      triples,
    );
    expect(sent.effects).toContainEqual({ kind: 'landed', batch: 2, prs: [1, 2], sha: 'h1' });
    expect(sent.effects).toContainEqual({
      kind: 'sent-back',
      pr: 3,
      reason: 'its land graph failed',
      failures: ['test'],
    });
    expect(builds(sent.effects)).toEqual([]);
    expect(sent.state.line).toEqual([]);
  });

  it('tests both answers to a failure at once, and what comes after on each', () => {
    const narrow: QueueConfig = { ...config, maxBatch: 2, maxParallel: 8 };
    const q = driven(narrow);
    const go = q.go;
    go(enqueued(...Array.from({ length: 16 }, (_, i) => i + 1)));
    go([
      { type: 'built', batch: 1, stagingSha: 's1' },
      { type: 'built', batch: 2, stagingSha: 's2' },
      { type: 'tested', batch: 1, result: 'failure', failures: ['test'] },
    ]);
    const shape = () =>
      q.state.batches.map((b) => ({
        prs: b.prs.map((p) => p.number),
        on:
          b.parent === null
            ? 'tip'
            : q.state.batches.find((x) => x.id === b.parent)!.prs[0]!.number,
        skips: b.skips,
      }));
    // #1 on the tip; #2 without #1 (if #1 fails); and #3 on #1 without #2 (if #2 fails).
    expect(shape()).toEqual(
      expect.arrayContaining([
        { prs: [1], on: 'tip', skips: [] },
        { prs: [2], on: 1, skips: [] },
        { prs: [2], on: 'tip', skips: [1] },
        { prs: [3, 4], on: 1, skips: [2] },
        { prs: [3, 4], on: 2, skips: [] },
      ]),
    );
    const id = (prs: number[], skips: number[]) =>
      q.state.batches.find(
        (b) => b.prs.map((p) => p.number).join() === prs.join() && b.skips.join() === skips.join(),
      )!.id;
    // #1 fails alone, while #2 is in test without it: #1 goes back; #2 lands, then #3 and #4.
    const alone = id([2], [1]);
    const after = q.state.batches.find((b) => b.parent === alone)!.id;
    const deepest = Math.max(...q.state.batches.map((b) => b.prs.at(-1)!.number));
    const effects = go([
      { type: 'built', batch: id([1], []), stagingSha: 'a' },
      { type: 'built', batch: alone, stagingSha: 'b' },
      { type: 'built', batch: after, stagingSha: 'c' },
      { type: 'tested', batch: after, result: 'success' },
      { type: 'tested', batch: id([1], []), result: 'failure', failures: ['test/1'] },
    ]);
    // #1 was sent back: the guess without it came true, and the queue goes on on top of it,
    // further than while it was one guess of two.
    expect(builds(effects)).toContainEqual({ batch: expect.any(Number), onto: 'c', prs: [5, 6] });
    expect(deepest).toBeLessThan(11);
    expect(q.state.batches.some((b) => b.prs[0]!.number === 11)).toBe(true);
    effects.push(
      ...go([
        { type: 'tested', batch: alone, result: 'success' },
        { type: 'landed', batch: alone },
        { type: 'landed', batch: after },
      ]),
    );
    expect(effects).toContainEqual({
      kind: 'sent-back',
      pr: 1,
      reason: 'its land graph failed',
      failures: ['test/1'],
    });
    expect(effects.filter((e) => e.kind === 'landed').map((e) => e.prs)).toEqual([[2], [3, 4]]);
  });

  it('calls a failure no test can reproduce flaky, and lands everything', () => {
    const narrow: QueueConfig = { ...config, maxParallel: 8 };
    const q = driven(narrow);
    const go = q.go;
    go(enqueued(1, 2));
    go([
      { type: 'built', batch: 1, stagingSha: 's1' },
      { type: 'tested', batch: 1, result: 'failure', failures: ['lint'] },
    ]);
    const first = q.state.batches.find((b) => b.prs[0]!.number === 1 && b.state === 'building')!;
    const alone = q.state.batches.find((b) => b.skips.join() === '1')!;
    // Both halves pass on their own: #2 is tested again on what lands, to tell.
    const effects = go([
      { type: 'built', batch: first.id, stagingSha: 'h1' },
      { type: 'built', batch: alone.id, stagingSha: 'h2' },
      { type: 'tested', batch: alone.id, result: 'success' },
      { type: 'tested', batch: first.id, result: 'success' },
      { type: 'landed', batch: first.id },
    ]);
    expect(kinds(effects)).not.toContain('sent-back');
    const again = q.state.batches.find((b) => b.prs[0]!.number === 2 && b.state === 'building')!;
    expect(builds(effects)).toContainEqual({ batch: again.id, onto: 'h1', prs: [2] });
    const rest = go([
      { type: 'built', batch: again.id, stagingSha: 'h3' },
      { type: 'tested', batch: again.id, result: 'success' },
      { type: 'landed', batch: again.id },
    ]);
    expect(rest).toContainEqual({ kind: 'landed', batch: again.id, prs: [2], sha: 'h3' });
    expect(rest).toContainEqual({ kind: 'flaky', prs: [1, 2], failures: ['lint'] });
  });

  it('waits for the test of a half alone when the other half lands first, then tells flaky from failing', () => {
    const narrow: QueueConfig = { ...config, maxParallel: 8 };
    for (const alonePasses of [true, false]) {
      const q = driven(narrow);
      const go = q.go;
      go(enqueued(1, 2));
      go([
        { type: 'built', batch: 1, stagingSha: 's1' },
        { type: 'tested', batch: 1, result: 'failure', failures: ['lint'] },
      ]);
      const first = q.state.batches.find((b) => b.prs[0]!.number === 1 && b.state === 'building')!;
      const alone = q.state.batches.find((b) => b.skips.join() === '1')!;
      // #1 lands while #2 is still in test without it: that test is kept for its answer.
      const landed = go([
        { type: 'built', batch: first.id, stagingSha: 'h1' },
        { type: 'built', batch: alone.id, stagingSha: 'h2' },
        { type: 'tested', batch: first.id, result: 'success' },
        { type: 'landed', batch: first.id },
      ]);
      expect(kinds(landed)).not.toContain('sent-back');
      expect(q.state.batches.find((b) => b.id === alone.id)).toMatchObject({ evidence: true });
      const answer = go([
        alonePasses
          ? { type: 'tested', batch: alone.id, result: 'success' }
          : { type: 'tested', batch: alone.id, result: 'failure', failures: ['lint'] },
      ]);
      if (alonePasses) {
        // It passes alone: tested again on what landed, not sent back.
        expect(kinds(answer)).not.toContain('sent-back');
        expect(builds(answer)).toContainEqual({ batch: expect.any(Number), onto: 'h1', prs: [2] });
      } else {
        expect(answer).toContainEqual({
          kind: 'sent-back',
          pr: 2,
          reason: 'its land graph failed',
          failures: ['lint'],
        });
      }
    }
  });

  it('drops a pull request that no longer merges, naming the conflict, and builds the rest again', () => {
    const { state } = run(enqueued(1, 2, 3));
    const { effects } = run([{ type: 'conflict', batch: 1, prs: [2], detail: 'src/a.ts' }], state);
    expect(effects).toContainEqual({
      kind: 'sent-back',
      pr: 2,
      reason: 'it does not merge: src/a.ts',
      failures: [],
    });
    expect(builds(effects)).toEqual([{ batch: 3, onto: 'base', prs: [1, 3] }]);
  });

  it('sends no one back for a conflict on a guess, and builds it again once it is on what landed', () => {
    const { state } = run(enqueued(1, 2, 3, 4));
    const guessed = run(
      [
        { type: 'built', batch: 1, stagingSha: 's1' },
        // #4 does not merge onto #1 and #2, which have not landed yet.
        { type: 'conflict', batch: 2, prs: [4], detail: 'src/a.ts' },
      ],
      state,
    );
    expect(kinds(guessed.effects)).not.toContain('sent-back');
    expect(guessed.state.batches.find((b) => b.id === 2)).toMatchObject({
      state: 'failed',
      conflict: 'src/a.ts',
    });
    // The guesses go on without #4.
    expect(builds(guessed.effects)).toContainEqual({
      batch: expect.any(Number),
      onto: 's1',
      prs: [3],
    });
    const landed = run(
      [
        { type: 'tested', batch: 1, result: 'success' },
        { type: 'landed', batch: 1 },
      ],
      guessed.state,
    );
    expect(builds(landed.effects)).toContainEqual({ batch: 2, onto: 's1', prs: [3, 4] });
    const sent = run([{ type: 'conflict', batch: 2, prs: [4], detail: 'src/a.ts' }], landed.state);
    expect(sent.effects).toContainEqual({
      kind: 'sent-back',
      pr: 4,
      reason: 'it does not merge: src/a.ts',
      failures: [],
    });
  });

  it('takes a pull request out on dequeue, whether waiting or in a batch', () => {
    const { state } = run(enqueued(1, 2, 3, 4, 5, 6, 7, 8, 9, 10));
    // Four pairs in test, one on the other: eight pull requests are ahead of #9.
    expect(positionOf(state, 9)).toEqual({ kind: 'waiting', place: 8 });
    expect(positionOf(state, 5)).toMatchObject({ kind: 'batch', index: 2 });
    const waiting = run([{ type: 'dequeue', pr: 9, reason: 'a new push' }], state);
    expect(waiting.effects).toEqual([{ kind: 'dequeued', pr: 9, reason: 'a new push' }]);
    const inBatch = run([{ type: 'dequeue', pr: 2, reason: 'closed' }], waiting.state);
    expect(kinds(inBatch.effects)).toEqual([
      'cancel',
      'cancel',
      'cancel',
      'cancel',
      'dequeued',
      'build',
    ]);
    expect(builds(inBatch.effects)).toEqual([{ batch: 5, onto: 'base', prs: [1, 3] }]);
    expect(positionOf(inBatch.state, 2)).toBeUndefined();
    // Unknown pull requests and duplicates change nothing.
    expect(run([{ type: 'dequeue', pr: 99, reason: 'x' }], inBatch.state).effects).toEqual([]);
    expect(run([{ type: 'enqueue', pr: pr(1) }], inBatch.state).state.queue).toEqual(
      inBatch.state.queue,
    );
  });

  it('builds everything again when the base moves outside the queue', () => {
    const { state } = run([
      { type: 'enqueue', pr: pr(1) },
      { type: 'built', batch: 1, stagingSha: 's1' },
    ]);
    const { effects, state: after } = run([{ type: 'base-moved', sha: 'hotfix' }], state);
    expect(builds(effects)).toEqual([{ batch: 2, onto: 'hotfix', prs: [1] }]);
    expect(after.baseSha).toBe('hotfix');
    // A fast-forward whose answer was lost: the move is to the batch's own commit.
    const landing = run(
      [
        { type: 'built', batch: 2, stagingSha: 's2' },
        { type: 'tested', batch: 2, result: 'success' },
        { type: 'base-moved', sha: 's2' },
      ],
      after,
    );
    expect(landing.effects).toContainEqual({ kind: 'landed', batch: 2, prs: [1], sha: 's2' });
  });

  it('tests again after an infrastructure failure, then pauses saying why', () => {
    let { state } = run([
      { type: 'enqueue', pr: pr(1) },
      { type: 'built', batch: 1, stagingSha: 's1' },
    ]);
    for (let i = 0; i < config.infraRetries; i++) {
      const again = run([{ type: 'tested', batch: 1, result: 'infra' }], state);
      expect(kinds(again.effects)).toEqual(['test']);
      state = again.state;
    }
    const stuck = run([{ type: 'tested', batch: 1, result: 'infra' }], state);
    expect(stuck.state.mode).toBe('paused');
    expect(stuck.effects[0]).toMatchObject({
      kind: 'paused',
      reason: expect.stringContaining('infrastructure'),
    });
    expect(stuck.effects.some((e) => e.kind === 'sent-back')).toBe(false);
    // Resumed, the batch is built and tested afresh (the graphs that could not run are done with).
    const resumed = run([{ type: 'resume' }], stuck.state);
    expect(builds(resumed.effects)).toEqual([{ batch: 2, onto: 'base', prs: [1] }]);
  });

  it('lets a landing finish before taking its pull requests out, and takes them out if it is refused', () => {
    const { state } = run([...enqueued(1, 2), { type: 'built', batch: 1, stagingSha: 's1' }]);
    const landing = run([{ type: 'tested', batch: 1, result: 'success' }], state);
    expect(kinds(landing.effects)).toContain('land');
    // Closed while the fast-forward is under way: it may have gone through.
    const closed = run([{ type: 'dequeue', pr: 2, reason: 'it was closed' }], landing.state);
    expect(closed.effects).toEqual([]);
    // It did: both landed, as tested.
    const landed = run([{ type: 'base-moved', sha: 's1' }], closed.state);
    expect(landed.effects).toContainEqual({ kind: 'landed', batch: 1, prs: [1, 2], sha: 's1' });
    expect(kinds(landed.effects)).not.toContain('dequeued');
    // It did not (the base moved first): #2 leaves, #1 is built again on the new tip.
    const moved = run([{ type: 'base-moved', sha: 'hotfix' }], closed.state);
    expect(moved.effects).toContainEqual({ kind: 'dequeued', pr: 2, reason: 'it was closed' });
    expect(builds(moved.effects)).toEqual([{ batch: 2, onto: 'hotfix', prs: [1] }]);
    // GitHub refused it, the base where it was: the queue pauses saying why, and #2 leaves.
    const refused = run(
      [{ type: 'land-refused', batch: 1, reason: 'protected branch' }],
      closed.state,
    );
    expect(refused.state.mode).toBe('paused');
    expect(refused.state.pausedBecause).toContain('protected branch');
    expect(refused.effects).toContainEqual({ kind: 'dequeued', pr: 2, reason: 'it was closed' });
  });

  it('keeps the order of the line when the base moves, and drains what was in it', () => {
    const { state } = run([
      { type: 'enqueue', pr: pr(1) },
      { type: 'enqueue', pr: pr(2, { priority: 5 }) },
    ]);
    // #2 has the higher priority but was taken after #1: #1 stays ahead.
    expect(state.line.map((p) => p.number)).toEqual([1, 2]);
    const moved = run([{ type: 'base-moved', sha: 'hotfix' }], state);
    expect(builds(moved.effects)[0]).toMatchObject({ onto: 'hotfix', prs: [1, 2] });
    expect(moved.state.line.map((p) => p.number)).toEqual([1, 2]);
    // Draining goes on with what was in the line.
    const draining = run([{ type: 'drain' }, { type: 'base-moved', sha: 'later' }], state);
    expect(draining.state.mode).toBe('draining');
    expect(builds(draining.effects)[0]).toMatchObject({ onto: 'later', prs: [1, 2] });
  });

  it('pauses, resumes and drains', () => {
    const paused = run([
      { type: 'pause', reason: 'release' },
      { type: 'enqueue', pr: pr(1) },
    ]);
    expect(paused.effects).toEqual([]);
    expect(paused.state).toMatchObject({ mode: 'paused', pausedBecause: 'release' });
    const resumed = run([{ type: 'resume' }], paused.state);
    expect(builds(resumed.effects)).toEqual([{ batch: 1, onto: 'base', prs: [1] }]);
    // Passed but paused: it does not land until resumed.
    const held = run(
      [
        { type: 'built', batch: 1, stagingSha: 's1' },
        { type: 'tested', batch: 1, result: 'success' },
        { type: 'pause' },
      ],
      resumed.state,
    );
    const draining = run(
      [{ type: 'drain' }, { type: 'enqueue', pr: pr(2) }],
      run([{ type: 'resume' }], held.state).state,
    );
    expect(draining.state.mode).toBe('draining');
    const drained = run([{ type: 'landed', batch: 1 }], draining.state);
    expect(drained.effects).toContainEqual({ kind: 'paused', reason: 'drained' });
    expect(drained.state.queue.map((p) => p.number)).toEqual([2]);
    expect(run([{ type: 'drain' }], drained.state).state.mode).toBe('paused');
  });

  it('takes higher priorities first, and lands a single pull request alone', () => {
    const { effects } = run([
      { type: 'pause' },
      { type: 'enqueue', pr: pr(1) },
      { type: 'enqueue', pr: pr(2, { single: true }) },
      { type: 'enqueue', pr: pr(3) },
      { type: 'enqueue', pr: pr(4, { priority: 5 }) },
      { type: 'resume' },
    ]);
    expect(builds(effects)).toEqual([{ batch: 1, onto: 'base', prs: [4, 1] }]);
    const { state } = run([
      { type: 'pause' },
      { type: 'enqueue', pr: pr(1) },
      { type: 'enqueue', pr: pr(2, { single: true }) },
      { type: 'resume' },
    ]);
    expect(state.batches.map((b) => b.prs.map((p) => p.number))).toEqual([[1], [2]]);
  });

  it('sizes batches about 1/(2.6√p), pairs at least until 40% fail, within the bounds', () => {
    expect(batchSize(0, config)).toBe(4);
    expect(batchSize(0.005, config)).toBe(4);
    expect(batchSize(0.01, { ...config, maxBatch: 8 })).toBe(4);
    expect(batchSize(0.02, config)).toBe(3);
    expect(batchSize(0.05, config)).toBe(2);
    expect(batchSize(0.3, config)).toBe(2);
    expect(batchSize(0.5, config)).toBe(1);
    expect(batchSize(0.1, { ...config, maxBatch: 1 })).toBe(1);
    expect(batchSize(1, { ...config, minBatch: 2 })).toBe(2);
  });

  it('reads a queue saved as a chain by an earlier Tower, and lands what was in flight', () => {
    const batch = (id: number, prs: number[], onto: string, stagingSha: string) => ({
      id,
      prs: prs.map((n) => pr(n)),
      state: 'testing',
      onto,
      stagingSha,
      attempts: 0,
      failures: [],
      split: null,
    });
    const saved = {
      mode: 'running',
      pausedBecause: null,
      baseSha: 'base',
      queue: [pr(5)],
      batches: [batch(1, [1, 2], 'base', 's1'), batch(2, [3, 4], 's1', 's2')],
      nextBatchId: 3,
      window: 2,
      failureRate: 0.03,
    };
    const state = restoreQueue(saved);
    expect(state.line.map((p) => p.number)).toEqual([1, 2, 3, 4]);
    expect(state.batches.map((b) => [b.id, b.parent])).toEqual([
      [1, null],
      [2, 1],
    ]);
    const { effects } = run(
      [
        { type: 'tested', batch: 2, result: 'success' },
        { type: 'tested', batch: 1, result: 'success' },
        { type: 'landed', batch: 1 },
        { type: 'landed', batch: 2 },
      ],
      state,
    );
    expect(effects.filter((e) => e.kind === 'landed').map((e) => e.prs)).toEqual([
      [1, 2],
      [3, 4],
    ]);
    // What waited is tested on top of what was in flight.
    expect(builds(effects)).toContainEqual({ batch: 3, onto: 's2', prs: [5] });
    expect(restoreQueue(state)).toBe(state);
  });

  it('simulates the same run from the same seed', () => {
    const a = random(42);
    const b = random(42);
    expect([a(), a(), a()]).toEqual([b(), b(), b()]);
  });
});
