/**
 * The landing queue as a pure state machine:
 * one queue per repository and base branch. `step(state, event)` returns
 * the new state and the effects to carry out (build a staging commit, run
 * its `land` graph, fast-forward the base, cancel, report); the runner
 * (src/autoland/runner.ts) carries them out and feeds back what happened.
 *
 * The line. Pull requests leave the waiting queue in priority order, then
 * by age, into the line, and land in the line's order: none overtakes one
 * taken before it. So of two pull requests that fail together, the later
 * is sent back.
 *
 * Speculation. Batches form a tree of staging commits: each is built on
 * the base branch's tip or on the staging commit of its parent, so it
 * holds every pull request on its path. A path is a guess about which pull
 * requests of the line will land; a batch may skip pull requests between
 * its parent's and its own, guessing that they will be sent back. Only a
 * batch built on the tip lands, once its `land` graph passed and every
 * pull request it skipped was sent back: the base is fast-forwarded to
 * exactly its staging commit, so every commit on the base branch is one
 * whose graph passed. What was built on another guess is then cancelled.
 *
 * Which batches to test: the likeliest guesses first, up to `maxParallel`
 * in test at once, and none less likely than MIN_LIKELIHOOD.
 * A path's likelihood is the chance that every batch on it passes and
 * every pull request it skips fails, from the observed failure rate and
 * what failed batches have shown. With no failure in sight that is a
 * chain of batches, each on the one below; after a failure, it is both
 * sides of the question the failure raised.
 *
 * Throughput:
 * - Batch size follows the observed failure rate p (an average over recent
 *   pull requests): see batchSize.
 * - No window grows and shrinks: every guess has a likelihood, and the
 *   likelihood bound is what stops speculation where much fails (deep
 *   guesses fall under it as p grows). A window halving on each failure
 *   expects failures to be rare; here a failing guess is expected, and
 *   halving cost a third of the throughput at p = 10% (docs/performance.md).
 * - A failed batch of several pull requests is split in halves: the first
 *   is tested again on the failed batch's parent; the second on top of it
 *   is the failed commit itself, so it counts as failed without a test of
 *   its own. The second is also tested without the first, and what comes
 *   after is tested on top of each answer. A pull request failing alone on
 *   top of what lands before it is sent back. If the second half passed
 *   without the first and the first passes, the second is tested again on
 *   what landed: when the pull requests of a failed batch all land, its
 *   failure was flaky.
 * - An infrastructure failure (the graph could not run) tests the batch
 *   again, failing no one, up to `infraRetries` times; then the queue
 *   pauses, saying why.
 * - A `single` pull request is always a batch of its own.
 *
 * Modes: `running`; `paused` (nothing starts and nothing lands; batches in
 * test keep their results); `draining` (nothing more leaves the waiting
 * queue, the line finishes, then the queue is `paused`).
 */

export type QueueConfig = {
  minBatch: number;
  maxBatch: number;
  /** Land graphs in test at once, at most. */
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

/** A failed batch whose pull requests are tested again, in smaller batches. */
export type Retest = { of: number; prs: number[]; failures: string[] };

export type Batch = {
  id: number;
  prs: QueuedPr[];
  /** The batch it is built on; null: the base branch's tip. */
  parent: number | null;
  /** Pull requests of the line between its parent's and its own, left out: it guesses they fail. */
  skips: number[];
  state: BatchState;
  /** The commit it is built on: the base tip, or its parent's staging commit. */
  onto: string | null;
  stagingSha: string | null;
  /** Infrastructure retries spent. */
  attempts: number;
  /** When its `land` graph failed: the jobs that failed, for the pull requests sent back. */
  failures: string[];
  /** Set when its pull requests are some of a failed batch's. */
  retest: Retest | null;
  /** Failed without a test of its own: its commit is the failed batch's, tested already. */
  inferred: boolean;
  /**
   * A pull request did not merge onto a guess that has not come true: no
   * one is sent back for a guess. It is built again once it is on what
   * landed, and a conflict then sends the pull request back.
   */
  conflict?: string;
  /**
   * A test of a suspect pull request without the other half of its failed
   * batch, built on a tip that is gone since that half landed: kept only for
   * its answer (does it fail alone?). It never lands and nothing is built on it.
   */
  evidence?: boolean;
};

/**
 * Pull requests that failed together: tested as one batch, until a test
 * shows where the failure is. `likelihood` is the chance that the group
 * holds a failing pull request; halves of one failure are told
 * apart, since usually only one of them holds it.
 */
export type Suspects = {
  failure: Retest;
  prs: number[];
  likelihood: number;
  /** It passed without the other half: it fails only with it, or the failure was flaky. */
  passedAlone?: boolean;
};

export type QueueMode = 'running' | 'paused' | 'draining';

export type QueueState = {
  mode: QueueMode;
  /** Why it is paused, when Tower paused it. */
  pausedBecause: string | null;
  baseSha: string;
  /** Waiting to be taken into the line. */
  queue: QueuedPr[];
  /** Taken, in landing order, and neither landed nor sent back yet. */
  line: QueuedPr[];
  suspects: Suspects[];
  /** Failed batches whose failure was on what lands: flaky if all their pull requests land. */
  retests: Retest[];
  /**
   * Dequeues of pull requests in the batch being landed: the fast-forward
   * may already have gone through, so they wait for its answer (landed: they
   * landed as tested; refused: they leave the queue).
   */
  deferred: { pr: number; reason: string }[];
  /** The tree of staging commits, parents before children. */
  batches: Batch[];
  nextBatchId: number;
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
  /** GitHub refused the fast-forward though the base had not moved (a protected branch). */
  | { type: 'land-refused'; batch: number; reason: string }
  | { type: 'pause'; reason?: string }
  | { type: 'resume' }
  | { type: 'drain' };

export type Effect =
  /** Build a staging commit: `prs` merged, in order, onto `onto`. */
  | { kind: 'build'; batch: number; onto: string; prs: number[] }
  | { kind: 'test'; batch: number; stagingSha: string; prs: number[] }
  | { kind: 'land'; batch: number; stagingSha: string; prs: number[] }
  /** A batch left the tree before landing: its graph and staging ref go. */
  | { kind: 'cancel'; batch: number }
  | { kind: 'landed'; batch: number; prs: number[]; sha: string }
  | { kind: 'sent-back'; pr: number; reason: string; failures: string[] }
  | { kind: 'dequeued'; pr: number; reason: string }
  | { kind: 'flaky'; prs: number[]; failures: string[] }
  | { kind: 'paused'; reason: string };

/** How much one pull request's outcome moves the failure rate. */
const RATE_WEIGHT = 0.03;
/** The failure rate a new queue assumes. */
export const INITIAL_FAILURE_RATE = 0.03;
/** Batches are at least pairs while fewer than this share of pull requests fail. */
const PAIRS_UP_TO = 0.4;
/** A guess less likely than this is not worth a land graph. */
const MIN_LIKELIHOOD = 0.05;
/** How likely a pull request that failed alone fails again: flaky failures are rare. */
const FAILED_ALONE = 0.95;

export function initialQueue(baseSha: string): QueueState {
  return {
    mode: 'running',
    pausedBecause: null,
    baseSha,
    queue: [],
    line: [],
    suspects: [],
    retests: [],
    deferred: [],
    batches: [],
    nextBatchId: 1,
    failureRate: INITIAL_FAILURE_RATE,
  };
}

/**
 * A queue as the database holds it. One saved by an earlier Tower had its
 * batches in a chain, each on the one before, and no line: it is read as
 * the same batches in a tree, in the line in their order, so nothing in
 * flight is lost.
 */
export function restoreQueue(saved: unknown): QueueState {
  const state = saved as QueueState;
  if (Array.isArray(state.line)) {
    return Array.isArray(state.deferred) ? state : { ...state, deferred: [] };
  }
  const chain = (state.batches ?? []) as (Omit<Batch, 'parent' | 'skips' | 'retest' | 'inferred'> &
    Record<string, unknown>)[];
  const batches: Batch[] = chain.map(({ split: _, ...batch }, index) => ({
    ...batch,
    parent: index === 0 ? null : chain[index - 1]!.id,
    skips: [],
    retest: null,
    inferred: false,
  }));
  return {
    mode: state.mode,
    pausedBecause: state.pausedBecause,
    baseSha: state.baseSha,
    queue: state.queue,
    line: batches.flatMap((b) => b.prs),
    suspects: [],
    retests: [],
    deferred: [],
    batches,
    nextBatchId: state.nextBatchId,
    failureRate: state.failureRate,
  };
}

/**
 * How many pull requests a batch takes, within the bounds: about
 * 1/(2.6√p), fewer than the classic 1/√p because the queue keeps order, so
 * a failed batch also costs the batches tested on top of it; but two
 * unless more than PAIRS_UP_TO fail, because a failed pair is explained
 * about as cheaply as a single (its second half needs no test of its
 * own). Measured best fixed sizes: 4 at p = 2%, 2 from 5% to 30%.
 */
export function batchSize(failureRate: number, config: QueueConfig): number {
  const ideal =
    failureRate <= 0
      ? config.maxBatch
      : Math.max(failureRate < PAIRS_UP_TO ? 2 : 1, Math.round(1 / (2.6 * Math.sqrt(failureRate))));
  return Math.max(config.minBatch, Math.min(config.maxBatch, ideal));
}

const byPriority = (a: QueuedPr, b: QueuedPr) =>
  b.priority - a.priority || a.enqueuedAt - b.enqueuedAt || a.number - b.number;

/** How many batches a batch is built on top of. */
export function depthOf(state: QueueState, batch: Batch): number {
  let depth = 0;
  for (let at = batch.parent; at !== null; depth++) {
    at = state.batches.find((b) => b.id === at)?.parent ?? null;
  }
  return depth;
}

/**
 * Where a pull request is: waiting (its place: how many pull requests are
 * ahead of it), in a batch (the likeliest, with how many batches it is
 * built on), or not queued.
 */
export function positionOf(
  state: QueueState,
  pr: number,
): { kind: 'waiting'; place: number } | { kind: 'batch'; batch: Batch; index: number } | undefined {
  const holding = state.batches.filter((b) => b.prs.some((p) => p.number === pr));
  if (holding.length > 0) {
    const likely = holding.find((b) => b.state !== 'failed' && !b.evidence) ?? holding[0]!;
    return { kind: 'batch', batch: likely, index: depthOf(state, likely) };
  }
  const inLine = state.line.findIndex((p) => p.number === pr);
  if (inLine >= 0) return { kind: 'waiting', place: inLine };
  const place = [...state.queue].sort(byPriority).findIndex((p) => p.number === pr);
  return place >= 0 ? { kind: 'waiting', place: state.line.length + place } : undefined;
}

type Draft = { state: QueueState; effects: Effect[]; config: QueueConfig };

function clone(state: QueueState): QueueState {
  return {
    ...state,
    queue: [...state.queue],
    line: [...state.line],
    suspects: state.suspects.map((g) => ({ ...g, prs: [...g.prs] })),
    retests: [...state.retests],
    deferred: [...(state.deferred ?? [])],
    batches: state.batches.map((b) => ({
      ...b,
      prs: [...b.prs],
      skips: [...b.skips],
      failures: [...b.failures],
    })),
  };
}

function rate(draft: Draft, outcomes: readonly number[]) {
  for (const failed of outcomes) {
    draft.state.failureRate = draft.state.failureRate * (1 - RATE_WEIGHT) + RATE_WEIGHT * failed;
  }
}

const numbers = (prs: readonly QueuedPr[]) => prs.map((p) => p.number);

/** The batch and everything built on it, children after parents. */
function subtree(state: QueueState, id: number): Batch[] {
  const found: Batch[] = [];
  const ids = new Set([id]);
  for (const batch of state.batches) {
    if (ids.has(batch.id) || (batch.parent !== null && ids.has(batch.parent))) {
      ids.add(batch.id);
      found.push(batch);
    }
  }
  return found;
}

/**
 * Removes batches from the tree, cancelling them. A failure of one of them
 * was on a guess that did not come true: what it made suspect is not.
 */
function cancel(draft: Draft, batches: readonly Batch[]) {
  const gone = new Set(batches.map((b) => b.id));
  for (const batch of [...batches].reverse()) {
    draft.effects.push({ kind: 'cancel', batch: batch.id });
  }
  draft.state.batches = draft.state.batches.filter((b) => !gone.has(b.id));
  draft.state.suspects = draft.state.suspects.filter((g) => !gone.has(g.failure.of));
}

/** A pull request leaves the line: landed, sent back or dequeued. */
function resolve(draft: Draft, pr: number, landed: boolean) {
  const { state } = draft;
  state.line = state.line.filter((p) => p.number !== pr);
  for (const group of state.suspects) group.prs = group.prs.filter((n) => n !== pr);
  state.suspects = state.suspects.filter((g) => g.prs.length > 0);
  if (!landed) state.retests = state.retests.filter((r) => !r.prs.includes(pr));
}

/** Marks pull requests as failing together: they leave the groups they were in. */
function suspect(draft: Draft, groups: Suspects[]) {
  const { state } = draft;
  const named = new Set(groups.flatMap((g) => g.prs));
  for (const group of state.suspects) group.prs = group.prs.filter((n) => !named.has(n));
  state.suspects = [...state.suspects.filter((g) => g.prs.length > 0), ...groups];
}

/** Every batch holding the pull request goes, with what is built on it. */
function cancelHolding(draft: Draft, pr: number) {
  const { state } = draft;
  for (const batch of state.batches.filter((b) => b.prs.some((p) => p.number === pr))) {
    if (state.batches.includes(batch)) cancel(draft, subtree(state, batch.id));
  }
}

function sendBack(draft: Draft, pr: number, reason: string, failures: string[]) {
  const { state } = draft;
  // The failures it was suspected of are explained: the rest of those batches are no likelier
  // to fail than anything else.
  for (const other of state.suspects) {
    if (other.failure.prs.includes(pr) && !other.prs.includes(pr)) {
      other.likelihood = Math.min(other.likelihood, state.failureRate);
    }
  }
  cancelHolding(draft, pr);
  resolve(draft, pr, false);
  draft.effects.push({ kind: 'sent-back', pr, reason, failures });
}

/** Whether a batch holds exactly a suspect group's pull requests. */
function sameGroup(batch: Batch, group: Suspects | undefined): boolean {
  return (
    group !== undefined &&
    batch.prs.length === group.prs.length &&
    batch.prs.every((p) => group.prs.includes(p.number))
  );
}

/** The pull requests a batch's staging commit holds or skips, from the base up. */
function covered(state: QueueState, batch: Batch | null): Set<number> {
  const seen = new Set<number>();
  for (let at = batch; at; at = state.batches.find((b) => b.id === at.parent) ?? null) {
    for (const pr of at.prs) seen.add(pr.number);
    for (const pr of at.skips) seen.add(pr);
  }
  return seen;
}

/** A root batch is on what really landed once everything it skipped was sent back. */
const onTruth = (state: QueueState, batch: Batch) =>
  batch.parent === null && batch.skips.every((n) => !state.line.some((p) => p.number === n));

type Guess = {
  parent: Batch | null;
  skips: number[];
  prs: QueuedPr[];
  /** Taken from the waiting queue into the line when the guess is tested. */
  taken: QueuedPr[];
  likelihood: number;
  retest: Retest | null;
};

/**
 * The chance that `prs`, as a batch on the path `path` (the groups it
 * includes and skips), passes.
 */
function passes(
  state: QueueState,
  prs: readonly QueuedPr[],
  included: ReadonlySet<number>,
  skipped: ReadonlySet<number>,
): number {
  const group = state.suspects.find((g) => prs.some((p) => g.prs.includes(p.number)));
  if (!group) return (1 - state.failureRate) ** prs.length;
  // Halves of one failure: if one is in and passed, the other holds it; if one is out, likely not.
  if (included.has(group.failure.of)) return 1 - FAILED_ALONE;
  if (skipped.has(group.failure.of)) return 1 - state.failureRate;
  return 1 - group.likelihood;
}

/** The likeliest guess not yet tested, or undefined when none is worth testing. */
function likeliestGuess(draft: Draft): Guess | undefined {
  const { state, config } = draft;
  const waiting = state.mode === 'running' ? [...state.queue].sort(byPriority) : [];
  const size = batchSize(state.failureRate, config);
  const groupOf = (pr: number) => state.suspects.find((g) => g.prs.includes(pr));
  /** In the line: neither landed nor sent back. */
  const taken = new Set(numbers(state.line));
  /** The chance a group fails: likelier when the other half of its failure is in and passed. */
  const fails = (group: Suspects, included: ReadonlySet<number>) =>
    included.has(group.failure.of) ? FAILED_ALONE : group.likelihood;

  /** The next batch from `rest` (then the waiting queue): a suspect group, a single, or up to `size`. */
  const nextBatch = (rest: readonly QueuedPr[]) => {
    const more = [...rest, ...waiting];
    const first = more[0];
    if (!first) return undefined;
    const group = groupOf(first.number);
    let prs: QueuedPr[];
    if (group) prs = more.filter((p) => group.prs.includes(p.number));
    else if (first.single) prs = [first];
    else {
      prs = [];
      for (const pr of more) {
        if (prs.length >= size || pr.single || groupOf(pr.number)) break;
        prs.push(pr);
      }
    }
    return { prs, taken: prs.filter((p) => !rest.includes(p)), retest: group?.failure ?? null };
  };

  let best: Guess | undefined;
  const consider = (guess: Guess) => {
    if (guess.likelihood < MIN_LIKELIHOOD) return;
    // One batch per parent and guess: a failed one only stands for what it held.
    const parentId = guess.parent?.id ?? null;
    const first = guess.prs[0]?.number;
    const key = numbers(guess.prs).join(',');
    // Skips that were sent back are no guess any more.
    const open = (skips: readonly number[]) => skips.filter((n) => taken.has(n)).join(',');
    const tested = state.batches.some(
      (b) =>
        !b.evidence &&
        b.parent === parentId &&
        open(b.skips) === open(guess.skips) &&
        (b.state === 'failed' ? numbers(b.prs).join(',') === key : b.prs[0]?.number === first),
    );
    if (!tested && (!best || guess.likelihood > best.likelihood)) best = guess;
  };

  // How likely each batch's guess is to come true, and the failed batches its path takes
  // a half of (included) or leaves one out of (skipped); parents come before children.
  type Path = { chance: number; included: Set<number>; skipped: Set<number> };
  const paths = new Map<number | null, Path>([
    [null, { chance: 1, included: new Set(), skipped: new Set() }],
  ]);
  for (const parent of [null, ...state.batches]) {
    let path = paths.get(null)!;
    if (parent) {
      const above = paths.get(parent.parent);
      if (!above || parent.state === 'failed' || parent.evidence) continue;
      // Reaching a batch: reaching its parent, skipping what it skips; going past it: it passes.
      path = {
        chance: above.chance,
        included: new Set(above.included),
        skipped: new Set(above.skipped),
      };
      for (const pr of parent.skips) {
        // Sent back already: the guess came true.
        if (!taken.has(pr)) continue;
        const group = groupOf(pr);
        path.chance *= group ? fails(group, path.included) : 0;
        if (group) path.skipped.add(group.failure.of);
      }
      if (parent.state !== 'passed' && parent.state !== 'landing') {
        path.chance *= passes(state, parent.prs, path.included, path.skipped);
      }
      if (parent.retest) path.included.add(parent.retest.of);
      paths.set(parent.id, path);
    }
    const likelihood = path.chance;
    const seen = covered(state, parent);
    const rest = state.line.filter((p) => !seen.has(p.number));
    const include = nextBatch(rest);
    if (include) consider({ parent, skips: [], likelihood, ...include });
    // A pull request that failed alone may be left out, guessing it fails again.
    const first = rest[0];
    const group = first && groupOf(first.number);
    if (first && group && group.prs.length === 1) {
      const skip = nextBatch(rest.slice(1));
      const chance = likelihood * fails(group, path.included);
      if (skip) consider({ parent, skips: [first.number], ...skip, likelihood: chance });
    }
  }
  return best;
}

/** Starts what can start: sends back and lands what the tree shows, builds, new guesses. */
function advance(draft: Draft) {
  const { state } = draft;
  // A root batch on what landed that failed: alone, it is sent back; else its halves were suspected.
  const waiting = new Set<number>();
  for (;;) {
    const batch = state.batches.find(
      (b) => b.state === 'failed' && !b.evidence && !waiting.has(b.id) && onTruth(state, b),
    );
    if (!batch) break;
    if (batch.conflict !== undefined) {
      // It did not merge on a guess; now it is on what landed, it is built again to tell.
      delete batch.conflict;
      Object.assign(batch, { state: 'building', onto: null, stagingSha: null });
      continue;
    }
    const [only] = batch.prs;
    const group = only && state.suspects.find((g) => g.prs.includes(only.number));
    if (batch.inferred && batch.prs.length === 1 && group?.passedAlone) {
      // It fails only after the other half, or the failure was flaky: tested again to tell.
      Object.assign(batch, { state: 'building', onto: null, stagingSha: null, inferred: false });
      continue;
    }
    if (batch.inferred && state.batches.some((b) => b.evidence && sameGroup(b, group))) {
      // Whether it fails alone is about to be known: that decides between a retest and back.
      waiting.add(batch.id);
      continue;
    }
    // Its failure is on what lands: it leaves the tree, and what it made suspect stays so.
    state.batches = state.batches.filter((b) => b.id !== batch.id);
    draft.effects.push({ kind: 'cancel', batch: batch.id });
    if (batch.prs.length === 1) {
      rate(draft, [1]);
      sendBack(draft, batch.prs[0]!.number, 'its land graph failed', batch.failures);
    } else {
      state.retests.push({ of: batch.id, prs: numbers(batch.prs), failures: batch.failures });
      if (batch.inferred) failed(draft, batch);
    }
  }
  if (state.mode === 'paused') return;
  // Builds: a batch is built once what it goes on is known.
  for (const batch of state.batches) {
    if (batch.state !== 'building' || batch.onto !== null) continue;
    const parent = state.batches.find((b) => b.id === batch.parent);
    const onto = batch.parent === null ? state.baseSha : (parent?.stagingSha ?? null);
    if (onto === null) continue;
    batch.onto = onto;
    draft.effects.push({ kind: 'build', batch: batch.id, onto, prs: numbers(batch.prs) });
  }
  // The likeliest guesses, while there is room.
  const inTest = () =>
    state.batches.filter((b) => b.state === 'building' || b.state === 'testing').length;
  while (inTest() < draft.config.maxParallel) {
    const guess = likeliestGuess(draft);
    if (!guess) break;
    state.queue = state.queue.filter((p) => !guess.taken.includes(p));
    state.line.push(...guess.taken);
    const batch: Batch = {
      id: state.nextBatchId++,
      prs: guess.prs,
      parent: guess.parent?.id ?? null,
      skips: guess.skips,
      state: 'building',
      onto: guess.parent ? guess.parent.stagingSha : state.baseSha,
      stagingSha: null,
      attempts: 0,
      failures: [],
      retest: guess.retest,
      inferred: false,
    };
    state.batches.push(batch);
    if (batch.onto !== null) {
      draft.effects.push({
        kind: 'build',
        batch: batch.id,
        onto: batch.onto,
        prs: numbers(batch.prs),
      });
    }
  }
  // A root batch that passed lands once everything it skipped was sent back.
  if (!state.batches.some((b) => b.state === 'landing')) {
    const ready = state.batches.find(
      (b) => b.state === 'passed' && b.stagingSha !== null && !b.evidence && onTruth(state, b),
    );
    if (ready) {
      ready.state = 'landing';
      draft.effects.push({
        kind: 'land',
        batch: ready.id,
        stagingSha: ready.stagingSha!,
        prs: numbers(ready.prs),
      });
    }
  }
  if (state.mode === 'draining' && state.batches.length === 0 && state.line.length === 0) {
    state.mode = 'paused';
    state.pausedBecause = 'drained';
    draft.effects.push({ kind: 'paused', reason: 'drained' });
  }
}

/** Everything in the tree goes; the line stays, in its order, to be tested again. */
function startOver(draft: Draft) {
  const { state } = draft;
  cancel(draft, state.batches);
  state.suspects = [];
  state.retests = [];
}

/**
 * A batch failed: its pull requests are suspects. One alone is likely to
 * fail again. Several are split in halves: the first is tested on the
 * failed batch's parent, and the second on top of it is the failed batch
 * again, so it counts as failed without a test of its own (`inferred`).
 */
function failed(draft: Draft, batch: Batch) {
  const { state } = draft;
  const retest: Retest = { of: batch.id, prs: numbers(batch.prs), failures: batch.failures };
  const prs = numbers(batch.prs);
  if (prs.length === 1) {
    suspect(draft, [{ failure: retest, prs, likelihood: FAILED_ALONE }]);
    return;
  }
  const half = Math.ceil(prs.length / 2);
  // The chance that k of the n pull requests hold a failure, given that the n failed.
  const fails = (k: number) => 1 - (1 - state.failureRate) ** k;
  const holds = (k: number) => Math.min(FAILED_ALONE, fails(k) / fails(prs.length));
  suspect(draft, [
    { failure: retest, prs: prs.slice(0, half), likelihood: holds(half) },
    { failure: retest, prs: prs.slice(half), likelihood: holds(prs.length - half) },
  ]);
  const parent = state.batches.find((b) => b.id === batch.parent);
  const first: Batch = {
    id: state.nextBatchId++,
    prs: batch.prs.slice(0, half),
    parent: batch.parent,
    skips: [...batch.skips],
    state: 'building',
    onto: batch.parent === null ? state.baseSha : (parent?.stagingSha ?? null),
    stagingSha: null,
    attempts: 0,
    failures: [],
    retest,
    inferred: false,
  };
  const second: Batch = {
    id: state.nextBatchId++,
    prs: batch.prs.slice(half),
    parent: first.id,
    skips: [],
    state: 'failed',
    onto: null,
    stagingSha: batch.stagingSha,
    attempts: 0,
    failures: batch.failures,
    retest,
    inferred: true,
  };
  state.batches.push(first, second);
  if (first.onto !== null) {
    draft.effects.push({
      kind: 'build',
      batch: first.id,
      onto: first.onto,
      prs: numbers(first.prs),
    });
  }
}

/** Dequeues that waited for a landing that did not happen. */
function dequeueDeferred(draft: Draft) {
  const { state } = draft;
  const deferred = state.deferred;
  state.deferred = [];
  for (const { pr, reason } of deferred) handle(draft, { type: 'dequeue', pr, reason });
}

function handle(draft: Draft, event: QueueEvent) {
  const { state, config } = draft;
  const find = (id: number) => state.batches.find((b) => b.id === id);
  switch (event.type) {
    case 'enqueue': {
      if (positionOf(state, event.pr.number)) return;
      state.queue.push(event.pr);
      return;
    }
    case 'dequeue': {
      if (!positionOf(state, event.pr)) return;
      const landing = state.batches.find((b) => b.state === 'landing');
      if (landing?.prs.some((p) => p.number === event.pr)) {
        state.deferred.push({ pr: event.pr, reason: event.reason });
        return;
      }
      state.queue = state.queue.filter((p) => p.number !== event.pr);
      cancelHolding(draft, event.pr);
      resolve(draft, event.pr, false);
      draft.effects.push({ kind: 'dequeued', pr: event.pr, reason: event.reason });
      return;
    }
    case 'base-moved': {
      if (event.sha === state.baseSha) return;
      // The fast-forward went through, though its answer was lost: the batch landed.
      const landing = state.batches.find((b) => b.state === 'landing');
      if (landing?.stagingSha === event.sha) {
        handle(draft, { type: 'landed', batch: landing.id });
        return;
      }
      state.baseSha = event.sha;
      // The tree was built on the old tip: it is built again on the new one.
      startOver(draft);
      dequeueDeferred(draft);
      return;
    }
    case 'built': {
      const batch = find(event.batch);
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
      const batch = find(event.batch);
      if (!batch || batch.state !== 'building') return;
      if (!onTruth(state, batch)) {
        cancel(draft, subtree(state, batch.id).slice(1));
        Object.assign(batch, { state: 'failed', conflict: event.detail });
        // Guesses go on without them, in case the conflict is real.
        const failure: Retest = { of: batch.id, prs: event.prs, failures: [] };
        suspect(
          draft,
          event.prs.map((n) => ({ failure, prs: [n], likelihood: FAILED_ALONE })),
        );
        return;
      }
      cancel(draft, subtree(state, batch.id));
      for (const pr of batch.prs.filter((p) => event.prs.includes(p.number))) {
        sendBack(draft, pr.number, `it does not merge: ${event.detail}`, []);
      }
      return;
    }
    case 'tested': {
      const batch = find(event.batch);
      if (!batch || batch.state !== 'testing') return;
      if (batch.evidence) {
        const group = state.suspects.find((g) => sameGroup(batch, g));
        if (group && event.result === 'success') {
          // It passes alone: it fails again only if it fails with the other half (rare) or
          // never did (flaky).
          group.passedAlone = true;
          group.likelihood = state.failureRate;
        }
        state.batches = state.batches.filter((b) => b !== batch);
        draft.effects.push({ kind: 'cancel', batch: batch.id });
        return;
      }
      if (event.result === 'infra') {
        batch.attempts++;
        if (batch.attempts > config.infraRetries) {
          state.mode = 'paused';
          state.pausedBecause = `a land graph could not run ${batch.attempts} times in a row (infrastructure): see batch ${batch.id}`;
          draft.effects.push({ kind: 'paused', reason: state.pausedBecause });
          // Resumed, it is built and tested afresh, as a new batch in the same place.
          const index = state.batches.indexOf(batch);
          cancel(draft, subtree(state, batch.id));
          state.batches.splice(index, 0, {
            ...batch,
            id: state.nextBatchId++,
            state: 'building',
            onto: null,
            stagingSha: null,
            attempts: 0,
          });
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
        const group = state.suspects.find((g) => batch.prs.some((p) => g.prs.includes(p.number)));
        const otherHalf = state.suspects.some(
          (g) =>
            g !== group &&
            g.failure.of === group?.failure.of &&
            g.prs.some((n) => batch.skips.includes(n)),
        );
        if (group && otherHalf) group.passedAlone = true;
        return;
      }
      batch.state = 'failed';
      batch.failures = event.failures ?? [];
      // What is above was built on a commit that will not land.
      cancel(draft, subtree(state, batch.id).slice(1));
      failed(draft, batch);
      return;
    }
    case 'landed': {
      const batch = find(event.batch);
      if (!batch || batch.state !== 'landing') return;
      state.baseSha = batch.stagingSha!;
      // What was built on the old tip but not on this batch is on a guess that did not come
      // true; a test of a suspect without the half that just landed still has an answer to give.
      const roots = state.batches.filter((b) => b.parent === null && b.id !== batch.id);
      const landedNumbers = numbers(batch.prs);
      for (const root of roots) {
        const group = state.suspects.find((g) => sameGroup(root, g));
        const alone =
          group !== undefined &&
          (root.state === 'building' || root.state === 'testing') &&
          root.skips.length > 0 &&
          root.skips.every((n) => landedNumbers.includes(n) && group.failure.prs.includes(n));
        if (alone) {
          cancel(draft, subtree(state, root.id).slice(1));
          root.evidence = true;
        } else {
          cancel(draft, subtree(state, root.id));
        }
      }
      state.batches = state.batches.filter((b) => b.id !== batch.id);
      for (const child of state.batches) if (child.parent === batch.id) child.parent = null;
      for (const pr of batch.prs) resolve(draft, pr.number, true);
      // Taken out while landing, too late: they landed as tested.
      state.deferred = [];
      rate(
        draft,
        batch.prs.map(() => 0),
      );
      draft.effects.push({
        kind: 'landed',
        batch: batch.id,
        prs: numbers(batch.prs),
        sha: batch.stagingSha!,
      });
      // A failed batch's pull requests all landed, tested again: its failure was not real.
      const inLine = new Set(numbers(state.line));
      for (const retest of state.retests.filter((r) => r.prs.every((n) => !inLine.has(n)))) {
        draft.effects.push({ kind: 'flaky', prs: retest.prs, failures: retest.failures });
      }
      state.retests = state.retests.filter((r) => r.prs.some((n) => inLine.has(n)));
      return;
    }
    case 'land-refused': {
      const batch = find(event.batch);
      if (!batch || batch.state !== 'landing') return;
      // Trying again would be refused again: the queue waits for someone to look.
      batch.state = 'passed';
      state.mode = 'paused';
      state.pausedBecause = `GitHub refused to fast-forward the base branch to ${batch.stagingSha!.slice(0, 12)} (batch ${batch.id}): ${event.reason}`;
      draft.effects.push({ kind: 'paused', reason: state.pausedBecause });
      dequeueDeferred(draft);
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
