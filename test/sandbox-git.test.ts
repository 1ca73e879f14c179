import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  GitError,
  GitRequestError,
  GitStore,
  gitVersionOk,
  type GitPerson,
} from '../src/sandbox/git.js';

const execFileAsync = promisify(execFile);

const alice: GitPerson = {
  name: 'Alice',
  email: 'alice@example.com',
  date: new Date('2026-01-01T10:00:00Z'),
};
const bob: GitPerson = {
  name: 'Bob',
  email: 'bob@example.com',
  date: new Date('2026-01-02T10:00:00Z'),
};
const carol: GitPerson = {
  name: 'Carol',
  email: 'carol@example.com',
  date: new Date('2026-01-03T10:00:00Z'),
};

let root: string;
let store: GitStore;
let counter = 0;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'tower-git-test-'));
  store = new GitStore(join(root, 'repos'));
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

/** Runs git outside the store, the way a user's client would, with host config ignored. */
async function git(args: string[], input?: string): Promise<string> {
  const promise = execFileAsync('git', args, {
    env: {
      PATH: process.env.PATH,
      HOME: root,
      GIT_CONFIG_NOSYSTEM: '1',
      GIT_CONFIG_GLOBAL: '/dev/null',
      LC_ALL: 'C',
      GIT_AUTHOR_NAME: 'Test',
      GIT_AUTHOR_EMAIL: 'test@example.com',
      GIT_COMMITTER_NAME: 'Test',
      GIT_COMMITTER_EMAIL: 'test@example.com',
    },
  });
  promise.child.stdin?.on('error', () => {});
  promise.child.stdin?.end(input ?? '');
  return (await promise).stdout;
}

async function newRepo(defaultBranch = 'main'): Promise<string> {
  const fullName = `owner${counter}/repo-${counter}`;
  counter += 1;
  await store.create(fullName, defaultBranch);
  return fullName;
}

async function text(fullName: string, commitish: string, path: string): Promise<string> {
  const found = await store.readPath(fullName, commitish, path);
  if (found?.type !== 'file') throw new Error(`${path} is not a file at ${commitish}`);
  return found.content.toString('utf8');
}

/** main: base commit; feature and other branch off it. */
async function forkedHistory(fullName: string) {
  const base = await store.commit(fullName, {
    parents: [],
    changes: { 'shared.txt': 'one\ntwo\nthree\n', 'gone.txt': 'bye\n', 'keep.txt': 'k\n' },
    message: 'base',
    author: alice,
  });
  const main = await store.commit(fullName, {
    parents: [base],
    changes: { 'main.txt': 'from main\n' },
    message: 'main work',
    author: alice,
  });
  const feature1 = await store.commit(fullName, {
    parents: [base],
    changes: { 'feature.txt': 'a\n', 'gone.txt': null },
    message: 'feature 1',
    author: bob,
  });
  const feature2 = await store.commit(fullName, {
    parents: [feature1],
    changes: { 'shared.txt': 'one\nTWO\nthree\nfour\n' },
    message: 'feature 2\n\nwith a body',
    author: carol,
  });
  return { base, main, feature1, feature2 };
}

describe('gitVersionOk', () => {
  it('accepts the installed git and refuses a missing one', async () => {
    expect(await gitVersionOk()).toBe(true);
    expect(await gitVersionOk(join(root, 'no-such-git'))).toBe(false);
  });
});

describe('GitStore repositories', () => {
  it('places one bare repository per name, with HEAD on the default branch', async () => {
    const fullName = await newRepo('trunk');
    expect(store.path(fullName)).toBe(
      join(root, 'repos', fullName.split('/')[0]!, `${fullName.split('/')[1]}.git`),
    );
    expect(store.cloneUrl(fullName)).toBe(`file://${store.path(fullName)}`);
    expect(await readFile(join(store.path(fullName), 'HEAD'), 'utf8')).toBe(
      'ref: refs/heads/trunk\n',
    );
    expect(
      (await git(['--git-dir', store.path(fullName), 'rev-parse', '--is-bare-repository'])).trim(),
    ).toBe('true');
  });

  it('refuses bad names, existing repositories and unknown ones', async () => {
    for (const name of ['nope', 'a/b/c', '../x', 'a/..', 'a/b c', '']) {
      expect(() => store.path(name)).toThrow(GitRequestError);
    }
    const fullName = await newRepo();
    await expect(store.create(fullName, 'main')).rejects.toMatchObject({
      problem: 'repository-exists',
    });
    await expect(store.create('x/y', 'bad..branch')).rejects.toMatchObject({
      problem: 'invalid-ref',
    });
    await expect(store.refs('ghost/missing')).rejects.toMatchObject({
      name: 'GitRequestError',
      problem: 'unknown-repository',
      repo: 'ghost/missing',
    });
  });

  it('is cloned by a git client with the committed files checked out', async () => {
    const fullName = await newRepo();
    const sha = await store.commit(fullName, {
      parents: [],
      changes: { 'README.md': '# hello\n', 'src/deep/file.ts': 'export {};\n' },
      message: 'initial',
      author: alice,
    });
    expect(await store.updateRef(fullName, 'refs/heads/main', sha, { expectedOld: null })).toBe(
      'ok',
    );
    const checkout = join(root, `clone-${counter}`);
    await git(['clone', '--quiet', store.cloneUrl(fullName), checkout]);
    expect(await readFile(join(checkout, 'README.md'), 'utf8')).toBe('# hello\n');
    expect(await readFile(join(checkout, 'src/deep/file.ts'), 'utf8')).toBe('export {};\n');
    expect((await git(['-C', checkout, 'rev-parse', 'HEAD'])).trim()).toBe(sha);
    expect((await git(['-C', checkout, 'log', '-1', '--format=%an <%ae> %at%n%B'])).trim()).toBe(
      `Alice <alice@example.com> ${alice.date.getTime() / 1000}\ninitial`,
    );
  });

  it('fetches a commit from another repository into a ref', async () => {
    const source = await newRepo();
    const target = await newRepo();
    const first = await store.commit(source, {
      parents: [],
      changes: { 'a.txt': 'a\n' },
      message: 'first',
      author: alice,
    });
    // Not on any ref of the source: GitHub still serves it.
    const second = await store.commit(source, {
      parents: [first],
      changes: { 'b.txt': 'b\n' },
      message: 'second',
      author: alice,
    });
    await store.fetch(target, source, second, 'refs/pull/1/head');
    expect(await store.refs(target)).toEqual([{ ref: 'refs/pull/1/head', sha: second }]);
    expect(await text(target, second, 'a.txt')).toBe('a\n');
    expect((await store.log(target, second)).map((c) => c.sha)).toEqual([second, first]);
    await expect(store.fetch(target, source, 'f'.repeat(40), 'refs/heads/x')).rejects.toMatchObject(
      {
        problem: 'unknown-revision',
      },
    );
    await expect(store.fetch(target, source, second, 'heads/x')).rejects.toMatchObject({
      problem: 'invalid-ref',
    });
  });
});

describe('GitStore commits', () => {
  it('writes changes, deletions, nested paths and binary content on top of the parent', async () => {
    const fullName = await newRepo();
    const binary = Buffer.from([0, 1, 2, 255, 0, 10, 13]);
    const first = await store.commit(fullName, {
      parents: [],
      changes: {
        'README.md': 'hello\n',
        '/a/b/c/deep.txt': 'deep\n',
        'a/sibling.txt': 'sibling\n',
        'bin/data.bin': binary,
        'dir/one.txt': '1',
        'dir/sub/two.txt': '2',
      },
      message: 'first',
      author: alice,
    });
    const second = await store.commit(fullName, {
      parents: [first],
      changes: {
        'README.md': 'hello again\n',
        'a/sibling.txt': null,
        dir: null,
        'never-existed.txt': null,
        'new.txt': 'new',
      },
      message: 'second',
      author: bob,
      committer: carol,
    });
    const files = (
      await git(['--git-dir', store.path(fullName), 'ls-tree', '-r', '--name-only', second])
    )
      .trim()
      .split('\n');
    expect(files).toEqual(['README.md', 'a/b/c/deep.txt', 'bin/data.bin', 'new.txt']);
    expect(await text(fullName, second, 'README.md')).toBe('hello again\n');
    const bin = await store.readPath(fullName, second, 'bin/data.bin');
    expect(bin?.type === 'file' && bin.content.equals(binary)).toBe(true);
    expect(await text(fullName, first, 'dir/sub/two.txt')).toBe('2');

    const info = await store.commitInfo(fullName, second);
    expect(info).toEqual({
      sha: second,
      tree: expect.stringMatching(/^[0-9a-f]{40}$/),
      parents: [first],
      message: 'second',
      author: bob,
      committer: carol,
    });
    // Without a committer, the author commits.
    expect((await store.commitInfo(fullName, first))?.committer).toEqual(alice);
  });

  it('starts from baseTree when given, and keeps executable and symlink modes on edit', async () => {
    const fullName = await newRepo();
    const blob = (
      await git(['--git-dir', store.path(fullName), 'hash-object', '-w', '--stdin'], 'echo hi\n')
    ).trim();
    const tree = (
      await git(
        ['--git-dir', store.path(fullName), 'mktree'],
        `100755 blob ${blob}\trun.sh\n120000 blob ${blob}\tlink\n100644 blob ${blob}\tplain\n`,
      )
    ).trim();
    const sha = await store.commit(fullName, {
      parents: [],
      baseTree: tree,
      changes: { 'run.sh': 'echo bye\n', link: 'target', plain: 'x' },
      message: 'edit',
      author: alice,
    });
    const listing = await store.tree(fullName, sha, false);
    expect(listing?.entries.map((e) => [e.path, e.mode])).toEqual([
      ['link', '120000'],
      ['plain', '100644'],
      ['run.sh', '100755'],
    ]);
    expect(await text(fullName, sha, 'run.sh')).toBe('echo bye\n');
  });

  it('commits an empty tree without parents, and stores the message as git writes it', async () => {
    const fullName = await newRepo();
    const sha = await store.commit(fullName, {
      parents: [],
      changes: {},
      message: 'empty',
      author: alice,
    });
    const info = await store.commitInfo(fullName, sha);
    expect(info?.tree).toBe('4b825dc642cb6eb9a060e54bf8d69288fbee4904');
    expect(info?.parents).toEqual([]);
    expect(await git(['--git-dir', store.path(fullName), 'log', '-1', '--format=%B', sha])).toBe(
      'empty\n\n',
    );
  });

  it('refuses paths git cannot store and revisions that do not exist', async () => {
    const fullName = await newRepo();
    for (const path of ['.git/config', 'a/../b', 'a//b', '', '/', 'x/.GIT/y']) {
      await expect(
        store.commit(fullName, {
          parents: [],
          changes: { [path]: 'x' },
          message: 'm',
          author: alice,
        }),
      ).rejects.toMatchObject({ problem: 'invalid-path', value: path });
    }
    await expect(
      store.commit(fullName, { parents: ['main'], changes: {}, message: 'm', author: alice }),
    ).rejects.toMatchObject({ problem: 'unknown-revision', value: 'main' });
    await expect(
      store.commit(fullName, {
        parents: [],
        baseTree: 'f'.repeat(40),
        changes: {},
        message: 'm',
        author: alice,
      }),
    ).rejects.toMatchObject({ problem: 'unknown-revision' });
  });

  it('reports git failures with the command and stderr', async () => {
    const fullName = await newRepo();
    const error: unknown = await store
      .commit(fullName, {
        parents: [],
        changes: { 'a.txt': 'a' },
        message: 'm',
        author: { name: '', email: '', date: alice.date },
      })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(GitError);
    expect((error as GitError).message).toBe('git commit-tree failed');
    expect((error as GitError).details).toMatchObject({
      repo: fullName,
      exitCode: 128,
      stderr: expect.stringContaining('empty ident name'),
    });
    expect((error as GitError).details.command).toContain('commit-tree');
  });

  it('commits a given tree with given parents', async () => {
    const fullName = await newRepo();
    const { main, feature2 } = await forkedHistory(fullName);
    const tree = (await store.commitInfo(fullName, feature2))!.tree;
    const sha = await store.commitTree(fullName, {
      tree,
      parents: [main, feature2],
      message: 'by hand',
      author: alice,
      committer: bob,
    });
    expect(await store.commitInfo(fullName, sha)).toMatchObject({
      tree,
      parents: [main, feature2],
      message: 'by hand',
      author: alice,
      committer: bob,
    });
    // A commit names its tree too.
    const again = await store.commitTree(fullName, {
      tree: sha,
      parents: [],
      message: 'm',
      author: alice,
    });
    expect((await store.commitInfo(fullName, again))?.committer).toEqual(alice);
    expect((await store.commitInfo(fullName, again))?.tree).toBe(tree);
  });
});

describe('GitStore refs', () => {
  it('resolves shas, full refs and branch names to commits', async () => {
    const fullName = await newRepo();
    const { base, feature2 } = await forkedHistory(fullName);
    await store.updateRef(fullName, 'refs/heads/feature', feature2, {});
    expect(await store.resolve(fullName, feature2)).toBe(feature2);
    expect(await store.resolve(fullName, feature2.slice(0, 12))).toBe(feature2);
    expect(await store.resolve(fullName, 'refs/heads/feature')).toBe(feature2);
    expect(await store.resolve(fullName, 'feature')).toBe(feature2);
    expect(await store.resolve(fullName, 'feature~2')).toBe(base);
    expect(await store.resolve(fullName, 'missing')).toBeUndefined();
    expect(await store.resolve(fullName, '--all')).toBeUndefined();
    const tree = (await store.commitInfo(fullName, base))!.tree;
    expect(await store.resolve(fullName, tree)).toBeUndefined();
  });

  it('lists refs under a prefix, which need not end at a slash', async () => {
    const fullName = await newRepo();
    const { base, main, feature2 } = await forkedHistory(fullName);
    await store.updateRef(fullName, 'refs/heads/main', main, {});
    await store.updateRef(fullName, 'refs/heads/feature/x', feature2, {});
    await store.updateRef(fullName, 'refs/heads/fix', base, {});
    await store.updateRef(fullName, 'refs/pull/1/head', feature2, {});
    expect(await store.refs(fullName, 'refs/heads/')).toEqual([
      { ref: 'refs/heads/feature/x', sha: feature2 },
      { ref: 'refs/heads/fix', sha: base },
      { ref: 'refs/heads/main', sha: main },
    ]);
    expect((await store.refs(fullName, 'refs/heads/f')).map((r) => r.ref)).toEqual([
      'refs/heads/feature/x',
      'refs/heads/fix',
    ]);
    expect((await store.refs(fullName)).map((r) => r.ref)).toEqual([
      'refs/heads/feature/x',
      'refs/heads/fix',
      'refs/heads/main',
      'refs/pull/1/head',
    ]);
    expect(await store.refs(fullName, '')).toHaveLength(4);
  });

  it('moves refs by fast-forward and compare-and-swap only', async () => {
    const fullName = await newRepo();
    const { base, main, feature1, feature2 } = await forkedHistory(fullName);
    const ref = 'refs/heads/main';
    expect(await store.updateRef(fullName, ref, base, { expectedOld: null })).toBe('ok');
    // Must not exist, but does.
    expect(await store.updateRef(fullName, ref, main, { expectedOld: null })).toBe('stale');
    expect(await store.updateRef(fullName, ref, main, {})).toBe('ok');
    expect(await store.resolve(fullName, 'main')).toBe(main);
    // feature2 does not contain main.
    expect(await store.updateRef(fullName, ref, feature2, {})).toBe('not-fast-forward');
    expect(await store.updateRef(fullName, ref, feature2, { expectedOld: main })).toBe(
      'not-fast-forward',
    );
    expect(await store.updateRef(fullName, ref, feature2, { expectedOld: base, force: true })).toBe(
      'stale',
    );
    expect(await store.resolve(fullName, 'main')).toBe(main);
    expect(await store.updateRef(fullName, ref, feature1, { expectedOld: main, force: true })).toBe(
      'ok',
    );
    expect(await store.updateRef(fullName, ref, feature2, { expectedOld: feature1 })).toBe('ok');
    expect(await store.updateRef(fullName, ref, feature2, {})).toBe('ok');
    expect(await store.updateRef(fullName, ref, base, { force: true })).toBe('ok');
    expect(await store.resolve(fullName, 'main')).toBe(base);
  });

  it('lets exactly one of many concurrent updates from the same value win', async () => {
    const fullName = await newRepo();
    const { base, main, feature1, feature2 } = await forkedHistory(fullName);
    const ref = 'refs/heads/race';
    await store.updateRef(fullName, ref, base, {});
    const targets = [main, feature1, feature2, main, feature1, feature2];
    const results = await Promise.all(
      targets.map((sha) => store.updateRef(fullName, ref, sha, { expectedOld: base, force: true })),
    );
    expect(results.filter((r) => r === 'ok')).toHaveLength(1);
    expect(results.filter((r) => r === 'stale')).toHaveLength(targets.length - 1);
    expect(await store.resolve(fullName, ref)).toBe(targets[results.indexOf('ok')]);
  });

  it('refuses objects that are missing or cannot be on a branch, and bad ref names', async () => {
    const fullName = await newRepo();
    const { base } = await forkedHistory(fullName);
    const tree = (await store.commitInfo(fullName, base))!.tree;
    expect(await store.updateRef(fullName, 'refs/heads/x', 'f'.repeat(40), {})).toBe(
      'missing-object',
    );
    expect(await store.updateRef(fullName, 'refs/heads/x', base.slice(0, 10), {})).toBe(
      'missing-object',
    );
    expect(await store.updateRef(fullName, 'refs/heads/x', tree, {})).toBe('missing-object');
    // Outside refs/heads/ any object will do, as for git.
    expect(await store.updateRef(fullName, 'refs/trees/x', tree, {})).toBe('ok');
    // Not commits: never a fast-forward.
    expect(await store.updateRef(fullName, 'refs/trees/x', base, {})).toBe('not-fast-forward');
    for (const ref of ['heads/x', 'refs/heads/a..b', 'refs/heads/x.lock', '-refs/x']) {
      await expect(store.updateRef(fullName, ref, base, {})).rejects.toMatchObject({
        problem: 'invalid-ref',
      });
    }
    expect(await store.refs(fullName)).toEqual([{ ref: 'refs/trees/x', sha: tree }]);
  });

  it('deletes refs that exist', async () => {
    const fullName = await newRepo();
    const { base } = await forkedHistory(fullName);
    await store.updateRef(fullName, 'refs/heads/gone', base, {});
    expect(await store.deleteRef(fullName, 'refs/heads/gone')).toBe(true);
    expect(await store.deleteRef(fullName, 'refs/heads/gone')).toBe(false);
    expect(await store.deleteRef(fullName, 'bad ref')).toBe(false);
    expect(await store.resolve(fullName, 'gone')).toBeUndefined();
  });

  it('tells ancestors from other commits', async () => {
    const fullName = await newRepo();
    const { base, main, feature2 } = await forkedHistory(fullName);
    expect(await store.isAncestor(fullName, base, feature2)).toBe(true);
    expect(await store.isAncestor(fullName, feature2, feature2)).toBe(true);
    expect(await store.isAncestor(fullName, feature2, base)).toBe(false);
    expect(await store.isAncestor(fullName, main, feature2)).toBe(false);
    expect(await store.isAncestor(fullName, 'f'.repeat(40), feature2)).toBe(false);
    expect(await store.isAncestor(fullName, '-h', feature2)).toBe(false);
  });
});

describe('GitStore objects', () => {
  it('reads commits and tells object types', async () => {
    const fullName = await newRepo();
    const { base, feature1, feature2 } = await forkedHistory(fullName);
    expect(await store.commitInfo(fullName, feature2)).toMatchObject({
      parents: [feature1],
      message: 'feature 2\n\nwith a body',
      author: carol,
      committer: carol,
    });
    const info = (await store.commitInfo(fullName, base))!;
    const blob = (await store.readPath(fullName, base, 'keep.txt'))!.sha;
    await git(['--git-dir', store.path(fullName), 'tag', '-a', '-m', 'release', 'v1', base]);
    const tag = (
      await git(['--git-dir', store.path(fullName), 'rev-parse', 'refs/tags/v1'])
    ).trim();
    expect(await store.objectType(fullName, base)).toBe('commit');
    expect(await store.objectType(fullName, info.tree)).toBe('tree');
    expect(await store.objectType(fullName, blob)).toBe('blob');
    expect(await store.objectType(fullName, tag)).toBe('tag');
    expect(await store.objectType(fullName, 'f'.repeat(40))).toBeUndefined();
    expect(await store.objectType(fullName, 'a\nb')).toBeUndefined();
    expect(await store.commitInfo(fullName, info.tree)).toBeUndefined();
    expect(await store.commitInfo(fullName, 'f'.repeat(40))).toBeUndefined();
    expect(await store.commitInfo(fullName, '')).toBeUndefined();
    // A tag peels to its commit.
    expect(await store.resolve(fullName, 'v1')).toBe(base);
  });

  it('lists trees flat or recursively, with blob sizes', async () => {
    const fullName = await newRepo();
    const sha = await store.commit(fullName, {
      parents: [],
      changes: { 'a.txt': 'aaa', 'd/b.txt': 'bb', 'd/e/c.txt': 'c' },
      message: 'm',
      author: alice,
    });
    const tree = (await store.commitInfo(fullName, sha))!.tree;
    const flat = await store.tree(fullName, sha, false);
    expect(flat?.sha).toBe(tree);
    expect(flat?.truncated).toBe(false);
    expect(flat?.entries.map(({ path, type, size, mode }) => ({ path, type, size, mode }))).toEqual(
      [
        { path: 'a.txt', type: 'blob', size: 3, mode: '100644' },
        { path: 'd', type: 'tree', size: undefined, mode: '040000' },
      ],
    );
    const deep = await store.tree(fullName, tree, true);
    expect(deep?.entries.map((e) => `${e.type} ${e.path}`)).toEqual([
      'blob a.txt',
      'tree d',
      'blob d/b.txt',
      'tree d/e',
      'blob d/e/c.txt',
    ]);
    expect(deep?.entries[2]?.sha).toBe((await store.readPath(fullName, sha, 'd/b.txt'))?.sha);
    expect(await store.tree(fullName, 'f'.repeat(40), true)).toBeUndefined();
    const blob = deep!.entries[0]!.sha;
    expect(await store.tree(fullName, blob, false)).toBeUndefined();
    expect((await store.blob(fullName, blob))?.toString()).toBe('aaa');
    expect(await store.blob(fullName, tree)).toBeUndefined();
    expect(await store.blob(fullName, 'f'.repeat(40))).toBeUndefined();

    const limited = new GitStore(join(root, 'repos'), { treeEntryLimit: 2 });
    const cut = await limited.tree(fullName, sha, true);
    expect(cut?.truncated).toBe(true);
    expect(cut?.entries.map((e) => e.path)).toEqual(['a.txt', 'd']);
  });

  it('reads a file, a directory, the root, and nothing where nothing is', async () => {
    const fullName = await newRepo();
    const sha = await store.commit(fullName, {
      parents: [],
      changes: { 'a.txt': 'aaa', 'd/b.txt': 'bb', 'd/e/c.txt': 'c', 'with space.txt': 's' },
      message: 'm',
      author: alice,
    });
    const file = await store.readPath(fullName, sha, 'd/e/c.txt');
    expect(file).toEqual({
      type: 'file',
      sha: expect.stringMatching(/^[0-9a-f]{40}$/),
      mode: '100644',
      content: Buffer.from('c'),
    });
    expect(await text(fullName, 'refs/heads/nowhere', 'a.txt').catch(() => 'none')).toBe('none');
    expect(await text(fullName, sha, '/with space.txt')).toBe('s');
    const dir = await store.readPath(fullName, sha, 'd/');
    expect(dir?.type).toBe('dir');
    expect(dir?.type === 'dir' && dir.entries.map((e) => `${e.type} ${e.path} ${e.size}`)).toEqual([
      'blob d/b.txt 2',
      'tree d/e undefined',
    ]);
    const rootDir = await store.readPath(fullName, sha, '');
    expect(rootDir?.sha).toBe((await store.commitInfo(fullName, sha))?.tree);
    expect(rootDir?.type === 'dir' && rootDir.entries.map((e) => e.path)).toEqual([
      'a.txt',
      'd',
      'with space.txt',
    ]);
    expect(await store.readPath(fullName, sha, 'missing.txt')).toBeUndefined();
    expect(await store.readPath(fullName, sha, 'd/missing')).toBeUndefined();
    expect(await store.readPath(fullName, sha, 'a.txt/inside')).toBeUndefined();
    expect(await store.readPath(fullName, sha, '*.txt')).toBeUndefined();
    expect(await store.readPath(fullName, sha, '../a.txt')).toBeUndefined();
    expect(await store.readPath(fullName, 'f'.repeat(40), 'a.txt')).toBeUndefined();
  });

  it('has no content for a submodule', async () => {
    const fullName = await newRepo();
    const gitlink = 'f'.repeat(40);
    const tree = (
      await git(['--git-dir', store.path(fullName), 'mktree'], `160000 commit ${gitlink}\tsub\n`)
    ).trim();
    const sha = await store.commitTree(fullName, {
      tree,
      parents: [],
      message: 'm',
      author: alice,
    });
    expect(await store.readPath(fullName, sha, 'sub')).toBeUndefined();
    expect((await store.tree(fullName, sha, true))?.entries).toEqual([
      { path: 'sub', mode: '160000', type: 'commit', sha: gitlink },
    ]);
  });

  it('logs newest first, up to a maximum', async () => {
    const fullName = await newRepo();
    const { base, feature1, feature2 } = await forkedHistory(fullName);
    const log = await store.log(fullName, feature2);
    expect(log.map((c) => c.sha)).toEqual([feature2, feature1, base]);
    expect(log.map((c) => c.author.name)).toEqual(['Carol', 'Bob', 'Alice']);
    expect((await store.log(fullName, feature2, 2)).map((c) => c.sha)).toEqual([
      feature2,
      feature1,
    ]);
    expect(await store.log(fullName, 'nowhere')).toEqual([]);
  });
});

describe('GitStore answers it remembers', () => {
  it('reads branches afresh, finds a sha that arrives later, and hands out copies', async () => {
    const fullName = await newRepo();
    const source = await newRepo();
    const { main, feature1, feature2 } = await forkedHistory(fullName);
    await store.updateRef(fullName, 'refs/heads/main', main, { expectedOld: null });
    await store.updateRef(fullName, 'refs/heads/feature', feature1, { expectedOld: null });

    const before = await store.compare(fullName, 'main', 'feature');
    expect(before.commits).toEqual([feature1]);
    await store.updateRef(fullName, 'refs/heads/feature', feature2, {});
    expect(await store.resolve(fullName, 'feature')).toBe(feature2);
    expect((await store.compare(fullName, 'main', 'feature')).commits).toEqual([
      feature1,
      feature2,
    ]);

    // A caller changing an answer does not change the next one.
    before.commits.push('changed');
    expect((await store.compare(fullName, main, feature1)).commits).toEqual([feature1]);
    const info = (await store.commitInfo(fullName, feature1))!;
    info.parents.push('changed');
    expect((await store.commitInfo(fullName, feature1))!.parents).toHaveLength(1);

    // Unknown now, known once fetched: a miss is never remembered.
    const later = await store.commit(source, {
      parents: [],
      changes: { 'later.txt': 'later\n' },
      message: 'later',
      author: alice,
    });
    expect(await store.resolve(fullName, later)).toBeUndefined();
    expect(await store.objectType(fullName, later)).toBeUndefined();
    expect(await store.isAncestor(fullName, later, feature2)).toBe(false);
    await store.fetch(fullName, source, later, 'refs/heads/later');
    expect(await store.resolve(fullName, later)).toBe(later);
    expect(await store.objectType(fullName, later)).toBe('commit');
    expect((await store.commitInfo(fullName, later))?.message).toBe('later');
  });
});

describe('GitStore comparisons', () => {
  it('compares from the merge base, with statuses, counts and patches', async () => {
    const fullName = await newRepo();
    const { base, main, feature1, feature2 } = await forkedHistory(fullName);
    const binaryHead = await store.commit(fullName, {
      parents: [feature2],
      changes: { 'blob.bin': Buffer.from([0, 1, 2, 3]), 'keep.txt': null, 'kept.txt': 'k\n' },
      message: 'binary and rename',
      author: bob,
    });
    const comparison = await store.compare(fullName, main, binaryHead);
    expect(comparison.mergeBase).toBe(base);
    expect(comparison.aheadBy).toBe(3);
    expect(comparison.behindBy).toBe(1);
    expect(comparison.commits).toEqual([feature1, feature2, binaryHead]);
    // main.txt is on main only: a three-dot diff does not show it.
    expect(comparison.files).toEqual([
      {
        filename: 'blob.bin',
        status: 'added',
        additions: 0,
        deletions: 0,
        changes: 0,
        sha: (await store.readPath(fullName, binaryHead, 'blob.bin'))!.sha,
      },
      {
        filename: 'feature.txt',
        status: 'added',
        additions: 1,
        deletions: 0,
        changes: 1,
        sha: (await store.readPath(fullName, binaryHead, 'feature.txt'))!.sha,
        patch: '@@ -0,0 +1 @@\n+a',
      },
      {
        filename: 'gone.txt',
        status: 'removed',
        additions: 0,
        deletions: 1,
        changes: 1,
        sha: null,
        patch: '@@ -1 +0,0 @@\n-bye',
      },
      {
        filename: 'kept.txt',
        status: 'renamed',
        previousFilename: 'keep.txt',
        additions: 0,
        deletions: 0,
        changes: 0,
        sha: (await store.readPath(fullName, binaryHead, 'kept.txt'))!.sha,
      },
      {
        filename: 'shared.txt',
        status: 'modified',
        additions: 2,
        deletions: 1,
        changes: 3,
        sha: (await store.readPath(fullName, binaryHead, 'shared.txt'))!.sha,
        patch: '@@ -1,3 +1,4 @@\n one\n-two\n+TWO\n three\n+four',
      },
    ]);
    await store.updateRef(fullName, 'refs/heads/main', main, {});
    const reverse = await store.compare(fullName, feature2, 'main');
    expect(reverse).toMatchObject({ mergeBase: base, aheadBy: 1, behindBy: 2, commits: [main] });
    expect(reverse.files.map((f) => `${f.status} ${f.filename}`)).toEqual(['added main.txt']);
    expect(await store.compare(fullName, feature2, feature2)).toEqual({
      mergeBase: feature2,
      aheadBy: 0,
      behindBy: 0,
      commits: [],
      files: [],
    });
    await expect(store.compare(fullName, 'nowhere', feature2)).rejects.toMatchObject({
      problem: 'unknown-revision',
      value: 'nowhere',
    });
  });

  it('compares unrelated histories tip to tip', async () => {
    const fullName = await newRepo();
    const one = await store.commit(fullName, {
      parents: [],
      changes: { 'x.txt': 'x\n' },
      message: 'one',
      author: alice,
    });
    const other = await store.commit(fullName, {
      parents: [],
      changes: { 'y.txt': 'y\n' },
      message: 'other',
      author: bob,
    });
    const comparison = await store.compare(fullName, one, other);
    expect(comparison).toMatchObject({
      mergeBase: undefined,
      aheadBy: 1,
      behindBy: 1,
      commits: [other],
    });
    expect(comparison.files.map((f) => `${f.status} ${f.filename}`)).toEqual([
      'removed x.txt',
      'added y.txt',
    ]);
  });

  it('shows a file that became a symlink as modified, with both hunks', async () => {
    const fullName = await newRepo();
    const before = await store.commit(fullName, {
      parents: [],
      changes: { 'f.txt': 'old\n' },
      message: 'file',
      author: alice,
    });
    const blob = (
      await git(['--git-dir', store.path(fullName), 'hash-object', '-w', '--stdin'], 'target')
    ).trim();
    const tree = (
      await git(['--git-dir', store.path(fullName), 'mktree'], `120000 blob ${blob}\tf.txt\n`)
    ).trim();
    const after = await store.commitTree(fullName, {
      tree,
      parents: [before],
      message: 'link',
      author: alice,
    });
    const [change] = (await store.compare(fullName, before, after)).files;
    expect(change).toMatchObject({
      filename: 'f.txt',
      status: 'modified',
      additions: 1,
      deletions: 1,
    });
    expect(change?.patch).toBe(
      '@@ -1 +0,0 @@\n-old\n@@ -0,0 +1 @@\n+target\n\\ No newline at end of file',
    );
  });
});

describe('GitStore merges', () => {
  it('merges trees, or names the conflicting files', async () => {
    const fullName = await newRepo();
    const { main, feature2 } = await forkedHistory(fullName);
    const clean = await store.mergeTrees(fullName, main, feature2);
    expect(clean.clean).toBe(true);
    const conflicting = await store.commit(fullName, {
      parents: [main],
      changes: { 'shared.txt': 'one\nthree\n', 'feature.txt': 'b\n' },
      message: 'clash',
      author: alice,
    });
    expect(await store.mergeTrees(fullName, conflicting, feature2)).toEqual({
      clean: false,
      files: ['feature.txt', 'shared.txt'],
    });
    await expect(store.mergeTrees(fullName, main, 'nowhere')).rejects.toMatchObject({
      problem: 'unknown-revision',
    });
  });

  it('makes a merge commit with parents [base, head] and both sides files', async () => {
    const fullName = await newRepo();
    const { main, feature2 } = await forkedHistory(fullName);
    const result = await store.merge(fullName, {
      base: main,
      head: feature2,
      message: 'Merge feature',
      author: alice,
    });
    if (result.kind !== 'merged') throw new Error(`expected a merge, got ${result.kind}`);
    const parents = await git([
      '--git-dir',
      store.path(fullName),
      'log',
      '-1',
      '--format=%P',
      result.sha,
    ]);
    expect(parents.trim()).toBe(`${main} ${feature2}`);
    expect(await text(fullName, result.sha, 'main.txt')).toBe('from main\n');
    expect(await text(fullName, result.sha, 'feature.txt')).toBe('a\n');
    expect(await text(fullName, result.sha, 'shared.txt')).toBe('one\nTWO\nthree\nfour\n');
    expect(await store.readPath(fullName, result.sha, 'gone.txt')).toBeUndefined();
    expect(await store.commitInfo(fullName, result.sha)).toMatchObject({
      message: 'Merge feature',
      author: alice,
      committer: alice,
    });
    // No ref moved.
    expect(await store.refs(fullName)).toEqual([]);
    // Merging again, or merging an ancestor, changes nothing.
    expect(
      await store.merge(fullName, {
        base: result.sha,
        head: feature2,
        message: 'm',
        author: alice,
      }),
    ).toEqual({
      kind: 'up-to-date',
    });
  });

  it('merges even when base is behind head, as GitHub does', async () => {
    const fullName = await newRepo();
    const { base, feature2 } = await forkedHistory(fullName);
    const result = await store.merge(fullName, {
      base,
      head: feature2,
      message: 'm',
      author: alice,
      committer: bob,
    });
    expect(result.kind).toBe('merged');
    if (result.kind === 'merged') {
      expect((await store.commitInfo(fullName, result.sha))?.parents).toEqual([base, feature2]);
      expect((await store.commitInfo(fullName, result.sha))?.committer).toEqual(bob);
    }
  });

  it('returns the conflicting files of a merge', async () => {
    const fullName = await newRepo();
    const { main, feature2 } = await forkedHistory(fullName);
    const clash = await store.commit(fullName, {
      parents: [main],
      changes: { 'shared.txt': 'ONE\ntwo\nthree\nFOUR\n' },
      message: 'clash',
      author: alice,
    });
    expect(
      await store.merge(fullName, { base: clash, head: feature2, message: 'm', author: alice }),
    ).toEqual({
      kind: 'conflict',
      files: ['shared.txt'],
    });
    expect(
      await store.squash(fullName, { base: clash, head: feature2, message: 'm', author: alice }),
    ).toEqual({
      kind: 'conflict',
      files: ['shared.txt'],
    });
  });

  it('squashes into one commit on base with the merged content', async () => {
    const fullName = await newRepo();
    const { main, feature2 } = await forkedHistory(fullName);
    const result = await store.squash(fullName, {
      base: main,
      head: feature2,
      message: 'Feature (#1)',
      author: bob,
    });
    if (result.kind !== 'merged') throw new Error(`expected a squash, got ${result.kind}`);
    expect(await store.commitInfo(fullName, result.sha)).toMatchObject({
      parents: [main],
      message: 'Feature (#1)',
      author: bob,
    });
    expect(await text(fullName, result.sha, 'main.txt')).toBe('from main\n');
    expect(await text(fullName, result.sha, 'shared.txt')).toBe('one\nTWO\nthree\nfour\n');
    expect(await store.readPath(fullName, result.sha, 'gone.txt')).toBeUndefined();
    expect(
      await store.squash(fullName, { base: feature2, head: main, message: 'm', author: bob }),
    ).toMatchObject({
      kind: 'merged',
    });
    expect(
      await store.squash(fullName, { base: main, head: main, message: 'm', author: bob }),
    ).toEqual({
      kind: 'up-to-date',
    });
  });

  it('rebases head onto base as a linear history that keeps authors and messages', async () => {
    const fullName = await newRepo();
    const { main, feature1, feature2 } = await forkedHistory(fullName);
    const result = await store.rebase(fullName, { base: main, head: feature2, committer: alice });
    if (result.kind !== 'merged') throw new Error(`expected a rebase, got ${result.kind}`);
    const log = await store.log(fullName, result.sha);
    expect(log.map((c) => c.message)).toEqual([
      'feature 2\n\nwith a body',
      'feature 1',
      'main work',
      'base',
    ]);
    expect(log[2]?.sha).toBe(main);
    expect(log.map((c) => c.parents.length)).toEqual([1, 1, 1, 0]);
    expect(log[0]?.author).toEqual(carol);
    expect(log[1]?.author).toEqual(bob);
    expect(log[0]?.committer).toEqual(alice);
    expect(log[0]?.sha).not.toBe(feature2);
    expect(log[1]?.sha).not.toBe(feature1);
    expect(await text(fullName, result.sha, 'main.txt')).toBe('from main\n');
    expect(await text(fullName, result.sha, 'shared.txt')).toBe('one\nTWO\nthree\nfour\n');
    expect(await store.readPath(fullName, result.sha, 'gone.txt')).toBeUndefined();
    // Each replayed commit holds only its own change on top of the one before.
    const middle = await store.compare(fullName, main, log[1]!.sha);
    expect(middle.files.map((f) => `${f.status} ${f.filename}`)).toEqual([
      'added feature.txt',
      'removed gone.txt',
    ]);
    expect(
      await git([
        '--git-dir',
        store.path(fullName),
        'log',
        '--format=%P',
        `${main}..${result.sha}`,
      ]),
    ).toBe(`${log[1]!.sha}\n${main}\n`);
    expect(
      await store.rebase(fullName, { base: result.sha, head: main, committer: alice }),
    ).toEqual({
      kind: 'up-to-date',
    });
  });

  it('rebases past merge commits, replaying only the commits they bring', async () => {
    const fullName = await newRepo();
    const { base, main, feature2 } = await forkedHistory(fullName);
    const side = await store.commit(fullName, {
      parents: [base],
      changes: { 'side.txt': 'side\n' },
      message: 'side',
      author: carol,
    });
    const merged = await store.merge(fullName, {
      base: feature2,
      head: side,
      message: 'merge side',
      author: bob,
    });
    if (merged.kind !== 'merged') throw new Error('expected a merge');
    const result = await store.rebase(fullName, { base: main, head: merged.sha, committer: alice });
    if (result.kind !== 'merged') throw new Error(`expected a rebase, got ${result.kind}`);
    const log = await store.log(fullName, result.sha);
    expect(
      log
        .slice(0, 3)
        .map((c) => c.message)
        .sort(),
    ).toEqual(['feature 1', 'feature 2\n\nwith a body', 'side']);
    expect(log.every((c) => c.parents.length <= 1)).toBe(true);
    expect(await text(fullName, result.sha, 'side.txt')).toBe('side\n');
  });

  it('finds nothing to rebase when head brings only merge commits', async () => {
    const fullName = await newRepo();
    const { main, feature2 } = await forkedHistory(fullName);
    const merged = await store.merge(fullName, {
      base: main,
      head: feature2,
      message: 'one',
      author: alice,
    });
    if (merged.kind !== 'merged') throw new Error('expected a merge');
    const tree = (await store.commitInfo(fullName, merged.sha))!.tree;
    const otherMerge = await store.commitTree(fullName, {
      tree,
      parents: [feature2, main],
      message: 'the other way round',
      author: bob,
    });
    expect(
      await store.rebase(fullName, { base: otherMerge, head: merged.sha, committer: alice }),
    ).toEqual({
      kind: 'up-to-date',
    });
  });

  it('stops a rebase at the first conflicting commit', async () => {
    const fullName = await newRepo();
    const { main, feature2 } = await forkedHistory(fullName);
    const clash = await store.commit(fullName, {
      parents: [main],
      changes: { 'shared.txt': 'one\n2\nthree\n' },
      message: 'clash',
      author: alice,
    });
    expect(await store.rebase(fullName, { base: clash, head: feature2, committer: alice })).toEqual(
      {
        kind: 'conflict',
        files: ['shared.txt'],
      },
    );
  });

  it('rebases a history unrelated to base, replaying it from its root', async () => {
    const fullName = await newRepo();
    const one = await store.commit(fullName, {
      parents: [],
      changes: { 'x.txt': 'x\n' },
      message: 'one',
      author: alice,
    });
    const other = await store.commit(fullName, {
      parents: [],
      changes: { 'y.txt': 'y\n' },
      message: 'other',
      author: bob,
    });
    const result = await store.rebase(fullName, { base: one, head: other, committer: carol });
    if (result.kind !== 'merged') throw new Error(`expected a rebase, got ${result.kind}`);
    expect(await store.commitInfo(fullName, result.sha)).toMatchObject({
      parents: [one],
      message: 'other',
      author: bob,
    });
    expect(await text(fullName, result.sha, 'x.txt')).toBe('x\n');
    expect(await text(fullName, result.sha, 'y.txt')).toBe('y\n');
  });
});
