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
 *   pull requests): about 1/√p pull requests, within the configured bounds.
 * - The window (batches in flight) grows by one when a batch lands and
 *   halves when one fails, between 1 and `maxParallel`.
 * - A failed batch waits until it is first in the chain (what is above it
 *   is cancelled at once: it was built on a commit that will not land).
 *   Then its pull requests leave the chain for an isolation probe, and the
 *   chain goes on without them. A probe bisects off the chain: it tests a
 *   prefix of the suspects known to pass plus half of the rest on the base;
 *   a failing half is bisected again, a passing one joins the prefix. The
 *   pull request found to fail on top of its prefix (alone, or after the
 *   one it fails together with) is sent back, once a test of exactly that
 *   combination on the current base has failed; the others go back to the
 *   front of the queue. A failure no half can reproduce was flaky.
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
};

/**
 * An isolation probe: `prefix` passed (on top of the base), `suspects` on
 * top of it failed; it now tests `candidate` on top of `prefix`, on the base.
 */
export type Probe = {
  id: number;
  prefix: QueuedPr[];
  suspects: QueuedPr[];
  candidate: QueuedPr[];
  state: 'building' | 'testing';
  onto: string | null;
  stagingSha: string | null;
  attempts: number;
  /** The jobs that failed when the suspects were last seen failing. */
  failures: string[];
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
  probes: Probe[];
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
  /** Build a staging commit: `prs` merged, in order, onto `onto`. A probe's never lands. */
  | { kind: 'build'; batch: number; onto: string; prs: number[]; probe: boolean }
  | { kind: 'test'; batch: number; stagingSha: string; prs: number[]; probe: boolean }
  | { kind: 'land'; batch: number; stagingSha: string; prs: number[] }
  /** A batch left the chain before landing: its graph and staging ref go. */
  | { kind: 'cancel'; batch: number }
  | { kind: 'landed'; prs: number[]; sha: string }
  | { kind: 'sent-back'; pr: number; reason: string; failures: string[] }
  | { kind: 'dequeued'; pr: number; reason: string }
  | { kind: 'flaky'; prs: number[]; failures: string[] }
  | { kind: 'paused'; reason: string };

/** How much one pull request's outcome moves the failure rate. */
const RATE_WEIGHT = 0.1;
/** The failure rate a new queue assumes. */
export const INITIAL_FAILURE_RATE = 0.1;

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
    probes: [],
  };
}

/** About 1/√p pull requests a batch, within the bounds. */
export function batchSize(failureRate: number, config: QueueConfig): number {
  const ideal = failureRate <= 0 ? config.maxBatch : Math.round(1 / Math.sqrt(failureRate));
  return Math.max(config.minBatch, Math.min(config.maxBatch, ideal));
}

const byPriority = (a: QueuedPr, b: QueuedPr) =>
  b.priority - a.priority || a.enqueuedAt - b.enqueuedAt || a.number - b.number;

/** Where a pull request is: waiting (its place, 0 first), in a batch or a probe, or not queued. */
export function positionOf(
  state: QueueState,
  pr: number,
):
  | { kind: 'waiting'; place: number }
  | { kind: 'batch'; batch: Batch; index: number }
  | { kind: 'probe'; probe: Probe }
  | undefined {
  const index = state.batches.findIndex((b) => b.prs.some((p) => p.number === pr));
  if (index >= 0) return { kind: 'batch', batch: state.batches[index]!, index };
  const probe = state.probes.find((p) => [...p.prefix, ...p.suspects].some((q) => q.number === pr));
  if (probe) return { kind: 'probe', probe };
  const place = [...state.queue].sort(byPriority).findIndex((p) => p.number === pr);
  return place >= 0 ? { kind: 'waiting', place } : undefined;
}

type Draft = { state: QueueState; effects: Effect[]; config: QueueConfig };

function clone(state: QueueState): QueueState {
  return {
    ...state,
    queue: [...state.queue],
    batches: state.batches.map((b) => ({ ...b, prs: [...b.prs], failures: [...b.failures] })),
    probes: state.probes.map((p) => ({
      ...p,
      prefix: [...p.prefix],
      suspects: [...p.suspects],
      candidate: [...p.candidate],
      failures: [...p.failures],
    })),
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

function cancelProbe(draft: Draft, probe: Probe, except: number | null = null) {
  draft.state.probes = draft.state.probes.filter((p) => p.id !== probe.id);
  draft.effects.push({ kind: 'cancel', batch: probe.id });
  requeue(
    draft,
    [...probe.prefix, ...probe.suspects].filter((pr) => pr.number !== except),
  );
}

function newBatch(draft: Draft, prs: QueuedPr[]): Batch {
  return {
    id: draft.state.nextBatchId++,
    prs,
    state: 'building',
    onto: null,
    stagingSha: null,
    attempts: 0,
    failures: [],
  };
}

/** A probe testing `candidate` on top of `prefix`; the suspects are known to fail on it. */
function newProbe(
  draft: Draft,
  prefix: QueuedPr[],
  suspects: QueuedPr[],
  failures: string[],
): Probe {
  const candidate =
    suspects.length === 1 ? suspects : suspects.slice(0, Math.ceil(suspects.length / 2));
  const probe: Probe = {
    id: draft.state.nextBatchId++,
    prefix,
    suspects,
    candidate,
    state: 'building',
    onto: null,
    stagingSha: null,
    attempts: 0,
    failures,
  };
  draft.state.probes.push(probe);
  return probe;
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
      newProbe(draft, [], head.prs, head.failures);
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
  // Builds: a batch is built once what it goes on is known; probes go on the base.
  for (const [i, batch] of state.batches.entries()) {
    if (batch.state !== 'building' || batch.onto !== null) continue;
    const onto = i === 0 ? state.baseSha : state.batches[i - 1]!.stagingSha;
    if (onto === null) continue;
    batch.onto = onto;
    draft.effects.push({
      kind: 'build',
      batch: batch.id,
      onto,
      prs: numbers(batch.prs),
      probe: false,
    });
  }
  for (const probe of state.probes) {
    if (probe.state !== 'building' || probe.onto !== null) continue;
    probe.onto = state.baseSha;
    draft.effects.push({
      kind: 'build',
      batch: probe.id,
      onto: state.baseSha,
      prs: numbers([...probe.prefix, ...probe.candidate]),
      probe: true,
    });
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
  if (state.mode === 'draining' && state.batches.length === 0 && state.probes.length === 0) {
    state.mode = 'paused';
    state.pausedBecause = 'drained';
    draft.effects.push({ kind: 'paused', reason: 'drained' });
  }
}

/** A probe's test ended: bisect further, send back the one that fails, or let them all go. */
function probed(draft: Draft, probe: Probe, passed: boolean, failures: string[]) {
  const { state } = draft;
  state.probes = state.probes.filter((p) => p.id !== probe.id);
  const rest = probe.suspects.slice(probe.candidate.length);
  if (probe.candidate.length === probe.suspects.length) {
    // The candidate is all the suspects: a test of exactly that combination on this base.
    if (passed) {
      draft.effects.push({
        kind: 'flaky',
        prs: numbers([...probe.prefix, ...probe.suspects]),
        failures: probe.failures,
      });
      requeue(draft, [...probe.prefix, ...probe.suspects]);
      return;
    }
    if (probe.suspects.length === 1) {
      rate(draft, [1]);
      draft.effects.push({
        kind: 'sent-back',
        pr: probe.suspects[0]!.number,
        reason:
          probe.prefix.length === 0
            ? 'its land graph failed'
            : `its land graph failed on top of ${probe.prefix.map((p) => `#${p.number}`).join(', ')}, which pass without it`,
        failures,
      });
      requeue(draft, probe.prefix);
      return;
    }
    newProbe(draft, probe.prefix, probe.suspects, failures);
    return;
  }
  if (passed) {
    // The candidate is fine on top of the prefix: the culprit is in the rest.
    newProbe(draft, [...probe.prefix, ...probe.candidate], rest, probe.failures);
  } else {
    requeue(draft, rest);
    newProbe(draft, probe.prefix, probe.candidate, failures);
  }
}

function handle(draft: Draft, event: QueueEvent) {
  const { state, config } = draft;
  const batchIndex = (id: number) => state.batches.findIndex((b) => b.id === id);
  const probeOf = (id: number) => state.probes.find((p) => p.id === id);
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
      else if (at.kind === 'batch') cancelFrom(draft, at.index, event.pr);
      else cancelProbe(draft, at.probe, event.pr);
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
      // The chain was built on the old tip: it is built again on the new one. Probes go on.
      cancelFrom(draft, 0);
      return;
    }
    case 'built': {
      const batch = state.batches[batchIndex(event.batch)] ?? probeOf(event.batch);
      if (!batch || batch.state !== 'building') return;
      batch.stagingSha = event.stagingSha;
      batch.state = 'testing';
      const prs = 'prs' in batch ? batch.prs : [...batch.prefix, ...batch.candidate];
      draft.effects.push({
        kind: 'test',
        batch: batch.id,
        stagingSha: event.stagingSha,
        prs: numbers(prs),
        probe: !('prs' in batch),
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
      if (batch && batch.state === 'building') {
        sendBack(batch.prs);
        cancelFrom(draft, i);
      } else {
        const probe = probeOf(event.batch);
        if (!probe || probe.state !== 'building') return;
        sendBack([...probe.prefix, ...probe.suspects]);
        cancelProbe(draft, probe);
      }
      state.queue = state.queue.filter((p) => !dropped.has(p.number));
      return;
    }
    case 'tested': {
      const i = batchIndex(event.batch);
      const batch = state.batches[i] ?? probeOf(event.batch);
      if (!batch || batch.state !== 'testing') return;
      if (event.result === 'infra') {
        batch.attempts++;
        if (batch.attempts > config.infraRetries) {
          state.mode = 'paused';
          state.pausedBecause = `a land graph could not run ${batch.attempts} times in a row (infrastructure): see batch ${batch.id}`;
          draft.effects.push({ kind: 'paused', reason: state.pausedBecause });
          return;
        }
        const prs = 'prs' in batch ? batch.prs : [...batch.prefix, ...batch.candidate];
        draft.effects.push({
          kind: 'test',
          batch: batch.id,
          stagingSha: batch.stagingSha!,
          prs: numbers(prs),
          probe: !('prs' in batch),
        });
        return;
      }
      if (!('prs' in batch)) {
        probed(draft, batch, event.result === 'success', event.failures ?? []);
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
      draft.effects.push({ kind: 'landed', prs: numbers(head.prs), sha: head.stagingSha! });
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
