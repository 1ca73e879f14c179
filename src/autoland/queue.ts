/**
 * The landing queue as a pure state machine (DESIGN.md "Landing queue"):
 * one queue per repository and base branch. `step(state, event)` returns
 * the new state and the effects to carry out (build a staging commit, run
 * its `land` graph, fast-forward the base, cancel, report); the runner
 * (src/autoland/runner.ts) carries them out and feeds back what happened.
 *
 * The chain. Batches in flight form a chain: the first is built on the base
 * branch's tip, each next one on the staging commit of the one below it
 * (speculation). Only the first may land, and only once its `land` graph
 * passed: the base is fast-forwarded to exactly its staging commit, so
 * every commit on the base branch is one whose graph passed.
 *
 * Throughput:
 * - Batch size follows the observed failure rate p (an average over recent
 *   pull requests): about 1/(2√p) pull requests, within the configured
 *   bounds (half the classic 1/√p: a failure also costs what is above it).
 * - The window (batches in flight) grows by one when a batch lands and
 *   halves when one fails, between 1 and `maxParallel`.
 * - A failed batch waits until it is first in the chain (what is above it
 *   is cancelled at once: it was built on a commit that will not land).
 *   Then it is bisected in the chain: its first half is built on the base,
 *   its second half on top of the first, both tested at once, and the
 *   queue goes on on top of them. A failing half is bisected again; a
 *   pull request failing alone on top of everything before it is sent
 *   back. So the queue lands in order: of two pull requests that fail
 *   together, the later is sent back. When both halves pass, the failure
 *   could not be reproduced: it was flaky, and everything lands.
 * - An infrastructure failure (the graph could not run) tests the batch
 *   again, failing no one, up to `infraRetries` times; then the queue
 *   pauses, saying why.
 * - Pull requests wait in priority order (higher first), then by age; a
 *   `single` pull request is always a batch of its own.
 *
 * Modes: `running`; `paused` (nothing starts and nothing lands; batches in
 * flight keep their results); `draining` (nothing new starts, what is in
 * flight finishes and lands, then the queue is `paused`).
 */

export type QueueConfig = {
  minBatch: number;
  maxBatch: number;
  /** Land graphs at once, at most: the window's bound. */
  maxParallel: number;
  infraRetries: number;
};

export const DEFAULT_QUEUE_CONFIG: QueueConfig = {
  minBatch: 1,
  maxBatch: 8,
  maxParallel: 4,
  infraRetries: 3,
};

export type QueuedPr = {
  number: number;
  headSha: string;
  priority: number;
  /** When it was enqueued (ms): the order among equal priorities. */
  enqueuedAt: number;
  single: boolean;
};

export type BatchState = 'building' | 'testing' | 'passed' | 'landing' | 'failed';

export type Batch = {
  id: number;
  prs: QueuedPr[];
  state: BatchState;
  /** The commit it is built on: the base tip, or the staging commit of the batch below. */
  onto: string | null;
  stagingSha: string | null;
  /** Infrastructure retries spent. */
  attempts: number;
  /** When its `land` graph failed: the jobs that failed, for the pull requests sent back. */
  failures: string[];
  /**
   * A half of a failed batch: which one, and the failed batch's pull
   * requests and failing jobs. The second half landing means the whole
   * combination passed: the failure was flaky.
   */
  split: { of: number; half: 1 | 2; prs: number[]; failures: string[] } | null;
};

export type QueueMode = 'running' | 'paused' | 'draining';

export type QueueState = {
  mode: QueueMode;
  /** Why it is paused, when Tower paused it. */
  pausedBecause: string | null;
  baseSha: string;
  queue: QueuedPr[];
  batches: Batch[];
  nextBatchId: number;
  window: number;
  /** Average failure of recent pull requests, 0 to 1. */
  failureRate: number;
};

export type QueueEvent =
  | { type: 'enqueue'; pr: QueuedPr }
  | { type: 'dequeue'; pr: number; reason: string }
  | { type: 'base-moved'; sha: string }
  | { type: 'built'; batch: number; stagingSha: string }
  /** Some pull requests no longer merge onto the batch's base: they are sent back. */
  | { type: 'conflict'; batch: number; prs: number[]; detail: string }
  | { type: 'tested'; batch: number; result: 'success' | 'failure' | 'infra'; failures?: string[] }
  | { type: 'landed'; batch: number }
  | { type: 'pause'; reason?: string }
  | { type: 'resume' }
  | { type: 'drain' };

export type Effect =
  /** Build a staging commit: `prs` merged, in order, onto `onto`. */
  | { kind: 'build'; batch: number; onto: string; prs: number[] }
  | { kind: 'test'; batch: number; stagingSha: string; prs: number[] }
  | { kind: 'land'; batch: number; stagingSha: string; prs: number[] }
  /** A batch left the chain before landing: its graph and staging ref go. */
  | { kind: 'cancel'; batch: number }
  | { kind: 'landed'; batch: number; prs: number[]; sha: string }
  | { kind: 'sent-back'; pr: number; reason: string; failures: string[] }
  | { kind: 'dequeued'; pr: number; reason: string }
  | { kind: 'flaky'; prs: number[]; failures: string[] }
  | { kind: 'paused'; reason: string };

/** How much one pull request's outcome moves the failure rate. */
const RATE_WEIGHT = 0.1;
/** The failure rate a new queue assumes. */
export const INITIAL_FAILURE_RATE = 0.03;

export function initialQueue(
  baseSha: string,
  config: QueueConfig = DEFAULT_QUEUE_CONFIG,
): QueueState {
  return {
    mode: 'running',
    pausedBecause: null,
    baseSha,
    queue: [],
    batches: [],
    nextBatchId: 1,
    window: Math.min(2, config.maxParallel),
    failureRate: INITIAL_FAILURE_RATE,
  };
}

/**
 * About 1/(2√p) pull requests a batch, within the bounds: half the classic
 * 1/√p, because the queue keeps order, so a failed batch also costs the
 * batches tested on top of it.
 */
export function batchSize(failureRate: number, config: QueueConfig): number {
  const ideal = failureRate <= 0 ? config.maxBatch : Math.round(1 / (2 * Math.sqrt(failureRate)));
  return Math.max(config.minBatch, Math.min(config.maxBatch, ideal));
}

const byPriority = (a: QueuedPr, b: QueuedPr) =>
  b.priority - a.priority || a.enqueuedAt - b.enqueuedAt || a.number - b.number;

/** Where a pull request is: waiting (its place, 0 first), in a batch, or not queued. */
export function positionOf(
  state: QueueState,
  pr: number,
): { kind: 'waiting'; place: number } | { kind: 'batch'; batch: Batch; index: number } | undefined {
  const index = state.batches.findIndex((b) => b.prs.some((p) => p.number === pr));
  if (index >= 0) return { kind: 'batch', batch: state.batches[index]!, index };
  const place = [...state.queue].sort(byPriority).findIndex((p) => p.number === pr);
  return place >= 0 ? { kind: 'waiting', place } : undefined;
}

type Draft = { state: QueueState; effects: Effect[]; config: QueueConfig };

function clone(state: QueueState): QueueState {
  return {
    ...state,
    queue: [...state.queue],
    batches: state.batches.map((b) => ({ ...b, prs: [...b.prs], failures: [...b.failures] })),
  };
}

function rate(draft: Draft, outcomes: readonly number[]) {
  for (const failed of outcomes) {
    draft.state.failureRate = draft.state.failureRate * (1 - RATE_WEIGHT) + RATE_WEIGHT * failed;
  }
}

/** Back to the queue, ahead of what came later: they keep their enqueue times. */
function requeue(draft: Draft, prs: readonly QueuedPr[]) {
  for (const pr of prs) draft.state.queue.push(pr);
}

/** Removes batches from `index` up, their pull requests (but `except`) back to the queue. */
function cancelFrom(draft: Draft, index: number, except: number | null = null) {
  const removed = draft.state.batches.splice(index);
  for (const batch of removed.reverse()) {
    draft.effects.push({ kind: 'cancel', batch: batch.id });
    requeue(
      draft,
      batch.prs.filter((pr) => pr.number !== except),
    );
  }
}

function newBatch(draft: Draft, prs: QueuedPr[], split: Batch['split'] = null): Batch {
  return {
    id: draft.state.nextBatchId++,
    prs,
    state: 'building',
    onto: null,
    stagingSha: null,
    attempts: 0,
    failures: [],
    split,
  };
}

const numbers = (prs: readonly QueuedPr[]) => prs.map((p) => p.number);

/** Starts what can start: builds whose base is known, new batches up to the window, the landing. */
function advance(draft: Draft) {
  const { state, config } = draft;
  const head = state.batches[0];
  // A failed batch first in the chain leaves it: alone, it is sent back; else a probe isolates.
  if (head && head.state === 'failed') {
    state.batches.shift();
    draft.effects.push({ kind: 'cancel', batch: head.id });
    if (head.prs.length === 1) {
      rate(draft, [1]);
      draft.effects.push({
        kind: 'sent-back',
        pr: head.prs[0]!.number,
        reason: 'its land graph failed',
        failures: head.failures,
      });
    } else {
      // Bisected in the chain: both halves tested at once, the second on top of the first.
      const half = Math.ceil(head.prs.length / 2);
      const split = { of: head.id, prs: numbers(head.prs), failures: head.failures };
      state.batches.unshift(
        newBatch(draft, head.prs.slice(0, half), { ...split, half: 1 }),
        newBatch(draft, head.prs.slice(half), { ...split, half: 2 }),
      );
    }
    advance(draft);
    return;
  }
  // New batches, on top of the chain, while the window allows and nothing in it has failed.
  if (state.mode === 'running') {
    while (
      state.batches.length < state.window &&
      state.queue.length > 0 &&
      !state.batches.some((b) => b.state === 'failed')
    ) {
      state.queue.sort(byPriority);
      const first = state.queue[0]!;
      let take: QueuedPr[];
      if (first.single) take = [first];
      else {
        const size = batchSize(state.failureRate, config);
        take = [];
        for (const pr of state.queue) {
          if (take.length >= size || pr.single) break;
          take.push(pr);
        }
      }
      state.queue = state.queue.filter((pr) => !take.includes(pr));
      state.batches.push(newBatch(draft, take));
    }
  }
  if (state.mode === 'paused') return;
  // Builds: a batch is built once what it goes on is known.
  for (const [i, batch] of state.batches.entries()) {
    if (batch.state !== 'building' || batch.onto !== null) continue;
    const onto = i === 0 ? state.baseSha : state.batches[i - 1]!.stagingSha;
    if (onto === null) continue;
    batch.onto = onto;
    draft.effects.push({ kind: 'build', batch: batch.id, onto, prs: numbers(batch.prs) });
  }
  // The first batch lands once it passed.
  if (head && head.state === 'passed' && head.stagingSha !== null) {
    head.state = 'landing';
    draft.effects.push({
      kind: 'land',
      batch: head.id,
      stagingSha: head.stagingSha,
      prs: numbers(head.prs),
    });
  }
  if (state.mode === 'draining' && state.batches.length === 0) {
    state.mode = 'paused';
    state.pausedBecause = 'drained';
    draft.effects.push({ kind: 'paused', reason: 'drained' });
  }
}

function handle(draft: Draft, event: QueueEvent) {
  const { state, config } = draft;
  const batchIndex = (id: number) => state.batches.findIndex((b) => b.id === id);
  switch (event.type) {
    case 'enqueue': {
      if (positionOf(state, event.pr.number)) return;
      state.queue.push(event.pr);
      return;
    }
    case 'dequeue': {
      const at = positionOf(state, event.pr);
      if (!at) return;
      if (at.kind === 'waiting') state.queue = state.queue.filter((p) => p.number !== event.pr);
      else cancelFrom(draft, at.index, event.pr);
      draft.effects.push({ kind: 'dequeued', pr: event.pr, reason: event.reason });
      return;
    }
    case 'base-moved': {
      if (event.sha === state.baseSha) return;
      // The fast-forward went through, though its answer was lost: the batch landed.
      const head = state.batches[0];
      if (head?.state === 'landing' && head.stagingSha === event.sha) {
        handle(draft, { type: 'landed', batch: head.id });
        return;
      }
      state.baseSha = event.sha;
      // The chain was built on the old tip: it is built again on the new one.
      cancelFrom(draft, 0);
      return;
    }
    case 'built': {
      const batch = state.batches[batchIndex(event.batch)];
      if (!batch || batch.state !== 'building') return;
      batch.stagingSha = event.stagingSha;
      batch.state = 'testing';
      draft.effects.push({
        kind: 'test',
        batch: batch.id,
        stagingSha: event.stagingSha,
        prs: numbers(batch.prs),
      });
      return;
    }
    case 'conflict': {
      const dropped = new Set(event.prs);
      const sendBack = (prs: readonly QueuedPr[]) => {
        for (const pr of prs.filter((p) => dropped.has(p.number))) {
          draft.effects.push({
            kind: 'sent-back',
            pr: pr.number,
            reason: `it does not merge: ${event.detail}`,
            failures: [],
          });
        }
      };
      const i = batchIndex(event.batch);
      const batch = state.batches[i];
      if (!batch || batch.state !== 'building') return;
      sendBack(batch.prs);
      cancelFrom(draft, i);
      state.queue = state.queue.filter((p) => !dropped.has(p.number));
      return;
    }
    case 'tested': {
      const i = batchIndex(event.batch);
      const batch = state.batches[i];
      if (!batch || batch.state !== 'testing') return;
      if (event.result === 'infra') {
        batch.attempts++;
        if (batch.attempts > config.infraRetries) {
          state.mode = 'paused';
          state.pausedBecause = `a land graph could not run ${batch.attempts} times in a row (infrastructure): see batch ${batch.id}`;
          draft.effects.push({ kind: 'paused', reason: state.pausedBecause });
          return;
        }
        draft.effects.push({
          kind: 'test',
          batch: batch.id,
          stagingSha: batch.stagingSha!,
          prs: numbers(batch.prs),
        });
        return;
      }
      if (event.result === 'success') {
        batch.state = 'passed';
        return;
      }
      batch.state = 'failed';
      batch.failures = event.failures ?? [];
      state.window = Math.max(1, state.window - 1);
      // What is above was built on a commit that will not land.
      cancelFrom(draft, i + 1);
      return;
    }
    case 'landed': {
      const head = state.batches[0];
      if (!head || head.id !== event.batch || head.state !== 'landing') return;
      state.batches.shift();
      state.baseSha = head.stagingSha!;
      rate(
        draft,
        head.prs.map(() => 0),
      );
      state.window = Math.min(config.maxParallel, state.window + 1);
      draft.effects.push({
        kind: 'landed',
        batch: head.id,
        prs: numbers(head.prs),
        sha: head.stagingSha!,
      });
      // Both halves of a failed batch passed, one on the other: its failure was not real.
      if (head.split?.half === 2) {
        draft.effects.push({ kind: 'flaky', prs: head.split.prs, failures: head.split.failures });
      }
      return;
    }
    case 'pause': {
      state.mode = 'paused';
      state.pausedBecause = event.reason ?? null;
      return;
    }
    case 'resume': {
      state.mode = 'running';
      state.pausedBecause = null;
      return;
    }
    case 'drain': {
      if (state.mode !== 'paused') state.mode = 'draining';
      return;
    }
  }
}

/** Applies one event: the new state and the effects to carry out, in order. */
export function step(
  state: QueueState,
  event: QueueEvent,
  config: QueueConfig = DEFAULT_QUEUE_CONFIG,
): { state: QueueState; effects: Effect[] } {
  const draft: Draft = { state: clone(state), effects: [], config };
  handle(draft, event);
  advance(draft);
  return { state: draft.state, effects: draft.effects };
}
