/**
 * Issue 6: people steer a pull request's graph from GitHub. Comment
 * commands with GitHub's permissions, the Re-run and action buttons,
 * redeliveries that change nothing, superseding pushes, fork safety with
 * `/tower ok-to-test`, and notify jobs' comments, all against the
 * simulator.
 */
import { eq } from 'drizzle-orm';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { graphs, runs } from '../src/db/schema.js';
import type { SimPullRequest } from '../src/sandbox/model.js';
import { backends, type TestDatabase } from './support/databases.js';
import { checksOf, startGitHubTower, type GitHubTower } from './support/github-tower.js';

const CI = `version: 1
branches:
  default: { extra: false }
schedulers:
  - { on: pull_request, graph: ci }
graphs:
  ci:
    jobs:
      build: { requires: [linux], command: make build }
      test: { requires: [linux], command: make test, needs: [build] }
      lint: { requires: [linux], command: make lint }
      sign-off: { kind: breakpoint, approvers: ['team:qa', carol], needs: [test] }
      tell: { kind: notify, comment: 'tests passed on \${{ sha }}', needs: [test] }
    include:
      - { graph: extra, active: extra }
  extra:
    jobs:
      slow: { requires: [linux], command: make slow }
`;

describe.each(backends())('GitHub commands and buttons on $name', (backend) => {
  let database: TestDatabase;
  let gt: GitHubTower;
  let branches = 0;

  beforeAll(async () => {
    database = await backend.open();
    gt = await startGitHubTower(database, { files: { 'README.md': '# w\n', '.tower/ci.yml': CI } });
    const { sim, repository } = gt.s;
    sim.setPermission(repository, 'alice', 'write');
    sim.setPermission(repository, 'bob', 'write');
    sim.setPermission(repository, 'reader', 'read');
    sim.setPermission(repository, 'dave', 'read');
    sim.addTeamMember('acme', 'qa', 'dave');
  });
  afterAll(async () => {
    await gt?.close();
    await database?.dispose();
  });
  afterEach(async () => {
    expect(gt.s.sim.violations.list()).toEqual([]);
    // Nothing a test leaves running reaches the next one's minions.
    for (const graph of await database.db
      .select()
      .from(graphs)
      .where(eq(graphs.state, 'running'))) {
      await gt.tower.scheduler.cancel({ graphId: graph.id });
    }
  });

  async function openPullRequest(author = 'alice'): Promise<SimPullRequest> {
    const { sim, repository } = gt.s;
    const branch = `feature-${++branches}`;
    await sim.push(repository, { branch, files: { [`${branch}.txt`]: 'x\n' }, author });
    return sim.openPullRequest(repository, { head: branch, title: branch, author });
  }

  const say = (pr: SimPullRequest, author: string, body: string) => gt.say(pr, author, body);
  const replies = (pr: SimPullRequest) => gt.replies(pr);

  async function runCount(): Promise<number> {
    return (await database.db.select().from(runs)).length;
  }

  it('carries out commands for people with write permission, and says why when it refuses', async () => {
    const { sim, repository } = gt.s;
    const minion = await gt.minion(['linux']);
    const pr = await openPullRequest();
    await gt.settle();
    expect(await minion.runAll((label) => (label === 'lint' ? 'failure' : 'success'))).toEqual([
      'build',
      'lint',
      'test',
    ]);
    await gt.settle();
    const sha = pr.head.sha;
    expect(checksOf(gt, repository, sha)).toMatchObject({
      'ci / lint': { status: 'completed', conclusion: 'failure' },
      'ci / sign-off': { status: 'queued' },
      'ci / slow': { status: 'completed', conclusion: 'skipped', title: 'Not run: inactive' },
      'ci / tell': { status: 'completed', conclusion: 'success' },
    });
    // The notify job's comment is on the pull request.
    expect(replies(pr)).toEqual([`tests passed on ${sha}`]);

    const before = await runCount();
    await say(pr, 'reader', '/tower retry');
    expect(await runCount()).toBe(before);
    expect(replies(pr).at(-1)).toContain(
      '❌ `/tower retry`: refused: @reader has read permission on acme/widgets, and it needs write.',
    );

    await say(pr, 'bob', '/tower retry\n/tower run slow\n/tower approve sign-off');
    const reply = replies(pr).at(-1)!;
    expect(reply).toContain('✅ `/tower retry`: retriggered `lint`.');
    expect(reply).toContain('✅ `/tower run slow`: started `slow`.');
    expect(reply).toContain(
      '❌ `/tower approve sign-off`: refused: @bob may approve no breakpoint of this pull request (approvers as `main` names them: `sign-off`: carol, team:qa).',
    );
    expect((await minion.runAll()).sort()).toEqual(['lint', 'slow']);
    await gt.settle();
    // The retried job has a second check run; the first stays as history.
    const lintRuns = sim.checkRuns(repository, sha).filter((r) => r.name === 'ci / lint');
    expect(lintRuns.map((r) => r.conclusion)).toEqual(['failure', 'success']);

    // A member of team qa may approve, though they cannot write.
    await say(pr, 'dave', '/tower approve sign-off');
    expect(replies(pr).at(-1)).toContain('✅ `/tower approve sign-off`: approved `sign-off`.');
    expect(checksOf(gt, repository, sha)).toMatchObject({
      'Tower: ci': { status: 'completed', conclusion: 'success' },
      'ci / sign-off': { status: 'completed', conclusion: 'success' },
    });

    await say(pr, 'bob', 'Hm.\n/tower frobnicate\n');
    expect(replies(pr).at(-1)).toContain(
      '❌ `/tower frobnicate`: Tower has no command `frobnicate`',
    );
    expect(replies(pr).at(-1)).toContain('| `/tower retrigger <job|glob> …` |');
    await say(pr, 'bob', '/tower retrigger nothing-like-this');
    expect(replies(pr).at(-1)).toContain('`/tower retrigger nothing-like-this`: no job matches.');
  });

  it('changes nothing when a comment is delivered again', async () => {
    const { sim } = gt.s;
    const minion = await gt.minion(['linux']);
    const pr = await openPullRequest();
    await gt.settle();
    await minion.runAll(() => 'failure');
    await say(pr, 'bob', '/tower retry');
    const delivery = sim.deliveries.filter((d) => d.event === 'issue_comment').at(-1)!;
    const runsBefore = await runCount();
    const repliesBefore = replies(pr).length;
    await sim.redeliver(delivery.id);
    await sim.redeliver(delivery.id, { asNew: true });
    await gt.settle();
    expect(await runCount()).toBe(runsBefore);
    expect(replies(pr)).toHaveLength(repliesBefore);
    // The pull request's own delivery, again: no second graph.
    const opened = sim.deliveries.filter((d) => d.event === 'pull_request').at(-1)!;
    const graphsBefore = (await database.db.select().from(graphs)).length;
    await sim.redeliver(opened.id, { asNew: true });
    await gt.settle();
    expect((await database.db.select().from(graphs)).length).toBe(graphsBefore);
  });

  it('retriggers from the Re-run and action buttons, for people who may write', async () => {
    const { sim, repository } = gt.s;
    const minion = await gt.minion(['linux']);
    const pr = await openPullRequest();
    await gt.settle();
    await minion.runAll((label) => (label === 'lint' ? 'failure' : 'success'));
    await gt.settle();
    const lint = () => sim.checkRuns(repository, pr.head.sha).filter((r) => r.name === 'ci / lint');
    const first = lint()[0]!;
    // GitHub offers Re-run once the whole suite has completed: the breakpoint must be passed.
    await expect(sim.rerequestCheckRun(first.id, 'bob')).rejects.toThrow('not completed');
    await say(pr, 'dave', '/tower approve sign-off');

    const before = await runCount();
    await sim.rerequestCheckRun(first.id, 'reader');
    await gt.settle();
    expect(await runCount()).toBe(before);

    await sim.rerequestCheckRun(first.id, 'bob');
    await gt.settle();
    expect(await minion.runAll(() => 'failure')).toEqual(['lint']);
    await gt.settle();
    await sim.requestAction(lint().at(-1)!.id, 'retry-failed', 'bob');
    await gt.settle();
    expect(await minion.runAll(() => 'failure')).toEqual(['lint']);
    await gt.settle();
    const suite = sim.state.checkSuites.find((s) => s.headSha === pr.head.sha)!;
    await sim.rerequestCheckSuite(suite.id, 'bob');
    await gt.settle();
    expect(await minion.runAll()).toEqual(['lint']);
    await gt.settle();
    expect(lint().map((r) => r.conclusion)).toEqual(['failure', 'failure', 'failure', 'success']);
  });

  it('cancels on /tower cancel, and when the pull request is closed', async () => {
    const { sim, repository } = gt.s;
    const minion = await gt.minion(['linux']);
    const pr = await openPullRequest();
    await gt.settle();
    const build = (await minion.claim())!;
    await say(pr, 'bob', '/tower cancel');
    expect(replies(pr).at(-1)).toMatch(/✅ `\/tower cancel`: cancelled \d+ jobs\./);
    await gt.settle();
    expect(checksOf(gt, repository, pr.head.sha)).toMatchObject({
      'Tower: ci': { status: 'completed', conclusion: 'cancelled' },
      'ci / build': {
        status: 'completed',
        conclusion: 'cancelled',
        title: 'cancelled: cancelled on request',
      },
      'ci / lint': { status: 'completed', conclusion: 'cancelled' },
    });
    // The minion's run was taken away: its report is refused.
    await expect(minion.report(build.runId, 'success')).rejects.toThrow('report refused');
    await say(pr, 'bob', '/tower cancel');
    expect(replies(pr).at(-1)).toContain('❌ `/tower cancel`: nothing was left to cancel.');

    const closing = await openPullRequest();
    await gt.settle();
    await sim.closePullRequest(closing, 'alice');
    await gt.settle();
    expect(checksOf(gt, repository, closing.head.sha)).toMatchObject({
      'Tower: ci': { status: 'completed', conclusion: 'cancelled' },
      'ci / build': { status: 'completed', conclusion: 'cancelled' },
    });
  });

  it('supersedes the older graph when the pull request gets a new push', async () => {
    const { sim, repository } = gt.s;
    const pr = await openPullRequest();
    await gt.settle();
    const old = pr.head.sha;
    await sim.push(repository, {
      branch: pr.head.ref,
      files: { 'more.txt': 'm\n' },
      author: 'alice',
    });
    await gt.settle();
    expect(checksOf(gt, repository, old)).toMatchObject({
      'Tower: ci': { status: 'completed', conclusion: 'cancelled' },
      'ci / build': {
        status: 'completed',
        conclusion: 'cancelled',
        title: 'cancelled: a newer push superseded it',
      },
    });
    const fresh = sim.state.pullRequest(repository.id, pr.number)!.head.sha;
    expect(fresh).not.toBe(old);
    expect(checksOf(gt, repository, fresh)).toMatchObject({ 'ci / build': { status: 'queued' } });
  });

  it("runs a fork's pull request only after /tower ok-to-test, and then only as untrusted work", async () => {
    const { sim, repository } = gt.s;
    const fork = await sim.fork(repository, 'mallory');
    await sim.push(fork, { branch: 'evil', files: { 'evil.txt': 'x\n' }, author: 'mallory' });
    const pr = await sim.openPullRequest(repository, {
      head: 'mallory:evil',
      title: 'A fork',
      author: 'mallory',
    });
    await gt.settle();
    expect(sim.checkRuns(repository, pr.head.sha)).toEqual([]);
    expect(replies(pr).at(-1)).toContain('comment `/tower ok-to-test`');

    await say(pr, 'mallory', '/tower ok-to-test');
    expect(replies(pr).at(-1)).toContain('refused: @mallory has read permission');
    expect(sim.checkRuns(repository, pr.head.sha)).toEqual([]);

    await say(pr, 'bob', '/tower ok-to-test');
    expect(replies(pr).at(-1)).toContain('approved by @bob: running 1 graph, as untrusted work.');
    const trusted = await gt.minion(['linux']);
    expect(await trusted.claim()).toBeUndefined();
    const untrusted = await gt.minion(['linux'], 'untrusted');
    expect((await untrusted.runAll()).sort()).toEqual(['build', 'lint', 'test']);
    await gt.settle();
    expect(checksOf(gt, repository, pr.head.sha)).toMatchObject({
      'ci / build': { status: 'completed', conclusion: 'success' },
    });
    const [graph] = await database.db.select().from(graphs).where(eq(graphs.sha, pr.head.sha));
    expect(graph!.trust).toBe('untrusted');

    // A new push needs a new ok-to-test.
    await sim.push(fork, { branch: 'evil', files: { 'evil.txt': 'y\n' }, author: 'mallory' });
    await gt.settle();
    const head = sim.state.pullRequest(repository.id, pr.number)!.head.sha;
    expect(sim.checkRuns(repository, head)).toEqual([]);
  });
});
