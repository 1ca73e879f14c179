/**
 * Issue 6 against the GitHub simulator: pushes and pull requests become
 * graphs from the repository's own `.tower/`, every job a check run that
 * tells the truth; a broken `.tower/` fails with annotations at its lines.
 * Nothing mocks Octokit: Tower talks to the simulator over HTTP, and the
 * simulator validates every request against GitHub's OpenAPI description.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { backends, type TestDatabase } from './support/databases.js';
import { checksOf, startGitHubTower, type GitHubTower } from './support/github-tower.js';

const CI = `version: 1
schedulers:
  - { on: push, branches: [main], graph: ci }
  - { on: pull_request, graph: ci }
graphs:
  ci:
    jobs:
      build: { requires: [linux], command: make build }
      test: { requires: [linux], command: make test, needs: [build] }
      lint: { requires: [linux], command: make lint }
      docs: { requires: [linux], command: make docs, changed: ['docs/**'] }
`;

describe.each(backends())('GitHub end to end on $name', (backend) => {
  let database: TestDatabase;
  let gt: GitHubTower;

  beforeAll(async () => {
    database = await backend.open();
    gt = await startGitHubTower(database, {
      files: { 'README.md': '# widgets\n', Makefile: 'all:\n', '.tower/ci.yml': CI },
    });
  });
  afterAll(async () => {
    await gt?.close();
    await database?.dispose();
  });
  afterEach(() => {
    expect(gt.s.sim.violations.list()).toEqual([]);
  });

  it('turns a push into a graph whose jobs are check runs, queued, then concluded as they end', async () => {
    const { sim, repository } = gt.s;
    const minion = await gt.minion(['linux']);
    const sha = await sim.push(repository, {
      branch: 'main',
      files: { 'src/a.js': 'a\n' },
      author: 'alice',
    });
    await gt.settle();
    expect(checksOf(gt, repository, sha)).toEqual({
      'Tower: ci': { status: 'queued', conclusion: null, title: '1 skipped, 3 waiting' },
      'ci / build': { status: 'queued', conclusion: null, title: 'Waiting for a minion' },
      'ci / test': { status: 'queued', conclusion: null, title: 'Waiting' },
      'ci / lint': { status: 'queued', conclusion: null, title: 'Waiting for a minion' },
      // The path filter matched nothing: skipped at once, never pending.
      'ci / docs': {
        status: 'completed',
        conclusion: 'skipped',
        title: 'skipped: no changed file matches its path filter',
      },
    });

    const build = (await minion.claim())!;
    expect(build.label).toBe('build');
    await minion.log(build.runId, 'compiling\nlinking\n<script>alert(1)</script>\n');
    await minion.report(build.runId, 'success', { exitCode: 0 });
    const lint = (await minion.claim())!;
    await minion.report(lint.runId, 'failure', { exitCode: 2 });
    await gt.settle();
    const partway = checksOf(gt, repository, sha);
    expect(partway['ci / build']).toEqual({
      status: 'completed',
      conclusion: 'success',
      title: 'success',
    });
    expect(partway['ci / lint']).toEqual({
      status: 'completed',
      conclusion: 'failure',
      title: 'failure: exit code 2',
    });
    const buildRun = sim.checkRuns(repository, sha).find((r) => r.name === 'ci / build')!;
    expect(buildRun.output.text).toContain('compiling\nlinking');
    expect(buildRun.externalId).toMatch(/^tower:\d+:\d+$/);
    expect(buildRun.detailsUrl).toMatch(/^http:\/\/localhost\/jobs\/\d+$/);
    // details_url is Tower's page for the job: escaped, whatever the log holds.
    const page = await gt.tower.app.request(new URL(buildRun.detailsUrl!).pathname);
    expect(page.status).toBe(200);
    const body = await page.text();
    expect(body).toContain('<h1>build</h1>');
    expect(body).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
    expect(body).not.toContain('<script>alert');
    const graphPage = await (
      await gt.tower.app.request(body.match(/href="(\/graphs\/\d+)"/)![1]!)
    ).text();
    expect(graphPage).toMatch(/<a href="\/jobs\/\d+">lint<\/a>/);
    const lintRun = sim.checkRuns(repository, sha).find((r) => r.name === 'ci / lint')!;
    expect(lintRun.actions.map((a) => a.identifier)).toEqual(['retrigger', 'retry-failed']);

    expect(await minion.runAll()).toEqual(['test']);
    await gt.settle();
    expect(checksOf(gt, repository, sha)).toMatchObject({
      'Tower: ci': { status: 'completed', conclusion: 'failure' },
      'ci / test': { status: 'completed', conclusion: 'success' },
    });
    const summary = sim.checkRuns(repository, sha).find((r) => r.name === 'Tower: ci')!;
    expect(summary.output.title).toBe('failure: 1 failure, 1 skipped, 2 success');
    expect(summary.output.summary).toContain('[lint]');
    // One check run per job and the summary: none was created twice.
    expect(sim.checkRuns(repository, sha)).toHaveLength(5);
  });

  it('gives a repository without .tower/ nothing, and honours [skip ci]', async () => {
    const { sim, repository } = gt.s;
    const before = sim.state.checkRuns.length;
    const skipped = await sim.push(repository, {
      branch: 'main',
      files: { 'notes.txt': 'n\n' },
      message: 'Tidy the notes [skip ci]',
      author: 'alice',
    });
    const bare = await sim.createRepository({
      owner: 'acme',
      name: 'bare',
      files: { 'README.md': 'no CI here\n' },
    });
    await sim.addRepositories(gt.s.installation, [bare], 'acme-admin');
    await sim.push(bare, { branch: 'main', files: { 'a.txt': 'a\n' }, author: 'alice' });
    await gt.settle();
    expect(sim.checkRuns(repository, skipped)).toEqual([]);
    expect(sim.state.checkRuns.length).toBe(before);
  });

  it('reports broken .tower/ definitions as a failing check run with annotations at their lines', async () => {
    const { sim, repository } = gt.s;
    const sha = await sim.push(repository, {
      branch: 'main',
      files: {
        '.tower/ci.yml': CI.replace('needs: [build]', 'needs: [biuld]').replace(
          'command: make lint',
          'command: make lint, retries: many',
        ),
      },
      author: 'alice',
    });
    await gt.settle();
    const [run, ...others] = sim.checkRuns(repository, sha);
    expect(others).toEqual([]);
    expect(run).toMatchObject({
      name: 'Tower: .tower/',
      status: 'completed',
      conclusion: 'failure',
      output: { title: '2 errors in .tower/' },
    });
    expect(run!.annotations.map((a) => [a.path, a.startLine, a.annotationLevel]).sort()).toEqual([
      // test's needs (line 9) and lint's retries (line 10).
      ['.tower/ci.yml', 10, 'failure'],
      ['.tower/ci.yml', 9, 'failure'],
    ]);
    expect(run!.annotations.map((a) => a.message).join('\n')).toMatch(/biuld/);
    // Fixed again, for the tests after this one.
    await sim.push(repository, { branch: 'main', files: { '.tower/ci.yml': CI }, author: 'alice' });
    const minion = await gt.minion(['linux']);
    await gt.settle();
    await minion.runAll();
  });
});
