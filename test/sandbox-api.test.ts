import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createAppAuth } from '@octokit/auth-app';
import { RequestError } from '@octokit/request-error';
import { Octokit } from '@octokit/rest';
import { RateLimiter } from '../src/sandbox/limits.js';
import { execFile, manualClock, startSandbox, statusOf, type Sandbox } from './support/sandbox.js';

let s: Sandbox;
const owner = 'acme';
const repo = 'widgets';

beforeAll(async () => {
  s = await startSandbox();
});
afterAll(async () => {
  await s.close();
});
afterEach(async () => {
  await s.sim.settled();
  // Every request in these tests is GitHub-valid unless the test took its violations out.
  expect(s.sim.violations.list()).toEqual([]);
});

/** Expects a refusal with this status, and takes the violation it records. */
async function refused(request: Promise<unknown>, status: number, kind?: string) {
  const error = await request.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(RequestError);
  expect((error as RequestError).status).toBe(status);
  const violations = s.sim.violations.take();
  if (kind) expect(violations.map((v) => v.kind)).toEqual([kind]);
  else expect(violations).toEqual([]);
  return error as RequestError;
}

async function branchFrom(name: string, files: Record<string, string | null>, parent?: string) {
  return s.sim.push(s.repository, {
    branch: name,
    files,
    author: 'alice',
    ...(parent ? { parent } : {}),
  });
}

describe('authentication', () => {
  it('accepts app installation authentication through @octokit/rest, with only the base URL changed', async () => {
    const { data } = await s.octokit.rest.repos.get({ owner, repo });
    expect(data).toMatchObject({
      full_name: 'acme/widgets',
      default_branch: 'main',
      private: false,
    });
    const { data: app } = await s.appOctokit.rest.apps.getAuthenticated();
    expect(app).toMatchObject({ id: s.app.id, slug: 'tower' });
    const { data: installations } = await s.appOctokit.rest.apps.listInstallations();
    expect(installations.map((i) => i.id)).toEqual([s.installation.id]);
    const { data: token } = await s.appOctokit.rest.apps.createInstallationAccessToken({
      installation_id: s.installation.id,
    });
    expect(token.token).toMatch(/^ghs_[A-Za-z0-9_-]{36}$/);
    const { data: found } = await s.appOctokit.rest.apps.getRepoInstallation({ owner, repo });
    expect(found.id).toBe(s.installation.id);
    const { data: listed } = await s.octokit.rest.apps.listReposAccessibleToInstallation();
    expect(listed.repositories.map((r) => r.full_name)).toEqual(['acme/widgets']);
  });

  it('refuses a JWT signed by another key, a forged token, and no credentials', async () => {
    const { generateAppKey } = await import('./support/github-app.js');
    const forged = new Octokit({
      baseUrl: s.apiUrl,
      authStrategy: createAppAuth,
      auth: { appId: s.app.id, privateKey: generateAppKey() },
    });
    await refused(forged.rest.apps.getAuthenticated(), 401);
    const fake = new Octokit({
      baseUrl: s.apiUrl,
      auth: 'ghs_000000000000000000000000000000000000',
    });
    await refused(fake.rest.repos.get({ owner, repo }), 401);
    const anonymous = new Octokit({ baseUrl: s.apiUrl });
    await refused(anonymous.rest.repos.get({ owner, repo }), 401);
    // An installation token cannot act as the app, nor the app as an installation.
    const { data: token } = await s.appOctokit.rest.apps.createInstallationAccessToken({
      installation_id: s.installation.id,
    });
    const withToken = new Octokit({ baseUrl: s.apiUrl, auth: token.token });
    await refused(withToken.rest.apps.getAuthenticated(), 403);
    const { token: jwt } = await createAppAuth({ appId: s.app.id, privateKey: s.privateKey })({
      type: 'app',
    });
    const asApp = new Octokit({ baseUrl: s.apiUrl, auth: jwt });
    await refused(asApp.rest.repos.get({ owner, repo }), 401);
  });

  it('hides repositories the installation cannot reach', async () => {
    await s.sim.createRepository({
      owner: 'acme',
      name: 'secret',
      private: true,
      files: { a: 'b' },
    });
    await refused(s.octokit.rest.repos.get({ owner, repo: 'secret' }), 404);
  });

  it('reports the primary rate limit in headers', async () => {
    const { headers } = await s.octokit.rest.repos.get({ owner, repo });
    expect(headers['x-ratelimit-limit']).toBe('5000');
    expect(Number(headers['x-ratelimit-remaining'])).toBeLessThan(5000);
    expect(headers['x-ratelimit-resource']).toBe('core');
  });
});

describe('strictness', () => {
  it('answers an unknown path or method with 404 and records a violation', async () => {
    await refused(
      s.octokit.request('GET /repos/{owner}/{repo}/no-such-thing', { owner, repo }),
      404,
      'unknown-route',
    );
    await refused(
      s.octokit.request('DELETE /repos/{owner}/{repo}/check-runs', { owner, repo }),
      404,
      'unknown-route',
    );
  });

  it('answers a schema-invalid body with 422 as GitHub does, and records it', async () => {
    const error = await refused(
      s.octokit.request('POST /repos/{owner}/{repo}/check-runs', {
        owner,
        repo,
        name: 'build',
      } as never),
      422,
      'invalid-request',
    );
    expect((error.response?.data as { message: string }).message).toContain(
      '"head_sha" wasn\'t supplied.',
    );
    await refused(
      s.octokit.rest.git.updateRef({ owner, repo, ref: 'heads/main', sha: 42 as never }),
      422,
      'invalid-request',
    );
  });
});

describe('contents, trees, blobs and commits', () => {
  it('reads a file, a directory, a tree, a blob and a commit', async () => {
    const { data: file } = await s.octokit.rest.repos.getContent({
      owner,
      repo,
      path: 'src/index.js',
    });
    expect(file).toMatchObject({ type: 'file', path: 'src/index.js', encoding: 'base64' });
    expect(Buffer.from((file as { content: string }).content, 'base64').toString()).toBe(
      'export const answer = 42;\n',
    );
    const { data: dir } = await s.octokit.rest.repos.getContent({ owner, repo, path: '.tower' });
    expect((dir as { name: string }[]).map((e) => e.name)).toEqual(['graph.yml']);
    await refused(s.octokit.rest.repos.getContent({ owner, repo, path: 'nope.txt' }), 404);

    const sha = (await s.sim.branchSha(s.repository, 'main'))!;
    const { data: tree } = await s.octokit.rest.git.getTree({
      owner,
      repo,
      tree_sha: sha,
      recursive: 'true',
    });
    expect(tree.tree.map((e) => e.path).sort()).toEqual([
      '.tower',
      '.tower/graph.yml',
      'README.md',
      'src',
      'src/index.js',
    ]);
    const { data: shallow } = await s.octokit.rest.git.getTree({ owner, repo, tree_sha: sha });
    expect(shallow.tree.map((e) => e.path).sort()).toEqual(['.tower', 'README.md', 'src']);
    const blobSha = tree.tree.find((e) => e.path === 'README.md')!.sha;
    const { data: blob } = await s.octokit.rest.git.getBlob({ owner, repo, file_sha: blobSha });
    expect(Buffer.from(blob.content, 'base64').toString()).toBe('# widgets\n');
    await refused(s.octokit.rest.git.getBlob({ owner, repo, file_sha: '0'.repeat(40) }), 404);
    const { data: commit } = await s.octokit.rest.git.getCommit({ owner, repo, commit_sha: sha });
    expect(commit).toMatchObject({ sha, message: 'Initial commit' });
    const { data: restCommit } = await s.octokit.rest.repos.getCommit({ owner, repo, ref: 'main' });
    expect(restCommit.sha).toBe(sha);
  });

  it('compares two commits', async () => {
    const base = (await s.sim.branchSha(s.repository, 'main'))!;
    await branchFrom('compare-me', { 'new.txt': 'one\ntwo\n', 'README.md': null }, base);
    const { data } = await s.octokit.rest.repos.compareCommitsWithBasehead({
      owner,
      repo,
      basehead: `${base}...compare-me`,
    });
    expect(data).toMatchObject({ status: 'ahead', ahead_by: 1, behind_by: 0, total_commits: 1 });
    expect(data.files?.map((f) => [f.filename, f.status, f.additions, f.deletions])).toEqual([
      ['README.md', 'removed', 0, 1],
      ['new.txt', 'added', 2, 0],
    ]);
    await refused(
      s.octokit.rest.repos.compareCommitsWithBasehead({ owner, repo, basehead: 'main...nope' }),
      404,
    );
  });
});

describe('git refs', () => {
  it('creates, reads, fast-forwards, refuses a non-fast-forward, forces and deletes', async () => {
    const main = (await s.sim.branchSha(s.repository, 'main'))!;
    const { data: created } = await s.octokit.rest.git.createRef({
      owner,
      repo,
      ref: 'refs/heads/ff',
      sha: main,
    });
    expect(created).toMatchObject({ ref: 'refs/heads/ff', object: { sha: main, type: 'commit' } });
    await refused(
      s.octokit.rest.git.createRef({ owner, repo, ref: 'refs/heads/ff', sha: main }),
      422,
    );
    await refused(
      s.octokit.rest.git.createRef({ owner, repo, ref: 'refs/heads/x', sha: 'f'.repeat(40) }),
      422,
    );
    expect(
      (await s.octokit.rest.git.getRef({ owner, repo, ref: 'heads/ff' })).data.object.sha,
    ).toBe(main);
    await refused(s.octokit.rest.git.getRef({ owner, repo, ref: 'heads/none' }), 404);

    const ahead = await s.sim.git.commit(s.repository.fullName, {
      parents: [main],
      changes: { 'ff.txt': 'ahead\n' },
      message: 'ahead',
      author: { name: 'a', email: 'a@example.com', date: new Date() },
    });
    const { data: moved } = await s.octokit.rest.git.updateRef({
      owner,
      repo,
      ref: 'heads/ff',
      sha: ahead,
    });
    expect(moved.object.sha).toBe(ahead);
    const error = await refused(
      s.octokit.rest.git.updateRef({ owner, repo, ref: 'heads/ff', sha: main }),
      422,
    );
    expect((error.response?.data as { message: string }).message).toBe(
      'Update is not a fast forward',
    );
    await s.octokit.rest.git.updateRef({ owner, repo, ref: 'heads/ff', sha: main, force: true });
    expect(await s.sim.branchSha(s.repository, 'ff')).toBe(main);
    await refused(s.octokit.rest.git.updateRef({ owner, repo, ref: 'heads/none', sha: main }), 422);

    const { data: matching } = await s.octokit.rest.git.listMatchingRefs({
      owner,
      repo,
      ref: 'heads/f',
    });
    expect(matching.map((r) => r.ref)).toContain('refs/heads/ff');
    expect((await s.octokit.rest.git.deleteRef({ owner, repo, ref: 'heads/ff' })).status).toBe(204);
    await refused(s.octokit.rest.git.deleteRef({ owner, repo, ref: 'heads/ff' }), 422);
  });
});

describe('merges', () => {
  it('makes a real merge commit with both parents, answers 204 when up to date and 409 on conflict', async () => {
    const main = (await s.sim.branchSha(s.repository, 'main'))!;
    await s.sim.git.updateRef(s.repository.fullName, 'refs/heads/merge-base', main, {
      expectedOld: null,
    });
    const feature = await branchFrom('merge-feature', { 'feature.txt': 'feature\n' }, main);
    await branchFrom('merge-base', { 'base.txt': 'base\n' });
    const baseTip = (await s.sim.branchSha(s.repository, 'merge-base'))!;

    const { status, data } = await s.octokit.rest.repos.merge({
      owner,
      repo,
      base: 'merge-base',
      head: 'merge-feature',
    });
    expect(status).toBe(201);
    expect(data.parents.map((p) => p.sha)).toEqual([baseTip, feature]);
    const { stdout } = await execFile('git', [
      '--git-dir',
      s.sim.git.path(s.repository.fullName),
      'log',
      '--format=%H %P',
      '-1',
      'merge-base',
    ]);
    expect(stdout.trim()).toBe(`${data.sha} ${baseTip} ${feature}`);

    const again = await s.octokit.rest.repos.merge({
      owner,
      repo,
      base: 'merge-base',
      head: 'merge-feature',
    });
    expect(again.status).toBe(204);

    await branchFrom('conflict-a', { 'same.txt': 'a\n' }, main);
    await branchFrom('conflict-b', { 'same.txt': 'b\n' }, main);
    const conflict = await refused(
      s.octokit.rest.repos.merge({ owner, repo, base: 'conflict-a', head: 'conflict-b' }),
      409,
    );
    expect((conflict.response?.data as { message: string }).message).toBe('Merge conflict');
    await refused(
      s.octokit.rest.repos.merge({ owner, repo, base: 'nope', head: 'conflict-b' }),
      404,
    );
  });
});

describe('pull requests', () => {
  it('creates, reads with mergeability, lists files, and refuses what GitHub refuses', async () => {
    const main = (await s.sim.branchSha(s.repository, 'main'))!;
    await branchFrom('pr-1', { 'pr1.txt': 'hello\n' }, main);
    const { data: pr } = await s.octokit.rest.pulls.create({
      owner,
      repo,
      head: 'pr-1',
      base: 'main',
      title: 'PR one',
    });
    expect(pr).toMatchObject({
      title: 'PR one',
      state: 'open',
      head: { ref: 'pr-1' },
      base: { ref: 'main' },
    });
    const { data: got } = await s.octokit.rest.pulls.get({ owner, repo, pull_number: pr.number });
    expect(got).toMatchObject({
      mergeable: true,
      mergeable_state: 'clean',
      changed_files: 1,
      commits: 1,
    });
    const { data: files } = await s.octokit.rest.pulls.listFiles({
      owner,
      repo,
      pull_number: pr.number,
    });
    expect(files.map((f) => f.filename)).toEqual(['pr1.txt']);
    const { data: listed } = await s.octokit.rest.pulls.list({ owner, repo, head: 'acme:pr-1' });
    expect(listed.map((p) => p.number)).toEqual([pr.number]);

    await refused(
      s.octokit.rest.pulls.create({ owner, repo, head: 'pr-1', base: 'main', title: 'again' }),
      422,
    );
    await refused(
      s.octokit.rest.pulls.create({ owner, repo, head: 'no-branch', base: 'main', title: 'x' }),
      422,
    );
    await s.sim.git.updateRef(s.repository.fullName, 'refs/heads/same', main, {
      expectedOld: null,
    });
    await refused(
      s.octokit.rest.pulls.create({ owner, repo, head: 'same', base: 'main', title: 'x' }),
      422,
    );
    await refused(s.octokit.rest.pulls.get({ owner, repo, pull_number: 9999 }), 404);

    const { data: closed } = await s.octokit.rest.pulls.update({
      owner,
      repo,
      pull_number: pr.number,
      state: 'closed',
    });
    expect(closed.state).toBe('closed');
  });

  it('merges with 200, then answers 405 for a merged or conflicting one and 409 for a stale head', async () => {
    const main = (await s.sim.branchSha(s.repository, 'main'))!;
    const head = await branchFrom('pr-merge', { 'merged.txt': 'merged\n' }, main);
    const { data: pr } = await s.octokit.rest.pulls.create({
      owner,
      repo,
      head: 'pr-merge',
      base: 'main',
      title: 'merge me',
    });
    await refused(
      s.octokit.rest.pulls.merge({ owner, repo, pull_number: pr.number, sha: main }),
      409,
    );
    const { data: merged } = await s.octokit.rest.pulls.merge({
      owner,
      repo,
      pull_number: pr.number,
      sha: head,
    });
    expect(merged).toMatchObject({ merged: true, message: 'Pull Request successfully merged' });
    expect(await s.sim.branchSha(s.repository, 'main')).toBe(merged.sha);
    const { data: after } = await s.octokit.rest.pulls.get({ owner, repo, pull_number: pr.number });
    expect(after).toMatchObject({ merged: true, state: 'closed', merge_commit_sha: merged.sha });
    await refused(s.octokit.rest.pulls.merge({ owner, repo, pull_number: pr.number }), 405);

    const tip = (await s.sim.branchSha(s.repository, 'main'))!;
    await branchFrom('clash-1', { 'clash.txt': 'one\n' }, tip);
    await branchFrom('clash-2', { 'clash.txt': 'two\n' }, tip);
    const { data: one } = await s.octokit.rest.pulls.create({
      owner,
      repo,
      head: 'clash-1',
      base: 'main',
      title: 'one',
    });
    const { data: two } = await s.octokit.rest.pulls.create({
      owner,
      repo,
      head: 'clash-2',
      base: 'main',
      title: 'two',
    });
    await s.octokit.rest.pulls.merge({
      owner,
      repo,
      pull_number: one.number,
      merge_method: 'squash',
    });
    const { data: conflicted } = await s.octokit.rest.pulls.get({
      owner,
      repo,
      pull_number: two.number,
    });
    expect(conflicted).toMatchObject({ mergeable: false, mergeable_state: 'dirty' });
    await refused(s.octokit.rest.pulls.merge({ owner, repo, pull_number: two.number }), 405);
  });

  it('marks a pull request merged when its base is fast-forwarded to include it', async () => {
    const main = (await s.sim.branchSha(s.repository, 'main'))!;
    const head = await branchFrom('pr-ff', { 'ff-merge.txt': 'x\n' }, main);
    const { data: pr } = await s.octokit.rest.pulls.create({
      owner,
      repo,
      head: 'pr-ff',
      base: 'main',
      title: 'ff',
    });
    await s.octokit.rest.git.updateRef({ owner, repo, ref: 'heads/main', sha: head });
    await s.sim.settled();
    const { data } = await s.octokit.rest.pulls.get({ owner, repo, pull_number: pr.number });
    expect(data).toMatchObject({ merged: true, state: 'closed', merge_commit_sha: head });
  });

  it('lists and creates reviews', async () => {
    const main = (await s.sim.branchSha(s.repository, 'main'))!;
    await branchFrom('pr-review', { 'review.txt': 'r\n' }, main);
    const pr = await s.sim.openPullRequest(s.repository, {
      head: 'pr-review',
      title: 'review me',
      author: 'alice',
    });
    await s.sim.review(pr, { author: 'bob', state: 'APPROVED' });
    const { data: created } = await s.octokit.rest.pulls.createReview({
      owner,
      repo,
      pull_number: pr.number,
      event: 'COMMENT',
      body: 'noted',
    });
    expect(created.state).toBe('COMMENTED');
    const { data: reviews } = await s.octokit.rest.pulls.listReviews({
      owner,
      repo,
      pull_number: pr.number,
    });
    expect(reviews.map((r) => [r.user?.login, r.state])).toEqual([
      ['bob', 'APPROVED'],
      ['tower[bot]', 'COMMENTED'],
    ]);
    await refused(
      s.octokit.rest.pulls.createReview({
        owner,
        repo,
        pull_number: pr.number,
        event: 'REQUEST_CHANGES',
      }),
      422,
    );
  });
});

describe('comments, reactions, labels and permissions', () => {
  it('comments, edits its own comments only, reacts and labels', async () => {
    const main = (await s.sim.branchSha(s.repository, 'main'))!;
    await branchFrom('pr-comments', { 'c.txt': 'c\n' }, main);
    const pr = await s.sim.openPullRequest(s.repository, {
      head: 'pr-comments',
      title: 'comments',
      author: 'alice',
    });
    const human = await s.sim.comment(s.repository, pr.number, {
      body: '/tower help',
      author: 'alice',
    });

    const { data: comment } = await s.octokit.rest.issues.createComment({
      owner,
      repo,
      issue_number: pr.number,
      body: 'Hello from Tower',
    });
    expect(comment.user?.login).toBe('tower[bot]');
    const { data: edited } = await s.octokit.rest.issues.updateComment({
      owner,
      repo,
      comment_id: comment.id,
      body: 'Edited',
    });
    expect(edited.body).toBe('Edited');
    await refused(
      s.octokit.rest.issues.updateComment({ owner, repo, comment_id: human.id, body: 'hijack' }),
      403,
    );
    const { data: comments } = await s.octokit.rest.issues.listComments({
      owner,
      repo,
      issue_number: pr.number,
    });
    expect(comments.map((c) => c.body)).toEqual(['/tower help', 'Edited']);
    await refused(
      s.octokit.rest.issues.createComment({ owner, repo, issue_number: 9999, body: 'x' }),
      404,
    );

    const reaction = await s.octokit.rest.reactions.createForIssueComment({
      owner,
      repo,
      comment_id: human.id,
      content: 'eyes',
    });
    expect(reaction.status).toBe(201);
    expect(
      (
        await s.octokit.rest.reactions.createForIssueComment({
          owner,
          repo,
          comment_id: human.id,
          content: 'eyes',
        })
      ).status,
    ).toBe(200);
    await refused(
      s.octokit.rest.reactions.createForIssueComment({
        owner,
        repo,
        comment_id: human.id,
        content: 'thumbsup' as never,
      }),
      422,
      'invalid-request',
    );

    const { data: labels } = await s.octokit.rest.issues.addLabels({
      owner,
      repo,
      issue_number: pr.number,
      labels: ['land', 'ci'],
    });
    expect(labels.map((l) => l.name)).toEqual(['land', 'ci']);
    const { data: remaining } = await s.octokit.rest.issues.removeLabel({
      owner,
      repo,
      issue_number: pr.number,
      name: 'ci',
    });
    expect(remaining.map((l) => l.name)).toEqual(['land']);
    await refused(
      s.octokit.rest.issues.removeLabel({ owner, repo, issue_number: pr.number, name: 'ci' }),
      404,
    );
  });

  it("reports a collaborator's permission", async () => {
    s.sim.setPermission(s.repository, 'writer', 'write');
    const main = (await s.sim.branchSha(s.repository, 'main'))!;
    await branchFrom('pr-permission', { 'p.txt': 'p\n' }, main);
    const pr = await s.sim.openPullRequest(s.repository, {
      head: 'pr-permission',
      title: 'p',
      author: 'writer',
    });
    await s.sim.comment(s.repository, pr.number, {
      body: '/tower land',
      author: 'reader',
      permission: 'read',
    });
    const reader = await s.octokit.rest.repos.getCollaboratorPermissionLevel({
      owner,
      repo,
      username: 'reader',
    });
    expect(reader.data.permission).toBe('read');
    s.sim.state.ensureAccount('stranger');
    const writer = await s.octokit.rest.repos.getCollaboratorPermissionLevel({
      owner,
      repo,
      username: 'writer',
    });
    expect(writer.data).toMatchObject({ permission: 'write', user: { login: 'writer' } });
    const stranger = await s.octokit.rest.repos.getCollaboratorPermissionLevel({
      owner,
      repo,
      username: 'stranger',
    });
    expect(stranger.data.permission).toBe('read');
    await refused(
      s.octokit.rest.repos.getCollaboratorPermissionLevel({ owner, repo, username: 'ghost-user' }),
      404,
    );
  });
});

describe('check runs and suites', () => {
  it('creates, updates, lists and rerequests check runs, with GitHub limits enforced', async () => {
    const sha = (await s.sim.branchSha(s.repository, 'main'))!;
    const { status, data: run } = await s.octokit.rest.checks.create({
      owner,
      repo,
      name: 'build',
      head_sha: sha,
      external_id: 'job-1',
      details_url: 'https://tower.example.com/jobs/1',
    });
    expect(status).toBe(201);
    expect(run).toMatchObject({
      name: 'build',
      head_sha: sha,
      status: 'queued',
      conclusion: null,
      external_id: 'job-1',
    });

    const annotation = {
      path: 'README.md',
      start_line: 1,
      end_line: 1,
      annotation_level: 'failure' as const,
      message: 'bad',
    };
    const { data: done } = await s.octokit.rest.checks.update({
      owner,
      repo,
      check_run_id: run.id,
      conclusion: 'failure',
      output: { title: 'Failed', summary: 'It broke', annotations: [annotation, annotation] },
      actions: [{ label: 'Retrigger', description: 'Run this job again', identifier: 'retrigger' }],
    });
    expect(done).toMatchObject({
      status: 'completed',
      conclusion: 'failure',
      output: { annotations_count: 2 },
    });
    const { data: annotations } = await s.octokit.rest.checks.listAnnotations({
      owner,
      repo,
      check_run_id: run.id,
    });
    expect(annotations).toHaveLength(2);

    const { data: list } = await s.octokit.rest.checks.listForRef({ owner, repo, ref: 'main' });
    expect(list.check_runs.map((r) => r.id)).toContain(run.id);
    expect((await s.octokit.rest.checks.get({ owner, repo, check_run_id: run.id })).data.id).toBe(
      run.id,
    );
    expect(
      (await s.octokit.rest.checks.rerequestRun({ owner, repo, check_run_id: run.id })).status,
    ).toBe(201);

    const { data: suite } = await s.octokit.rest.checks.getSuite({
      owner,
      repo,
      check_suite_id: run.check_suite!.id,
    });
    expect(suite).toMatchObject({ status: 'completed', conclusion: 'failure', head_sha: sha });
    const { data: suites } = await s.octokit.rest.checks.listSuitesForRef({
      owner,
      repo,
      ref: sha,
    });
    expect(suites.check_suites.map((x) => x.id)).toEqual([suite.id]);
    const { data: inSuite } = await s.octokit.rest.checks.listForSuite({
      owner,
      repo,
      check_suite_id: suite.id,
    });
    expect(inSuite.total_count).toBe(1);
    expect(
      (await s.octokit.rest.checks.rerequestSuite({ owner, repo, check_suite_id: suite.id }))
        .status,
    ).toBe(201);
    expect((await s.octokit.rest.checks.createSuite({ owner, repo, head_sha: sha })).status).toBe(
      200,
    );

    // GitHub's limits: 50 annotations a request, 65,535 characters of summary, 3 actions with short fields.
    const tooMany = Array.from({ length: 51 }, () => annotation);
    await refused(
      s.octokit.rest.checks.update({
        owner,
        repo,
        check_run_id: run.id,
        output: { title: 't', summary: 's', annotations: tooMany },
      }),
      422,
      'invalid-request',
    );
    await refused(
      s.octokit.rest.checks.update({
        owner,
        repo,
        check_run_id: run.id,
        output: { title: 't', summary: 'x'.repeat(65_536) },
      }),
      422,
      'invalid-request',
    );
    const action = { label: 'a', description: 'b', identifier: 'c' };
    await refused(
      s.octokit.rest.checks.update({
        owner,
        repo,
        check_run_id: run.id,
        actions: [action, action, action, action],
      }),
      422,
      'invalid-request',
    );
    await refused(
      s.octokit.rest.checks.update({
        owner,
        repo,
        check_run_id: run.id,
        actions: [{ ...action, label: 'x'.repeat(21) }],
      }),
      422,
      'invalid-request',
    );
    await refused(
      s.octokit.rest.checks.create({ owner, repo, name: 'x', head_sha: 'f'.repeat(40) }),
      422,
    );
    await refused(s.octokit.rest.checks.get({ owner, repo, check_run_id: 999_999 }), 404);
  });
});

describe('primary rate limit', () => {
  it('refuses requests past the hourly budget with 403 and x-ratelimit-remaining 0, until the reset', async () => {
    const clock = manualClock();
    const limited = await startSandbox({
      clock,
      limits: { requestsPerHour: 3, contentPerMinute: 80, contentPerHour: 500 },
    });
    try {
      const get = () => limited.octokit.rest.repos.get({ owner, repo });
      const first = await get();
      expect(first.headers['x-ratelimit-remaining']).toBe('2');
      await get();
      await get();
      const error = (await get().catch((e: unknown) => e)) as RequestError;
      expect(error.status).toBe(403);
      expect(error.response?.headers['x-ratelimit-remaining']).toBe('0');
      expect((error.response?.data as { message: string }).message).toMatch(
        /API rate limit exceeded/,
      );
    } finally {
      await limited.close();
    }
  });
});

describe('RateLimiter', () => {
  it('gives the budget back when the hour is over', () => {
    const limiter = new RateLimiter({
      requestsPerHour: 2,
      contentPerMinute: 1,
      contentPerHour: 10,
    });
    const t = new Date('2026-01-01T00:00:00Z');
    expect(limiter.take('1', t, false).ok).toBe(true);
    expect(limiter.take('1', t, true).ok).toBe(true);
    const refused = limiter.take('1', t, false);
    expect(refused).toMatchObject({ ok: false, headers: { 'x-ratelimit-remaining': '0' } });
    expect(limiter.take('2', t, false).ok).toBe(true); // budgets are per installation
    const later = new Date(t.getTime() + 60 * 60 * 1000);
    expect(limiter.take('1', later, true)).toMatchObject({
      ok: true,
      headers: { 'x-ratelimit-remaining': '1' },
    });
    expect(limiter.take('1', later, true)).toMatchObject({
      ok: false,
      headers: { 'retry-after': '60' },
    });
  });
});

describe('content-creation limit', () => {
  it('answers the 81st content-creating request of a minute with 403 and retry-after, and recovers', async () => {
    const clock = manualClock();
    const limited = await startSandbox({ clock });
    try {
      const sha = (await limited.sim.branchSha(limited.repository, 'main'))!;
      const create = () =>
        limited.octokit.rest.checks.create({ owner, repo, name: 'limit', head_sha: sha });
      for (let i = 0; i < 80; i++) await create();
      const error = await create().catch((e: unknown) => e as RequestError);
      expect(error).toBeInstanceOf(RequestError);
      expect((error as RequestError).status).toBe(403);
      expect(Number((error as RequestError).response?.headers['retry-after'])).toBeGreaterThan(0);
      // Reads are not content creation.
      expect(await statusOf(limited.octokit.rest.repos.get({ owner, repo }))).toBe('ok');
      clock.advance(61_000);
      expect(await statusOf(create())).toBe('ok');
      expect(limited.sim.violations.list()).toEqual([]);
    } finally {
      await limited.close();
    }
  });

  it('allows at most 500 content-creating requests an hour', async () => {
    const clock = manualClock();
    const limited = await startSandbox({ clock });
    try {
      const sha = (await limited.sim.branchSha(limited.repository, 'main'))!;
      const create = () =>
        limited.octokit.rest.checks.create({ owner, repo, name: 'hourly', head_sha: sha });
      for (let minute = 0; minute < 7; minute++) {
        for (let i = 0; i < 80 && minute * 80 + i < 500; i++)
          expect(await statusOf(create())).toBe('ok');
        clock.advance(61_000);
      }
      const error = (await create().catch((e: unknown) => e)) as RequestError;
      expect(error.status).toBe(403);
      expect(Number(error.response?.headers['retry-after'])).toBeGreaterThan(60);
    } finally {
      await limited.close();
    }
  }, 120_000);
});
