/**
 * Issue 7: the landing queue against the simulator, with real git. Pull
 * requests are queued by `/tower land` or the base branch's label, merged
 * into staging commits on `tower/staging/…` branches through the API,
 * tested by the `land` graph of the staging commit, and landed by
 * fast-forwarding the base branch to exactly that commit.
 *
 * The minion here decides a land job's result from the files of the commit
 * it runs on, as a real test suite would: which pull requests are in the
 * staging commit is all it sees.
 */
import { eq } from 'drizzle-orm';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { events, graphs } from '../src/db/schema.js';
import type { SimPullRequest } from '../src/sandbox/model.js';
import { backends, type TestDatabase } from './support/databases.js';
import { startGitHubTower, type GitHubTower, type TestMinion } from './support/github-tower.js';

const definitions = (landing: string) => `version: 1
schedulers:
  - { on: land, graph: land }
graphs:
  land:
    jobs:
      test: { requires: [linux], command: make test }
      lint: { requires: [linux], command: make lint }
landing:
${landing}
`;

const LANDING = `  approvals: 1
  label: ready-to-land
  batch: { min: 1, max: 8 }
  parallel: 8`;

type QueueView = {
  repository: string;
  queues: {
    base: string;
    mode: string;
    pausedBecause: string | null;
    batches: {
      id: number;
      state: string;
      prs: number[];
      onto: string | null;
      stagingSha: string | null;
    }[];
    waiting: { number: number; priority: number; place: number }[];
    pullRequests: {
      number: number;
      state: string;
      reason: string | null;
      landedSha: string | null;
    }[];
  }[];
};

describe.each(backends())('the landing queue on $name', (backend) => {
  let database: TestDatabase;
  let gt: GitHubTower;
  let minion: TestMinion;
  let base = 0;

  beforeAll(async () => {
    database = await backend.open();
    gt = await startGitHubTower(database, {
      files: { 'README.md': '# widgets\n', '.tower/ci.yml': definitions(LANDING) },
    });
    const { sim, repository } = gt.s;
    sim.setPermission(repository, 'alice', 'write');
    sim.setPermission(repository, 'rita', 'write');
    sim.setPermission(repository, 'reader', 'read');
    sim.setPermission(repository, 'ada', 'admin');
    minion = await gt.minion(['linux']);
  });
  afterAll(async () => {
    await gt?.close();
    await database?.dispose();
  });
  afterEach(() => {
    expect(gt.s.sim.violations.list()).toEqual([]);
  });

  /** A fresh base branch with the landing definitions, so that each test has its own queue. */
  async function newBase(landing = LANDING): Promise<string> {
    const { sim, repository } = gt.s;
    const branch = `base-${++base}`;
    await sim.push(repository, {
      branch,
      files: { '.tower/ci.yml': definitions(landing) },
      author: 'alice',
    });
    await gt.settle();
    return branch;
  }

  async function openPullRequest(
    baseBranch: string,
    name: string,
    files: Record<string, string> = { [`${name}.txt`]: `${name}\n` },
    approve = true,
  ): Promise<SimPullRequest> {
    const { sim, repository } = gt.s;
    const branch = `${baseBranch}-${name}`;
    await sim.push(repository, {
      branch,
      files,
      author: 'alice',
      parent: (await sim.branchSha(repository, baseBranch))!,
    });
    const pr = await sim.openPullRequest(repository, {
      head: branch,
      base: baseBranch,
      title: `Add ${name}`,
      author: 'alice',
    });
    if (approve) await sim.review(pr, { author: 'rita', state: 'APPROVED' });
    return pr;
  }

  const say = (pr: SimPullRequest, author: string, body: string) => gt.say(pr, author, body);
  const replies = (pr: SimPullRequest) => gt.replies(pr);

  async function filesAt(sha: string): Promise<Set<string>> {
    const tree = await gt.s.sim.git.tree(gt.s.repository.fullName, sha, true);
    return new Set(tree!.entries.filter((e) => e.type === 'blob').map((e) => e.path));
  }

  /**
   * Runs the queue until it is quiet: the minion takes every land job and
   * fails `test` where `fails` says the staging commit's files fail.
   */
  async function runQueue(fails: (files: Set<string>) => boolean = () => false) {
    for (let round = 0; round < 200; round++) {
      await gt.settle();
      let ran = 0;
      for (;;) {
        const run = await minion.claim();
        if (!run) break;
        ran++;
        const failed = run.label === 'test' && fails(await filesAt(run.sha));
        await minion.report(run.runId, failed ? 'failure' : 'success');
      }
      await gt.settle();
      if (ran === 0 && (await gt.tower.landing!.tick()) === 0) return;
    }
    throw new Error('the landing queue did not come to rest');
  }

  async function queueOf(baseBranch: string) {
    const response = await gt.tower.app.request(`/api/v1/repos/${gt.s.repository.fullName}/queue`);
    expect(response.status).toBe(200);
    const view = (await response.json()) as QueueView;
    const queue = view.queues.find((q) => q.base === baseBranch);
    if (!queue) throw new Error(`${baseBranch} has no landing queue`);
    return queue;
  }

  /** The entry of a pull request in the queue API; undefined when it was never queued. */
  async function entryOf(baseBranch: string, pr: SimPullRequest) {
    const response = await gt.tower.app.request(`/api/v1/repos/${gt.s.repository.fullName}/queue`);
    const view = (await response.json()) as QueueView;
    return view.queues
      .find((q) => q.base === baseBranch)
      ?.pullRequests.find((p) => p.number === pr.number);
  }

  /** Every commit the base branch has pointed at since `from`, from the push webhooks. */
  function tipsOf(baseBranch: string): string[] {
    return gt.s.sim.deliveries
      .filter(
        (d) =>
          d.event === 'push' &&
          d.payload.ref === `refs/heads/${baseBranch}` &&
          d.payload.before !== '0000000000000000000000000000000000000000',
      )
      .map((d) => d.payload.after as string);
  }

  /** The results of the land graphs run on a commit. */
  async function landResults(sha: string): Promise<string[]> {
    const rows = await database.db
      .select({ result: graphs.result, type: events.type })
      .from(graphs)
      .innerJoin(events, eq(graphs.eventId, events.id))
      .where(eq(graphs.sha, sha));
    return rows.filter((r) => r.type === 'land').map((r) => r.result ?? 'running');
  }

  it('lands 8 of 10, sends back the one that fails alone and the later of a failing pair', async () => {
    const { sim, repository } = gt.s;
    const branch = await newBase();
    const start = (await sim.branchSha(repository, branch))!;
    const prs: SimPullRequest[] = [];
    for (let i = 1; i <= 10; i++) prs.push(await openPullRequest(branch, `pr-${i}`));
    for (const pr of prs) await say(pr, 'alice', '/tower land');
    expect(replies(prs[0]!).at(-1)).toContain('✅ `/tower land`: queued to land on `base-1`');

    // pr-4 fails on its own; pr-6 and pr-8 pass alone and fail together.
    await runQueue(
      (files) => files.has('pr-4.txt') || (files.has('pr-6.txt') && files.has('pr-8.txt')),
    );

    const queue = await queueOf(branch);
    const outcome = Object.fromEntries(queue.pullRequests.map((p) => [p.number, p.state]));
    const numbers = prs.map((p) => p.number);
    expect(numbers.map((n) => outcome[n])).toEqual([
      'landed',
      'landed',
      'landed',
      'failed',
      'landed',
      'landed',
      'landed',
      'failed',
      'landed',
      'landed',
    ]);
    expect(queue.batches).toEqual([]);
    expect(queue.waiting).toEqual([]);

    // The base branch has every landed pull request, and neither of the failing ones.
    const tip = (await sim.branchSha(repository, branch))!;
    const files = await filesAt(tip);
    for (const i of [1, 2, 3, 5, 6, 7, 9, 10]) expect(files.has(`pr-${i}.txt`)).toBe(true);
    expect(files.has('pr-4.txt')).toBe(false);
    expect(files.has('pr-8.txt')).toBe(false);

    // Every commit the base branch pointed at is one whose land graphs all passed.
    const tips = tipsOf(branch);
    expect(tips.length).toBeGreaterThan(0);
    expect(tips.at(-1)).toBe(tip);
    for (const sha of tips) {
      const results = await landResults(sha);
      expect(results.length, `land graphs of ${sha}`).toBeGreaterThan(0);
      expect(results.every((r) => r === 'success')).toBe(true);
    }
    // Fast-forwards only: the first tip descends from where the branch started.
    expect(await sim.git.isAncestor(repository.fullName, start, tips[0]!)).toBe(true);
    for (let i = 1; i < tips.length; i++) {
      expect(await sim.git.isAncestor(repository.fullName, tips[i - 1]!, tips[i]!)).toBe(true);
    }

    // GitHub marks merge-method pull requests merged; the failing ones stay open.
    for (const [i, pr] of prs.entries()) {
      expect(pr.state, `pr-${i + 1}`).toBe(i === 3 || i === 7 ? 'open' : 'closed');
      expect(pr.merged).toBe(i !== 3 && i !== 7);
    }

    // The failing ones are told why, with links to the failing jobs; one comment each.
    for (const pr of [prs[3]!, prs[7]!]) {
      const landing = replies(pr).filter((body) => body.includes('landing queue'));
      expect(landing).toHaveLength(1);
      expect(landing[0]).toContain('❌ Sent back from the landing queue of `base-1`');
      expect(landing[0]).toMatch(/\[test\]\(http:\/\/[^)]+\/jobs\/\d+\): failure/);
    }
    expect(replies(prs[0]!).filter((b) => b.startsWith('🛬'))).toHaveLength(1);

    // tower/land check runs say what happened.
    const landCheck = (pr: SimPullRequest) =>
      sim
        .checkRuns(repository, pr.head.sha)
        .filter((r) => r.name === 'tower/land')
        .map((r) => ({ conclusion: r.conclusion, title: r.output.title }));
    expect(landCheck(prs[0]!)).toEqual([
      { conclusion: 'success', title: expect.stringMatching(/^Landed in [0-9a-f]{12}$/) },
    ]);
    expect(landCheck(prs[3]!)).toEqual([{ conclusion: 'failure', title: 'Sent back' }]);

    // Staging branches are cleaned up.
    const refs = await sim.git.refs(repository.fullName, 'refs/heads/tower/');
    expect(refs).toEqual([]);

    // Land graphs come from the pull requests' own .tower/: never for restricted minions.
    const landGraphs = await database.db
      .select({ protectedBranch: graphs.protectedBranch })
      .from(graphs)
      .innerJoin(events, eq(graphs.eventId, events.id))
      .where(eq(events.type, 'land'));
    expect(landGraphs.length).toBeGreaterThan(0);
    expect(landGraphs.filter((g) => g.protectedBranch)).toEqual([]);
  }, 180_000);

  const landingComment = (pr: SimPullRequest) =>
    replies(pr).filter((body) => body.includes('landing queue') || body.startsWith('🛬'));

  it('answers the queue API for repositories Tower is on, and 404 for others', async () => {
    const response = await gt.tower.app.request('/api/v1/repos/nobody/nothing/queue');
    expect(response.status).toBe(404);
    expect(await response.json()).toEqual({
      error: 'not_found',
      message: 'Tower is not installed on nobody/nothing',
    });
    // Any case, as GitHub's names are.
    const upper = await gt.tower.app.request(
      `/api/v1/repos/${gt.s.repository.fullName.toUpperCase()}/queue`,
    );
    expect(upper.status).toBe(200);
    expect(((await upper.json()) as QueueView).repository).toBe(gt.s.repository.fullName);
  });

  it('drops a pull request that no longer merges, naming the conflicting file, and lands the rest', async () => {
    const { sim, repository } = gt.s;
    const branch = await newBase();
    const first = await openPullRequest(branch, 'one', { 'shared.txt': 'one\n', 'one.txt': '1\n' });
    const second = await openPullRequest(branch, 'two', { 'shared.txt': 'two\n' });
    await say(first, 'alice', '/tower land');
    await say(second, 'alice', '/tower land');
    await runQueue();
    expect((await entryOf(branch, first))?.state).toBe('landed');
    expect(await entryOf(branch, second)).toMatchObject({ state: 'failed' });
    const [comment] = landingComment(second);
    expect(comment).toContain('❌ Sent back from the landing queue of');
    expect(comment).toContain('it does not merge: it no longer merges into');
    expect(comment).toContain('both sides changed `shared.txt`');
    const tip = (await sim.branchSha(repository, branch))!;
    expect((await filesAt(tip)).has('one.txt')).toBe(true);
  }, 120_000);

  it('takes a pull request out when it is pushed to, closed, or made a draft', async () => {
    const { sim, repository } = gt.s;
    const branch = await newBase();
    const pushed = await openPullRequest(branch, 'pushed');
    const closed = await openPullRequest(branch, 'closed');
    await say(pushed, 'alice', '/tower land');
    await say(closed, 'alice', '/tower land');
    const before = pushed.head.sha;
    await sim.push(repository, {
      branch: pushed.head.ref,
      files: { 'more.txt': 'x\n' },
      author: 'alice',
    });
    await sim.closePullRequest(closed, 'alice');
    await gt.settle();
    expect(await entryOf(branch, pushed)).toMatchObject({
      state: 'dequeued',
      reason: expect.stringContaining('new commits were pushed'),
    });
    expect(await entryOf(branch, closed)).toMatchObject({
      state: 'dequeued',
      reason: 'it was closed',
    });
    expect(landingComment(pushed).at(-1)).toContain('↩️ Taken out of the landing queue');
    // Made a draft, heard from its webhook (paused: no staging build looks first).
    await say(pushed, 'ada', '/tower queue pause');
    const drafted = await openPullRequest(branch, 'drafted');
    await say(drafted, 'alice', '/tower land');
    await sim.convertToDraft(drafted, 'alice');
    await gt.settle();
    expect(await entryOf(branch, drafted)).toMatchObject({
      state: 'dequeued',
      reason: 'it was made a draft',
    });
    await say(pushed, 'ada', '/tower queue resume');
    await runQueue();
    // Nothing landed: the base is where it was, and no staging branch is left.
    const queue = await queueOf(branch);
    expect(queue.batches).toEqual([]);
    expect(await sim.git.refs(repository.fullName, `refs/heads/tower/staging/${branch}/`)).toEqual(
      [],
    );
    expect(await landResults(before)).toEqual([]);
  }, 120_000);

  it('builds staging again on the new tip when the base branch moves outside the queue', async () => {
    const { sim, repository } = gt.s;
    const branch = await newBase();
    const pr = await openPullRequest(branch, 'feature');
    await say(pr, 'alice', '/tower land');
    const [batch] = (await queueOf(branch)).batches;
    expect(batch).toMatchObject({ state: 'testing', prs: [pr.number] });
    // Someone pushes to the base directly while the land graph runs.
    const outside = await sim.push(repository, {
      branch,
      files: { 'hotfix.txt': 'fix\n' },
      author: 'alice',
    });
    await gt.settle();
    const [rebuilt] = (await queueOf(branch)).batches;
    expect(rebuilt!.id).not.toBe(batch!.id);
    expect(rebuilt).toMatchObject({ onto: outside, prs: [pr.number] });
    await runQueue();
    expect((await entryOf(branch, pr))?.state).toBe('landed');
    const tip = (await sim.branchSha(repository, branch))!;
    expect(await sim.git.isAncestor(repository.fullName, outside, tip)).toBe(true);
    expect(await landResults(tip)).toEqual(['success']);
    // The graph of the staging commit built on the old tip was cancelled, not landed.
    expect(await landResults(batch!.stagingSha!)).toEqual(['cancelled']);
  }, 120_000);

  it('pauses, saying why, when GitHub refuses to move a protected base, and lands once resumed', async () => {
    const { sim, repository } = gt.s;
    const branch = await newBase();
    const start = (await sim.branchSha(repository, branch))!;
    const pr = await openPullRequest(branch, 'guarded');
    sim.protectBranch(repository, branch);
    await say(pr, 'alice', '/tower land');
    await runQueue();
    const paused = await queueOf(branch);
    expect(paused.mode).toBe('paused');
    expect(paused.pausedBecause).toContain('GitHub refused to fast-forward the base branch');
    expect(await sim.branchSha(repository, branch)).toBe(start);
    expect((await entryOf(branch, pr))?.state).not.toBe('landed');
    sim.protectBranch(repository, branch, false);
    await say(pr, 'ada', '/tower queue resume');
    await runQueue();
    expect((await entryOf(branch, pr))?.state).toBe('landed');
  }, 120_000);

  it('pauses and resumes for admins only, and takes higher priorities first', async () => {
    const { sim, repository } = gt.s;
    const branch = await newBase(`  approvals: 1
  batch: { min: 1, max: 1 }
  parallel: 1`);
    const low = await openPullRequest(branch, 'low');
    const high = await openPullRequest(branch, 'high');
    const later = await openPullRequest(branch, 'later');
    await say(low, 'alice', '/tower land');
    // A queue exists once something was queued; pausing needs admin.
    await say(low, 'alice', '/tower queue pause');
    expect(replies(low).at(-1)).toContain(
      '`/tower queue pause`: refused: @alice has write permission on acme/widgets, and it needs admin.',
    );
    await say(low, 'ada', '/tower queue pause');
    expect(replies(low).at(-1)).toContain(`the landing queue of \`${branch}\` is paused`);
    await say(later, 'alice', '/tower land');
    await say(high, 'alice', '/tower land p=5');
    expect(replies(high).at(-1)).toContain('priority 5');
    await runQueue();
    // Paused: the first batch was under way and finishes testing, but nothing lands.
    let queue = await queueOf(branch);
    expect(queue.mode).toBe('paused');
    expect(queue.waiting.map((w) => w.number)).toEqual([high.number, later.number]);
    const tipWhilePaused = await sim.branchSha(repository, branch);
    await say(low, 'ada', '/tower queue resume');
    await runQueue();
    queue = await queueOf(branch);
    expect(queue.mode).toBe('running');
    const landedAt = (pr: SimPullRequest) =>
      queue.pullRequests.find((p) => p.number === pr.number)!.landedSha!;
    const tips = tipsOf(branch);
    const order = [low, high, later].map((pr) => tips.indexOf(landedAt(pr)));
    expect(order.every((i) => i >= 0)).toBe(true);
    // #low was first in line before the pause; then the higher priority goes before the older.
    expect(order[0]).toBeLessThan(order[1]!);
    expect(order[1]).toBeLessThan(order[2]!);
    expect(tipWhilePaused).not.toBe(await sim.branchSha(repository, branch));
  }, 120_000);

  it('refuses people without write permission, pull requests without approval, and a lost approval', async () => {
    const { sim } = gt.s;
    const branch = await newBase();
    const pr = await openPullRequest(branch, 'rules');
    await say(pr, 'reader', '/tower land');
    expect(replies(pr).at(-1)).toContain(
      '❌ `/tower land`: refused: @reader has read permission on acme/widgets, and it needs write.',
    );
    await sim.addLabel(pr, 'ready-to-land', 'reader');
    await gt.settle();
    expect(replies(pr).at(-1)).toContain(
      '❌ The `ready-to-land` label does not queue this pull request: @reader has read permission, and landing needs write.',
    );
    expect(await entryOf(branch, pr)).toBeUndefined();

    const unreviewed = await openPullRequest(
      branch,
      'unreviewed',
      { 'unreviewed.txt': 'u\n' },
      false,
    );
    await say(unreviewed, 'alice', '/tower land');
    expect(replies(unreviewed).at(-1)).toContain(
      '❌ `/tower land`: refused: it needs 1 approving review of its head commit',
    );

    // The label queues, for someone who may write.
    await sim.addLabel(pr, 'ready-to-land', 'alice');
    await gt.settle();
    expect(replies(pr).at(-1)).toContain('✅ The `ready-to-land` label: queued to land on');
    // Reviews after queueing take a pull request out at once, from their webhooks: the queue
    // is paused, so no staging commit is built that would check the reviews again.
    await say(pr, 'ada', '/tower queue pause');
    const other = await openPullRequest(branch, 'other');
    await say(other, 'alice', '/tower land');
    await sim.review(other, { author: 'rita', state: 'CHANGES_REQUESTED' });
    await gt.settle();
    expect(await entryOf(branch, other)).toMatchObject({
      state: 'dequeued',
      reason: 'changes are requested by @rita',
    });
    const third = await openPullRequest(branch, 'third');
    await say(third, 'alice', '/tower land');
    expect((await entryOf(branch, third))?.state).toBe('queued');
    const approval = sim.state.reviews.find(
      (r) => r.repositoryId === third.repositoryId && r.pullNumber === third.number,
    )!;
    await sim.dismissReview(third, approval, 'ada');
    await gt.settle();
    expect(await entryOf(branch, third)).toMatchObject({
      state: 'dequeued',
      reason: expect.stringMatching(
        /^it needs 1 approving review of its head commit [0-9a-f]{12} by people with write permission and has 0$/,
      ),
    });
    // A comment review changes nothing.
    await sim.review(pr, { author: 'rita', state: 'COMMENTED', body: 'nit' });
    await gt.settle();
    expect((await entryOf(branch, pr))?.state).toBe('queued');
    await say(pr, 'ada', '/tower queue resume');
    await runQueue();
    expect((await entryOf(branch, pr))?.state).toBe('landed');
  }, 120_000);

  it('lands squash and rebase pull requests as new commits, and closes them naming the commit', async () => {
    const { sim, repository } = gt.s;
    for (const method of ['squash', 'rebase'] as const) {
      const branch = await newBase(`  method: ${method}\n  approvals: 1`);
      const start = (await sim.branchSha(repository, branch))!;
      const pr = await openPullRequest(branch, `${method}-feature`);
      await sim.push(repository, {
        branch: pr.head.ref,
        files: { [`${method}-second.txt`]: '2\n' },
        message: 'Second commit',
        author: 'alice',
      });
      // An approval counts for the commit it was written on: the second commit needs its own.
      await sim.review(pr, { author: 'rita', state: 'APPROVED' });
      await gt.settle();
      await say(pr, 'alice', '/tower land');
      await runQueue();
      const tip = (await sim.branchSha(repository, branch))!;
      const log = await sim.git.log(repository.fullName, tip);
      const added = log.slice(
        0,
        log.findIndex((c) => c.sha === start),
      );
      if (method === 'squash') {
        expect(added.map((c) => c.message.trim())).toEqual([
          `Add ${method}-feature (#${pr.number})`,
        ]);
      } else {
        expect(added.map((c) => c.message.trim())).toEqual([
          'Second commit',
          `Update ${method}-feature.txt`,
        ]);
      }
      expect(added.every((c) => c.parents.length === 1)).toBe(true);
      expect(pr.state).toBe('closed');
      expect(pr.merged).toBe(false);
      expect(landingComment(pr).at(-1)).toContain(
        `as ${tip} (${method === 'squash' ? 'squashed' : 'rebased'})`,
      );
      expect(await landResults(tip)).toEqual(['success']);
    }
  }, 180_000);
});
