/**
 * Issue 12, who may do what on the GitHub side, each written as the attack:
 * sock-puppet and stale approvals, commands written before a push, fork
 * pushers, globs that would freeze the server, breakpoint approvers a pull
 * request names for itself, and push graphs marked protected by their
 * branch's name rather than by GitHub.
 */
import { and, eq } from 'drizzle-orm';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { events, graphs } from '../src/db/schema.js';
import type { SimPullRequest } from '../src/sandbox/model.js';
import { backends, type TestDatabase } from './support/databases.js';
import { startGitHubTower, type GitHubTower } from './support/github-tower.js';

const CI = (approvers = 'carol', more = '') => `version: 1
schedulers:
  - { on: push, graph: ci }
  - { on: pull_request, graph: ci }
graphs:
  ci:
    jobs:
      build: { requires: [linux], command: make build }
      sign-off: { kind: breakpoint, approvers: [${approvers}], needs: [build] }${more}
landing:
  approvals: 1
`;

/**
 * The real time moved forward by hand: GitHub times comments and pushes to
 * the second, so that a comment written before a push is told apart by a
 * step of two seconds (the database's own now() never overtakes it).
 */
function steppedClock() {
  let offset = 0;
  return {
    now: () => new Date(Date.now() + offset),
    advance: (ms: number) => void (offset += ms),
  };
}

describe.each(backends())('who may do what, on $name', (backend) => {
  let database: TestDatabase;
  let gt: GitHubTower;
  const clock = steppedClock();
  let branches = 0;

  beforeAll(async () => {
    database = await backend.open();
    gt = await startGitHubTower(database, {
      files: { 'README.md': '# w\n', '.tower/ci.yml': CI() },
      clock,
    });
    const { sim, repository } = gt.s;
    for (const login of ['alice', 'bob', 'rita', 'carol'])
      sim.setPermission(repository, login, 'write');
    sim.setPermission(repository, 'puppet', 'read');
  });
  afterAll(async () => {
    await gt?.close();
    await database?.dispose();
  });
  afterEach(async () => {
    expect(gt.s.sim.violations.list()).toEqual([]);
    for (const graph of await database.db
      .select()
      .from(graphs)
      .where(eq(graphs.state, 'running'))) {
      await gt.tower.scheduler.cancel({ graphId: graph.id });
    }
  });

  async function openPullRequest(
    author = 'alice',
    files: Record<string, string> = {},
  ): Promise<SimPullRequest> {
    const { sim, repository } = gt.s;
    const branch = `feature-${++branches}`;
    await sim.push(repository, {
      branch,
      files: { [`${branch}.txt`]: 'x\n', ...files },
      author,
      parent: (await sim.branchSha(repository, 'main'))!,
    });
    const pr = await sim.openPullRequest(repository, { head: branch, title: branch, author });
    await gt.settle();
    return pr;
  }

  const last = (pr: SimPullRequest) => gt.replies(pr).at(-1) ?? '';
  const queued = async (pr: SimPullRequest) =>
    (await gt.tower.landing!.view(gt.s.repository.fullName))?.queues.some((q) =>
      q.pullRequests.some((p) => p.number === pr.number && p.state === 'queued'),
    ) ?? false;

  it('counts no approval by someone without write permission (a sock puppet)', async () => {
    const pr = await openPullRequest();
    await gt.s.sim.review(pr, { author: 'puppet', state: 'APPROVED' });
    // Changes requested by someone without write block nothing either.
    await gt.s.sim.review(pr, { author: 'stranger', state: 'CHANGES_REQUESTED', body: 'no' });
    clock.advance(2000);
    await gt.say(pr, 'alice', '/tower land');
    expect(last(pr)).toContain(
      '❌ `/tower land`: refused: it needs 1 approving review of its head commit',
    );
    expect(await queued(pr)).toBe(false);
    await gt.s.sim.review(pr, { author: 'rita', state: 'APPROVED' });
    clock.advance(2000);
    await gt.say(pr, 'alice', '/tower land');
    expect(last(pr)).toContain('✅ `/tower land`: queued to land on `main`');
    await gt.say(pr, 'alice', '/tower unland');
  });

  it('counts an approval for the commit it was written on only', async () => {
    const { sim, repository } = gt.s;
    const pr = await openPullRequest();
    await sim.review(pr, { author: 'rita', state: 'APPROVED' });
    clock.advance(2000);
    await sim.push(repository, {
      branch: pr.head.ref,
      files: { 'late.txt': 'l\n' },
      author: 'alice',
    });
    await gt.settle();
    clock.advance(2000);
    await gt.say(pr, 'alice', '/tower land');
    expect(last(pr)).toContain('refused: it needs 1 approving review of its head commit');
    expect(last(pr)).toContain('1 other approval is for an older commit');
    expect(await queued(pr)).toBe(false);
  });

  it('refuses a /tower land written before a push, and takes one that names the head', async () => {
    const { sim, repository } = gt.s;
    const pr = await openPullRequest();
    clock.advance(2000);
    // Written for the head alice saw; GitHub delivers it, and before Tower gets to it…
    await sim.comment(repository, pr.number, { body: '/tower land', author: 'alice' });
    clock.advance(2000);
    await sim.push(repository, {
      branch: pr.head.ref,
      files: { 'sneaky.txt': 's\n' },
      author: 'bob',
    });
    const head = sim.state.pullRequest(repository.id, pr.number)!.head.sha;
    await sim.review(pr, { author: 'rita', state: 'APPROVED' });
    await gt.settle();
    expect(last(pr)).toContain('❌ `/tower land`: refused:');
    expect(last(pr)).toContain('comment again');
    expect(await queued(pr)).toBe(false);

    await gt.say(pr, 'alice', '/tower land 1234567');
    expect(last(pr)).toContain("and the pull request's head is");
    await gt.say(pr, 'alice', `/tower land ${head.slice(0, 10)}`);
    expect(last(pr)).toContain('✅ `/tower land');
    expect(await queued(pr)).toBe(true);
    await gt.say(pr, 'alice', '/tower unland');
  });

  it('waits for /tower ok-to-test when the fork is not the author’s, or its pusher cannot write', async () => {
    const { sim, repository } = gt.s;
    // A maintainer's pull request from a contributor's fork: the contributor pushes to it.
    const theirs = await sim.fork(repository, 'mallory');
    await sim.push(theirs, { branch: 'help', files: { 'help.txt': 'h\n' }, author: 'mallory' });
    const pr = await sim.openPullRequest(repository, {
      head: 'mallory:help',
      title: 'Helping',
      author: 'bob',
    });
    await gt.settle();
    expect(sim.checkRuns(repository, pr.head.sha)).toEqual([]);
    expect(last(pr)).toContain(
      '@mallory, the owner of the fork it comes from, cannot write to acme/widgets',
    );

    // A maintainer's own fork, pushed to by someone else who cannot write.
    const own = await sim.fork(repository, 'bob');
    await sim.push(own, { branch: 'mine', files: { 'mine.txt': 'm\n' }, author: 'bob' });
    const mine = await sim.openPullRequest(repository, {
      head: 'bob:mine',
      title: 'Mine',
      author: 'bob',
    });
    await gt.settle();
    expect(sim.checkRuns(repository, mine.head.sha)).not.toEqual([]);
    clock.advance(2000);
    await sim.push(own, { branch: 'mine', files: { 'evil.txt': 'e\n' }, author: 'mallory' });
    await gt.settle();
    const pushed = sim.state.pullRequest(repository.id, mine.number)!.head.sha;
    expect(sim.checkRuns(repository, pushed)).toEqual([]);
    expect(last(mine)).toContain('@mallory, who pushed its head commit, cannot write');

    clock.advance(2000);
    await gt.say(mine, 'alice', '/tower ok-to-test');
    expect(last(mine)).toContain('approved by @alice: running 1 graph, as untrusted work.');
    const [graph] = await database.db.select().from(graphs).where(eq(graphs.sha, pushed));
    expect(graph!.trust).toBe('untrusted');
  });

  it('answers a pathological glob at once: refused as too complex, or for want of permission', async () => {
    // Chunks of a long label: every \`*\` of a glob may split it anywhere before its "/".
    const long = 'integration-tests-of-the-whole-product-on-linux-x64-in-release';
    const pr = await openPullRequest('alice', {
      '.tower/ci.yml': CI(
        'carol',
        `\n      ${long}: { requires: [linux], command: make it, chunks: 2 }`,
      ),
    });
    const glob = '*?'.repeat(12);
    await gt.say(pr, 'stranger', `/tower approve ${glob}`);
    expect(last(pr)).toContain('is too complex: a pattern has at most 10 wildcards');
    await gt.say(pr, 'alice', `/tower retrigger ${glob}`);
    expect(last(pr)).toContain('is too complex: a pattern has at most 10 wildcards');
    // Within the bounds, a stranger is refused before anything is matched…
    await gt.say(pr, 'stranger', '/tower approve *?*?*?*?*?');
    expect(last(pr)).toContain(
      '❌ `/tower approve *?*?*?*?*?`: refused: @stranger may approve no breakpoint of this pull request',
    );
    // …and a writer's match that would cost too much against these labels is refused unmatched.
    await gt.say(pr, 'alice', '/tower retrigger *?*?*?*?*?');
    expect(last(pr)).toContain(
      '❌ `/tower retrigger *?*?*?*?*?`: refused: the patterns are too complex to match against',
    );
  });

  it('takes breakpoint approvers from the base branch, not from the pull request', async () => {
    const pr = await openPullRequest('alice', { '.tower/ci.yml': CI('alice') });
    const minion = await gt.minion(['linux']);
    await minion.runAll();
    await gt.settle();
    clock.advance(2000);
    await gt.say(pr, 'alice', '/tower approve sign-off');
    expect(last(pr)).toContain(
      'refused: @alice may approve no breakpoint of this pull request (approvers as `main` names them: `sign-off`: carol)',
    );
    // carol, whom main names, is no approver in the pull request's own .tower/: both must name her.
    await gt.say(pr, 'carol', '/tower approve sign-off');
    expect(last(pr)).toContain('refused `sign-off` (carol may not approve "sign-off"');
  });

  it('marks push graphs protected only when GitHub protects the branch', async () => {
    const { sim, repository } = gt.s;
    const protectedOf = async (sha: string) =>
      (
        await database.db
          .select({ protectedBranch: graphs.protectedBranch })
          .from(graphs)
          .innerJoin(events, eq(events.id, graphs.eventId))
          .where(and(eq(graphs.sha, sha), eq(events.type, 'push')))
      ).map((g) => g.protectedBranch);
    // The default branch, unprotected: its name is no protection.
    const open = await sim.push(repository, {
      branch: 'main',
      files: { 'a.txt': 'a\n' },
      author: 'alice',
    });
    await gt.settle();
    expect(await protectedOf(open)).toEqual([false]);
    sim.protectBranch(repository, 'release/1');
    const guarded = await sim.push(repository, {
      branch: 'release/1',
      files: { 'b.txt': 'b\n' },
      author: 'alice',
    });
    await gt.settle();
    expect(await protectedOf(guarded)).toEqual([true]);
    sim.protectBranch(repository, 'release/1', false);
  });
});
