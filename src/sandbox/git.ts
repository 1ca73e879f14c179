/**
 * The real-git backend of the GitHub simulator: bare repositories on disk,
 * driven through git's plumbing commands. Every call runs `git --git-dir=…`
 * via execFile (never a shell) in a fixed environment, so host configuration
 * cannot change results; user content reaches git through stdin or temp files.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { devNull, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { TowerError } from '../lib/errors.js';

const execFileAsync = promisify(execFile);

export type GitPerson = { name: string; email: string; date: Date };
/** path → new UTF-8 (or Buffer) content, or null to delete the path */
export type FileChanges = Record<string, string | Buffer | null>;
export type TreeEntry = {
  path: string;
  mode: string;
  type: 'blob' | 'tree' | 'commit';
  sha: string;
  size?: number;
};
export type CommitInfo = {
  sha: string;
  tree: string;
  parents: string[];
  message: string;
  author: GitPerson;
  committer: GitPerson;
};
export type FileChange = {
  filename: string;
  status: 'added' | 'removed' | 'modified' | 'renamed';
  additions: number;
  deletions: number;
  changes: number;
  sha: string | null;
  previousFilename?: string;
  patch?: string;
};
export type Comparison = {
  mergeBase: string | undefined;
  aheadBy: number;
  behindBy: number;
  /** merge-base..head, oldest first */
  commits: string[];
  files: FileChange[];
};
export type MergeResult =
  { kind: 'merged'; sha: string } | { kind: 'conflict'; files: string[] } | { kind: 'up-to-date' };
export type MergeInput = {
  base: string;
  head: string;
  message: string;
  author: GitPerson;
  committer?: GitPerson;
};
export type RefUpdate = 'ok' | 'not-fast-forward' | 'stale' | 'missing-object';
export type ObjectType = 'commit' | 'tree' | 'blob' | 'tag';
export type PathContent =
  | { type: 'file'; sha: string; mode: string; content: Buffer }
  | { type: 'dir'; sha: string; entries: TreeEntry[] };

/** git failed in a way the caller could not have caused or expected. */
export class GitError extends TowerError {
  override readonly name = 'GitError';
  constructor(
    message: string,
    readonly details: {
      repo: string | undefined;
      command: readonly string[];
      exitCode: number | string | undefined;
      stderr: string;
    },
  ) {
    super(message);
  }
}

export type GitRequestProblem =
  | 'invalid-repository-name'
  | 'unknown-repository'
  | 'repository-exists'
  | 'unknown-revision'
  | 'invalid-path'
  | 'invalid-ref';

/** The caller asked for something that cannot be done; `web/` maps `problem` to a status. */
export class GitRequestError extends TowerError {
  override readonly name = 'GitRequestError';
  constructor(
    readonly problem: GitRequestProblem,
    readonly repo: string,
    readonly value: string,
  ) {
    super(`${problem}: ${value} (${repo})`);
  }
}

export type GitStoreOptions = {
  /** The git executable; found on PATH by default. */
  gitBinary?: string;
  /** Only PATH is read from it, to find git. */
  env?: NodeJS.ProcessEnv;
  /** GitHub truncates recursive trees at 100,000 entries. */
  treeEntryLimit?: number;
};

type RunOptions = {
  repo?: string;
  input?: string | Buffer;
  env?: Record<string, string>;
  /** Exit codes that are answers rather than failures. */
  ok?: readonly number[];
};
type RunResult = { code: number; stdout: Buffer; stderr: string };

const ZERO_SHA = '0000000000000000000000000000000000000000';
const SHA_PATTERN = /^(?:[0-9a-f]{40}|[0-9a-f]{64})$/;
const NAME_PART = /^[A-Za-z0-9._-]+$/;
// Synthetic commits (see threeWayMerge) are deterministic, so repeated merges reuse them.
const SYNTHETIC_PERSON: GitPerson = {
  name: 'Tower',
  email: 'tower@localhost',
  date: new Date(0),
};

function fixedEnvironment(home: string, env: NodeJS.ProcessEnv): Record<string, string> {
  return {
    PATH: env.PATH ?? '/usr/local/bin:/usr/bin:/bin',
    HOME: home,
    GIT_CONFIG_NOSYSTEM: '1',
    GIT_CONFIG_GLOBAL: devNull,
    GIT_ATTR_NOSYSTEM: '1',
    GIT_TERMINAL_PROMPT: '0',
    // Paths are data, never glob patterns.
    GIT_LITERAL_PATHSPECS: '1',
    LC_ALL: 'C',
    LANG: 'C',
    TZ: 'UTC',
  };
}

async function runGit(
  binary: string,
  baseEnv: Record<string, string>,
  args: readonly string[],
  options: RunOptions = {},
): Promise<RunResult> {
  const ok = options.ok ?? [0];
  const promise = execFileAsync(binary, args, {
    encoding: 'buffer',
    env: { ...baseEnv, ...options.env },
    maxBuffer: 1024 * 1024 * 1024,
  });
  // git may exit before reading all of stdin; its exit status tells the story.
  promise.child.stdin?.on('error', () => {});
  promise.child.stdin?.end(options.input ?? '');
  try {
    const { stdout, stderr } = await promise;
    return { code: 0, stdout, stderr: stderr.toString('utf8') };
  } catch (error) {
    const failure = error as {
      code?: number | string;
      stdout?: Buffer;
      stderr?: Buffer;
      message?: string;
    };
    const stderr = failure.stderr?.toString('utf8') ?? '';
    if (typeof failure.code === 'number') {
      if (
        options.repo !== undefined &&
        failure.code === 128 &&
        stderr.includes('not a git repository')
      ) {
        throw new GitRequestError('unknown-repository', options.repo, options.repo);
      }
      if (ok.includes(failure.code)) {
        return { code: failure.code, stdout: failure.stdout ?? Buffer.alloc(0), stderr };
      }
    }
    const subcommand = args[0] === '--git-dir' ? args[2] : args[0];
    throw new GitError(`git ${subcommand ?? ''} failed`, {
      repo: options.repo,
      command: ['git', ...args],
      exitCode: failure.code,
      stderr: stderr || (failure.message ?? ''),
    });
  }
}

/** True when the installed git has `merge-tree --write-tree` (2.38 or later). */
export async function gitVersionOk(
  gitBinary = 'git',
  env: NodeJS.ProcessEnv = process.env,
): Promise<boolean> {
  try {
    const { stdout } = await runGit(gitBinary, fixedEnvironment(tmpdir(), env), ['--version']);
    const match = /git version (\d+)\.(\d+)/.exec(stdout.toString('utf8'));
    if (!match) return false;
    const [major, minor] = [Number(match[1]), Number(match[2])];
    return major > 2 || (major === 2 && minor >= 38);
  } catch {
    return false;
  }
}

function personEnv(role: 'AUTHOR' | 'COMMITTER', person: GitPerson): Record<string, string> {
  return {
    [`GIT_${role}_NAME`]: person.name,
    [`GIT_${role}_EMAIL`]: person.email,
    // Git stores whole seconds; '@' marks the value as a Unix time in every version.
    [`GIT_${role}_DATE`]: `@${Math.floor(person.date.getTime() / 1000)} +0000`,
  };
}

/** Revisions reach git as arguments, so refuse anything git could read as an option. */
function isSafeRevision(revision: string): boolean {
  return revision !== '' && !revision.startsWith('-') && !/[\0\n]/.test(revision);
}

/** A repository path in canonical form, or undefined when git could never store it. */
function normalizePath(path: string): string | undefined {
  const trimmed = path.replace(/^\/+|\/+$/g, '');
  if (trimmed === '') return '';
  const parts = trimmed.split('/');
  const bad = parts.some(
    (part) => part === '' || part === '.' || part === '..' || part.toLowerCase() === '.git',
  );
  return bad || /\0/.test(trimmed) ? undefined : trimmed;
}

function splitNul(buffer: Buffer): string[] {
  const text = buffer.toString('utf8');
  const parts = text.split('\0');
  if (parts.at(-1) === '') parts.pop();
  return parts;
}

function lines(buffer: Buffer): string[] {
  return buffer
    .toString('utf8')
    .split('\n')
    .filter((line) => line !== '');
}

const LS_TREE_LINE = /^(\d+) (blob|tree|commit) ([0-9a-f]+) +(\S+)\t(.*)$/s;

function parseLsTree(output: Buffer, prefix: string): TreeEntry[] {
  return splitNul(output).map((line) => {
    const match = LS_TREE_LINE.exec(line);
    if (!match) throw new TypeError(`unexpected ls-tree line: ${line}`);
    const [, mode = '', type = '', sha = '', size = '', path = ''] = match;
    // The pattern admits only blob, tree and commit.
    const entry: TreeEntry = { path: prefix + path, mode, type: type as TreeEntry['type'], sha };
    if (size !== '-') entry.size = Number(size);
    return entry;
  });
}

type CatFileObject = { type: string; content: Buffer };

/** Parses `git cat-file --batch` output: one object (or a "missing" line) per query. */
function parseBatch(output: Buffer, count: number): (CatFileObject | undefined)[] {
  const objects: (CatFileObject | undefined)[] = [];
  let offset = 0;
  for (let i = 0; i < count; i++) {
    const end = output.indexOf(0x0a, offset);
    const header = output.subarray(offset, end).toString('utf8').split(' ');
    offset = end + 1;
    if (header.length !== 3 || !/^\d+$/.test(header[2] ?? '')) {
      // "<query> missing" or "<query> ambiguous"
      objects.push(undefined);
      continue;
    }
    const size = Number(header[2]);
    objects.push({ type: header[1] ?? '', content: output.subarray(offset, offset + size) });
    offset += size + 1;
  }
  return objects;
}

const IDENT_LINE = /^(.*) <(.*)> (-?\d+) [+-]\d{4}$/;

function parsePerson(value: string): GitPerson {
  const match = IDENT_LINE.exec(value);
  if (!match) return { name: value, email: '', date: new Date(0) };
  return { name: match[1] ?? '', email: match[2] ?? '', date: new Date(Number(match[3]) * 1000) };
}

type RawCommit = CommitInfo & { rawMessage: string };

function parseCommit(sha: string, content: Buffer): RawCommit {
  const text = content.toString('utf8');
  const split = text.indexOf('\n\n');
  const headerText = split === -1 ? text : text.slice(0, split);
  const rawMessage = split === -1 ? '' : text.slice(split + 2);
  let tree = '';
  const parents: string[] = [];
  let author: GitPerson | undefined;
  let committer: GitPerson | undefined;
  // Continuation lines (gpgsig, mergetag) start with a space and belong to the header above.
  for (const line of headerText.split('\n')) {
    const space = line.indexOf(' ');
    const key = line.slice(0, space);
    const value = line.slice(space + 1);
    if (key === 'tree') tree = value;
    else if (key === 'parent') parents.push(value);
    else if (key === 'author') author = parsePerson(value);
    else if (key === 'committer') committer = parsePerson(value);
  }
  const fallback = { name: '', email: '', date: new Date(0) };
  return {
    sha,
    tree,
    parents,
    // GitHub shows messages without the final newline git adds.
    message: rawMessage.replace(/\n$/, ''),
    rawMessage,
    author: author ?? fallback,
    committer: committer ?? author ?? fallback,
  };
}

function withoutRawMessage({ rawMessage: _, ...info }: RawCommit): CommitInfo {
  return info;
}

/** Git expects a message to end with a newline, as `git commit` writes it. */
function storedMessage(message: string): string {
  return message.endsWith('\n') ? message : `${message}\n`;
}

const RAW_DIFF_HEADER = /^:(\d+) (\d+) ([0-9a-f]+) ([0-9a-f]+) ([A-Z])(\d*)$/;

type RawDiffEntry = {
  status: string;
  newSha: string;
  path: string;
  previousPath?: string;
};

/** Parses `git diff --raw --numstat -z`: all raw records, then one numstat record each. */
function parseRawNumstat(
  output: Buffer,
): { entry: RawDiffEntry; additions: number; deletions: number }[] {
  const tokens = splitNul(output);
  const entries: RawDiffEntry[] = [];
  let i = 0;
  while (i < tokens.length && tokens[i]?.startsWith(':')) {
    const match = RAW_DIFF_HEADER.exec(tokens[i] ?? '');
    if (!match) throw new TypeError(`unexpected raw diff line: ${tokens[i]}`);
    const status = match[5] ?? '';
    const newSha = match[4] ?? '';
    if (status === 'R' || status === 'C') {
      entries.push({ status, newSha, previousPath: tokens[i + 1], path: tokens[i + 2] ?? '' });
      i += 3;
    } else {
      entries.push({ status, newSha, path: tokens[i + 1] ?? '' });
      i += 2;
    }
  }
  return entries.map((entry) => {
    const [added = '-', deleted = '-', path] = (tokens[i] ?? '').split('\t');
    // A rename's numstat record has an empty path followed by the old and new paths.
    i += path === '' ? 3 : 1;
    return {
      entry,
      additions: added === '-' ? 0 : Number(added),
      deletions: deleted === '-' ? 0 : Number(deleted),
    };
  });
}

/** GitHub's `patch` is the hunks of a file's diff, without git's header lines. */
function hunksOf(blocks: string[]): string | undefined {
  const hunks = blocks
    .map((block) => {
      const start = block.indexOf('\n@@');
      return start === -1 ? '' : block.slice(start + 1);
    })
    .filter((hunk) => hunk !== '')
    .map((hunk) => hunk.replace(/\n$/, ''));
  return hunks.length > 0 ? hunks.join('\n') : undefined;
}

function fileStatus(status: string): FileChange['status'] {
  switch (status) {
    case 'A':
      return 'added';
    case 'D':
      return 'removed';
    case 'R':
      return 'renamed';
    default:
      // M, and T (a file became a symlink or back), which GitHub also calls a change.
      return 'modified';
  }
}

/**
 * Answers about objects named by their full SHA never change (objects are never
 * removed), so they are remembered, up to a bound, oldest forgotten first.
 */
class Memo<T> {
  readonly #entries = new Map<string, T>();
  constructor(private readonly limit: number) {}

  get(key: string): T | undefined {
    return this.#entries.get(key);
  }

  set(key: string, value: T): T {
    if (this.#entries.size >= this.limit) {
      this.#entries.delete(this.#entries.keys().next().value as string);
    }
    this.#entries.set(key, value);
    return value;
  }
}

export class GitStore {
  private readonly root: string;
  private readonly gitBinary: string;
  private readonly baseEnv: Record<string, string>;
  private readonly treeEntryLimit: number;
  // Keyed by repository and full SHAs; refs, which move, are always read afresh.
  readonly #peeled = new Memo<string>(20_000);
  readonly #comparisons = new Memo<Comparison>(5_000);
  readonly #commits = new Memo<RawCommit>(20_000);
  readonly #ancestry = new Memo<boolean>(20_000);
  readonly #validRefs = new Memo<boolean>(5_000);
  readonly #types = new Memo<ObjectType>(20_000);

  constructor(root: string, options: GitStoreOptions = {}) {
    // Absolute, so the working directory never matters.
    this.root = resolve(root);
    this.gitBinary = options.gitBinary ?? 'git';
    this.baseEnv = fixedEnvironment(this.root, options.env ?? process.env);
    this.treeEntryLimit = options.treeEntryLimit ?? 100_000;
  }

  path(fullName: string): string {
    const parts = fullName.split('/');
    const valid =
      parts.length === 2 &&
      parts.every((part) => NAME_PART.test(part) && part !== '.' && part !== '..');
    if (!valid) throw new GitRequestError('invalid-repository-name', fullName, fullName);
    return join(this.root, parts[0] ?? '', `${parts[1] ?? ''}.git`);
  }

  cloneUrl(fullName: string): string {
    return pathToFileURL(this.path(fullName)).href;
  }

  async create(fullName: string, defaultBranch: string): Promise<void> {
    const ref = `refs/heads/${defaultBranch}`;
    if (!(await this.validRef(ref))) throw new GitRequestError('invalid-ref', fullName, ref);
    const path = this.path(fullName);
    if (existsSync(path)) throw new GitRequestError('repository-exists', fullName, fullName);
    // An empty --template keeps the host's hook samples and excludes out of the repository.
    await runGit(
      this.gitBinary,
      this.baseEnv,
      ['init', '--quiet', '--bare', '--template=', `--initial-branch=${defaultBranch}`, path],
      { repo: fullName },
    );
  }

  async commit(
    fullName: string,
    input: {
      parents: string[];
      changes: FileChanges;
      message: string;
      author: GitPerson;
      committer?: GitPerson;
      baseTree?: string;
    },
  ): Promise<string> {
    const parents = await this.resolveAll(fullName, input.parents);
    const startTree =
      input.baseTree !== undefined
        ? await this.requireTree(fullName, input.baseTree)
        : parents[0] !== undefined
          ? await this.requireTree(fullName, parents[0])
          : undefined;
    const changes = Object.entries(input.changes).map(([rawPath, content]) => {
      const path = normalizePath(rawPath);
      if (path === undefined || path === '') {
        // update-index silently ignores such paths, so refuse them here.
        throw new GitRequestError('invalid-path', fullName, rawPath);
      }
      return { path, content };
    });
    const temp = await mkdtemp(join(tmpdir(), 'tower-git-'));
    try {
      const env = { GIT_INDEX_FILE: join(temp, 'index') };
      let existing: Map<string, string> = new Map();
      if (startTree !== undefined) {
        await this.git(fullName, ['read-tree', startTree], { env });
        existing = await this.indexModes(fullName, env);
      }
      const writes = changes.filter(
        (change): change is { path: string; content: string | Buffer } => change.content !== null,
      );
      const blobs = await this.writeBlobs(
        fullName,
        temp,
        writes.map((change) => change.content),
      );
      const records: string[] = [];
      for (const change of changes) {
        if (change.content !== null) continue;
        // Deleting a directory deletes everything under it.
        for (const path of existing.keys()) {
          if (path === change.path || path.startsWith(`${change.path}/`)) {
            records.push(`0 ${ZERO_SHA}\t${path}\0`);
          }
        }
      }
      writes.forEach((change, index) => {
        // A changed executable or symlink keeps its mode, as an edit on GitHub does.
        const previous = existing.get(change.path);
        const mode = previous === '100755' || previous === '120000' ? previous : '100644';
        records.push(`${mode} ${blobs[index] ?? ''}\t${change.path}\0`);
      });
      if (records.length > 0) {
        await this.git(fullName, ['update-index', '-z', '--add', '--replace', '--index-info'], {
          env,
          input: records.join(''),
        });
      }
      const tree = (await this.git(fullName, ['write-tree'], { env })).stdout
        .toString('utf8')
        .trim();
      return await this.writeCommit(fullName, {
        tree,
        parents,
        message: input.message,
        author: input.author,
        committer: input.committer ?? input.author,
      });
    } finally {
      await rm(temp, { recursive: true, force: true });
    }
  }

  async commitTree(
    fullName: string,
    input: {
      tree: string;
      parents: string[];
      message: string;
      author: GitPerson;
      committer?: GitPerson;
    },
  ): Promise<string> {
    const tree = await this.requireTree(fullName, input.tree);
    const parents = await this.resolveAll(fullName, input.parents);
    return this.writeCommit(fullName, {
      tree,
      parents,
      message: input.message,
      author: input.author,
      committer: input.committer ?? input.author,
    });
  }

  async resolve(fullName: string, revision: string): Promise<string | undefined> {
    return this.peel(fullName, revision, 'commit');
  }

  async refs(fullName: string, prefix = 'refs/'): Promise<{ ref: string; sha: string }[]> {
    // for-each-ref matches whole path components only, so narrow to the prefix's
    // directory and filter the rest here.
    const directory = prefix.slice(0, prefix.lastIndexOf('/') + 1);
    const args = ['for-each-ref', '--format=%(objectname) %(refname)'];
    if (directory !== '') args.push(directory);
    const { stdout } = await this.git(fullName, args);
    return lines(stdout)
      .map((line) => {
        const space = line.indexOf(' ');
        return { sha: line.slice(0, space), ref: line.slice(space + 1) };
      })
      .filter((entry) => entry.ref.startsWith(prefix));
  }

  async updateRef(
    fullName: string,
    ref: string,
    sha: string,
    options: { expectedOld?: string | null; force?: boolean },
  ): Promise<RefUpdate> {
    if (!(await this.validRef(ref))) throw new GitRequestError('invalid-ref', fullName, ref);
    if (!SHA_PATTERN.test(sha)) return 'missing-object';
    const type = await this.objectType(fullName, sha);
    // Branches can only hold commits; git itself refuses anything else.
    if (type === undefined || (ref.startsWith('refs/heads/') && type !== 'commit')) {
      return 'missing-object';
    }
    const current = await this.readRef(fullName, ref);
    if (options.expectedOld === null && current !== undefined) return 'stale';
    if (typeof options.expectedOld === 'string' && options.expectedOld !== current) return 'stale';
    if (
      !options.force &&
      current !== undefined &&
      current !== sha &&
      !(await this.isAncestor(fullName, current, sha))
    ) {
      return 'not-fast-forward';
    }
    // Compare-and-swap against what we checked, so a concurrent move is seen as stale.
    const { code, stderr } = await this.git(
      fullName,
      ['update-ref', ref, sha, current ?? ZERO_SHA],
      { ok: [0, 128] },
    );
    if (code === 0) return 'ok';
    if ((await this.readRef(fullName, ref)) !== current) return 'stale';
    throw new GitError('git update-ref failed', {
      repo: fullName,
      command: ['git', 'update-ref', ref, sha, current ?? ZERO_SHA],
      exitCode: code,
      stderr,
    });
  }

  /**
   * Copies commit `sha` and its history from repository `source` and points `ref`
   * at it, as GitHub does for a fork's branches and a pull request's head.
   */
  async fetch(fullName: string, source: string, sha: string, ref: string): Promise<void> {
    if (!(await this.validRef(ref))) throw new GitRequestError('invalid-ref', fullName, ref);
    if (!SHA_PATTERN.test(sha) || (await this.objectType(source, sha)) !== 'commit') {
      throw new GitRequestError('unknown-revision', source, sha);
    }
    // upload-pack serves any object it has under protocol v2, not only advertised tips.
    await this.git(fullName, [
      'fetch',
      '--quiet',
      '--no-tags',
      '--no-write-fetch-head',
      this.path(source),
      `+${sha}:${ref}`,
    ]);
  }

  async deleteRef(fullName: string, ref: string): Promise<boolean> {
    if (!(await this.validRef(ref))) return false;
    const current = await this.readRef(fullName, ref);
    if (current === undefined) return false;
    await this.git(fullName, ['update-ref', '-d', ref, current]);
    return true;
  }

  async isAncestor(fullName: string, ancestor: string, descendant: string): Promise<boolean> {
    if (!isSafeRevision(ancestor) || !isSafeRevision(descendant)) return false;
    const key = `${fullName}\0${ancestor}..${descendant}`;
    const known = this.#ancestry.get(key);
    if (known !== undefined) return known;
    // 1 means "not an ancestor"; 128 means a name is missing or not a commit.
    const { code } = await this.git(
      fullName,
      ['merge-base', '--is-ancestor', ancestor, descendant],
      {
        ok: [0, 1, 128],
      },
    );
    const settled = code !== 128 && SHA_PATTERN.test(ancestor) && SHA_PATTERN.test(descendant);
    return settled ? this.#ancestry.set(key, code === 0) : code === 0;
  }

  async commitInfo(fullName: string, sha: string): Promise<CommitInfo | undefined> {
    const [commit] = await this.readCommits(fullName, [sha]);
    return commit && withoutRawMessage(commit);
  }

  async objectType(fullName: string, sha: string): Promise<ObjectType | undefined> {
    if (!isSafeRevision(sha)) return undefined;
    const key = `${fullName}\0${sha}`;
    const known = this.#types.get(key);
    if (known !== undefined) return known;
    const { stdout } = await this.git(fullName, ['cat-file', '--batch-check=%(objecttype)'], {
      input: `${sha}\n`,
    });
    const type = stdout.toString('utf8').trim();
    if (type !== 'commit' && type !== 'tree' && type !== 'blob' && type !== 'tag') return undefined;
    return SHA_PATTERN.test(sha) ? this.#types.set(key, type) : type;
  }

  async tree(
    fullName: string,
    treeish: string,
    recursive: boolean,
  ): Promise<{ sha: string; entries: TreeEntry[]; truncated: boolean } | undefined> {
    const sha = await this.peel(fullName, treeish, 'tree');
    if (sha === undefined) return undefined;
    // -t lists the subtrees themselves too, as GitHub's recursive tree does.
    const args = recursive
      ? ['ls-tree', '-z', '--long', '-r', '-t', sha]
      : ['ls-tree', '-z', '--long', sha];
    const entries = parseLsTree((await this.git(fullName, args)).stdout, '');
    const truncated = entries.length > this.treeEntryLimit;
    return { sha, entries: truncated ? entries.slice(0, this.treeEntryLimit) : entries, truncated };
  }

  async blob(fullName: string, sha: string): Promise<Buffer | undefined> {
    const [object] = await this.catFile(fullName, [sha]);
    return object?.type === 'blob' ? object.content : undefined;
  }

  async readPath(
    fullName: string,
    commitish: string,
    path: string,
  ): Promise<PathContent | undefined> {
    const normalized = normalizePath(path);
    if (normalized === undefined) return undefined;
    const root = await this.peel(fullName, commitish, 'tree');
    if (root === undefined) return undefined;
    let entry: { sha: string; mode: string; type: TreeEntry['type'] } = {
      sha: root,
      mode: '040000',
      type: 'tree',
    };
    if (normalized !== '') {
      const { stdout } = await this.git(fullName, [
        'ls-tree',
        '-z',
        '--long',
        root,
        '--',
        normalized,
      ]);
      const found = parseLsTree(stdout, '').find((candidate) => candidate.path === normalized);
      if (found === undefined) return undefined;
      entry = found;
    }
    switch (entry.type) {
      case 'tree': {
        const { stdout } = await this.git(fullName, ['ls-tree', '-z', '--long', entry.sha]);
        const prefix = normalized === '' ? '' : `${normalized}/`;
        return { type: 'dir', sha: entry.sha, entries: parseLsTree(stdout, prefix) };
      }
      case 'blob': {
        const content = (await this.blob(fullName, entry.sha)) ?? Buffer.alloc(0);
        return { type: 'file', sha: entry.sha, mode: entry.mode, content };
      }
      case 'commit':
        // A submodule's content lives in another repository.
        return undefined;
    }
  }

  async compare(fullName: string, base: string, head: string): Promise<Comparison> {
    const baseSha = await this.requireCommit(fullName, base);
    const headSha = await this.requireCommit(fullName, head);
    const key = `${fullName}\0${baseSha}...${headSha}`;
    const known = this.#comparisons.get(key);
    if (known) return structuredClone(known);
    const comparison = await this.#compare(fullName, baseSha, headSha);
    this.#comparisons.set(key, comparison);
    return structuredClone(comparison);
  }

  async #compare(fullName: string, baseSha: string, headSha: string): Promise<Comparison> {
    const mergeBase = await this.mergeBase(fullName, baseSha, headSha);
    // One walk of the symmetric difference: `<` marks commits only the base has,
    // `>` those only the head has, which are the comparison's commits.
    const sides = lines(
      (
        await this.git(fullName, [
          'rev-list',
          '--left-right',
          '--reverse',
          '--topo-order',
          `${baseSha}...${headSha}`,
        ])
      ).stdout,
    );
    const commits = sides.filter((line) => line.startsWith('>')).map((line) => line.slice(1));
    const behindBy = sides.length - commits.length;
    const aheadBy = commits.length;
    // Unrelated histories have no merge base; then the diff is between the two tips.
    const from = mergeBase ?? baseSha;
    const files = await this.diffFiles(fullName, from, headSha);
    return { mergeBase, aheadBy, behindBy, commits, files };
  }

  async mergeTrees(
    fullName: string,
    ours: string,
    theirs: string,
  ): Promise<{ clean: true; tree: string } | { clean: false; files: string[] }> {
    const oursSha = await this.requireCommit(fullName, ours);
    const theirsSha = await this.requireCommit(fullName, theirs);
    // Exit status 1 means conflicts; the output then lists the conflicted paths after the tree.
    const { code, stdout } = await this.git(
      fullName,
      [
        'merge-tree',
        '--write-tree',
        '-z',
        '--name-only',
        '--no-messages',
        '--allow-unrelated-histories',
        oursSha,
        theirsSha,
      ],
      { ok: [0, 1] },
    );
    const [tree = '', ...files] = splitNul(stdout);
    return code === 0 ? { clean: true, tree } : { clean: false, files };
  }

  /** A real merge commit of head into base, parents [base, head]; refs do not move. */
  async merge(fullName: string, input: MergeInput): Promise<MergeResult> {
    return this.#combine(fullName, input, 'merge');
  }

  /** One commit on base with the merged tree, as GitHub's squash merge makes. */
  async squash(fullName: string, input: MergeInput): Promise<MergeResult> {
    return this.#combine(fullName, input, 'squash');
  }

  async #combine(
    fullName: string,
    input: MergeInput,
    how: 'merge' | 'squash',
  ): Promise<MergeResult> {
    const base = await this.requireCommit(fullName, input.base);
    const head = await this.requireCommit(fullName, input.head);
    if (await this.isAncestor(fullName, head, base)) return { kind: 'up-to-date' };
    const merged = await this.mergeTrees(fullName, base, head);
    if (!merged.clean) return { kind: 'conflict', files: merged.files };
    const sha = await this.writeCommit(fullName, {
      tree: merged.tree,
      parents: how === 'merge' ? [base, head] : [base],
      message: input.message,
      author: input.author,
      committer: input.committer ?? input.author,
    });
    return { kind: 'merged', sha };
  }

  async rebase(
    fullName: string,
    input: { base: string; head: string; committer: GitPerson },
  ): Promise<MergeResult> {
    const base = await this.requireCommit(fullName, input.base);
    const head = await this.requireCommit(fullName, input.head);
    if (await this.isAncestor(fullName, head, base)) return { kind: 'up-to-date' };
    // --topo-order keeps parents before children even when commit dates disagree.
    const { stdout } = await this.git(fullName, [
      'rev-list',
      '--reverse',
      '--topo-order',
      '--no-merges',
      `${base}..${head}`,
    ]);
    const commits = await this.readCommits(fullName, lines(stdout));
    let tip = base;
    let tipTree = await this.requireTree(fullName, base);
    for (const commit of commits) {
      const parentTree =
        commit.parents[0] !== undefined
          ? await this.requireTree(fullName, commit.parents[0])
          : await this.emptyTree(fullName);
      const merged = await this.threeWayMerge(fullName, parentTree, tipTree, commit.tree);
      if (!merged.clean) return { kind: 'conflict', files: merged.files };
      tip = await this.writeCommit(fullName, {
        tree: merged.tree,
        parents: [tip],
        message: commit.rawMessage,
        author: commit.author,
        committer: input.committer,
      });
      tipTree = merged.tree;
    }
    return tip === base ? { kind: 'up-to-date' } : { kind: 'merged', sha: tip };
  }

  async log(fullName: string, revision: string, max?: number): Promise<CommitInfo[]> {
    const sha = await this.resolve(fullName, revision);
    if (sha === undefined) return [];
    const args = ['rev-list'];
    if (max !== undefined) args.push(`--max-count=${Math.max(0, Math.floor(max))}`);
    args.push(sha);
    const commits = await this.readCommits(
      fullName,
      lines((await this.git(fullName, args)).stdout),
    );
    return commits.map(withoutRawMessage);
  }

  private git(fullName: string, args: readonly string[], options: RunOptions = {}) {
    // No working directory is set: a bare repository has no work tree for it to matter.
    return runGit(this.gitBinary, this.baseEnv, ['--git-dir', this.path(fullName), ...args], {
      ...options,
      repo: fullName,
    });
  }

  private async validRef(ref: string): Promise<boolean> {
    if (!ref.startsWith('refs/') || !isSafeRevision(ref)) return false;
    const known = this.#validRefs.get(ref);
    if (known !== undefined) return known;
    const { code } = await runGit(this.gitBinary, this.baseEnv, ['check-ref-format', ref], {
      ok: [0, 1],
    });
    return this.#validRefs.set(ref, code === 0);
  }

  private async readRef(fullName: string, ref: string): Promise<string | undefined> {
    // for-each-ref takes names literally, unlike rev-parse, which would also try
    // refs/heads/<ref> and the like; it matches whole directories too, hence the filter.
    const { stdout } = await this.git(fullName, [
      'for-each-ref',
      '--format=%(objectname) %(refname)',
      ref,
    ]);
    const match = lines(stdout).find((line) => line.slice(line.indexOf(' ') + 1) === ref);
    return match?.slice(0, match.indexOf(' '));
  }

  private async peel(
    fullName: string,
    revision: string,
    type: 'commit' | 'tree',
  ): Promise<string | undefined> {
    if (!isSafeRevision(revision)) return undefined;
    const key = `${fullName}\0${revision}^{${type}}`;
    const known = this.#peeled.get(key);
    if (known !== undefined) return known;
    const { code, stdout } = await this.git(
      fullName,
      ['rev-parse', '--verify', '--quiet', '--end-of-options', `${revision}^{${type}}`],
      { ok: [0, 1, 128] },
    );
    if (code !== 0) return undefined;
    const sha = stdout.toString('utf8').trim();
    // Only a full SHA names the same object for ever; a missing one may come later.
    return SHA_PATTERN.test(revision) ? this.#peeled.set(key, sha) : sha;
  }

  private async requireCommit(fullName: string, revision: string): Promise<string> {
    const sha = await this.peel(fullName, revision, 'commit');
    if (sha === undefined) throw new GitRequestError('unknown-revision', fullName, revision);
    return sha;
  }

  private async requireTree(fullName: string, treeish: string): Promise<string> {
    const sha = await this.peel(fullName, treeish, 'tree');
    if (sha === undefined) throw new GitRequestError('unknown-revision', fullName, treeish);
    return sha;
  }

  private async resolveAll(fullName: string, revisions: readonly string[]): Promise<string[]> {
    const shas: string[] = [];
    for (const revision of revisions) shas.push(await this.requireCommit(fullName, revision));
    return shas;
  }

  private async mergeBase(fullName: string, a: string, b: string): Promise<string | undefined> {
    const { code, stdout } = await this.git(fullName, ['merge-base', a, b], { ok: [0, 1] });
    return code === 0 ? stdout.toString('utf8').trim() : undefined;
  }

  private async emptyTree(fullName: string): Promise<string> {
    return (await this.git(fullName, ['mktree'])).stdout.toString('utf8').trim();
  }

  private async catFile(
    fullName: string,
    names: readonly string[],
  ): Promise<(CatFileObject | undefined)[]> {
    const safe = names.filter(isSafeRevision);
    if (safe.length === 0) return names.map(() => undefined);
    const { stdout } = await this.git(fullName, ['cat-file', '--batch'], {
      input: safe.map((name) => `${name}\n`).join(''),
    });
    const objects = parseBatch(stdout, safe.length);
    let next = 0;
    return names.map((name) => (isSafeRevision(name) ? objects[next++] : undefined));
  }

  /** The commits among `shas`, in order; names of other objects are dropped. */
  private async readCommits(fullName: string, shas: readonly string[]): Promise<RawCommit[]> {
    const key = (sha: string) => `${fullName}\0${sha}`;
    const unknown = shas.filter((sha) => !this.#commits.get(key(sha)));
    const objects = unknown.length > 0 ? await this.catFile(fullName, unknown) : [];
    const read = new Map<string, RawCommit>();
    objects.forEach((object, index) => {
      const sha = unknown[index] ?? '';
      if (object?.type !== 'commit') return;
      const commit = parseCommit(sha, object.content);
      read.set(sha, SHA_PATTERN.test(sha) ? this.#commits.set(key(sha), commit) : commit);
    });
    return shas.flatMap((sha) => {
      const commit = this.#commits.get(key(sha)) ?? read.get(sha);
      return commit ? [structuredClone(commit)] : [];
    });
  }

  private async writeCommit(
    fullName: string,
    input: {
      tree: string;
      parents: string[];
      message: string;
      author: GitPerson;
      committer: GitPerson;
    },
  ): Promise<string> {
    const args = ['commit-tree', input.tree, ...input.parents.flatMap((parent) => ['-p', parent])];
    // commit-tree stores the message from stdin verbatim.
    const { stdout } = await this.git(fullName, args, {
      input: storedMessage(input.message),
      env: { ...personEnv('AUTHOR', input.author), ...personEnv('COMMITTER', input.committer) },
    });
    return stdout.toString('utf8').trim();
  }

  /** Writes contents as blobs with one hash-object call, through temp files. */
  private async writeBlobs(
    fullName: string,
    temp: string,
    contents: readonly (string | Buffer)[],
  ): Promise<string[]> {
    if (contents.length === 0) return [];
    const files = contents.map((_, index) => join(temp, `blob-${index}`));
    await Promise.all(contents.map((content, index) => writeFile(files[index] ?? '', content)));
    // --no-filters: content is stored byte for byte, whatever attributes say.
    const { stdout } = await this.git(
      fullName,
      ['hash-object', '-w', '--no-filters', '--stdin-paths'],
      { input: files.map((file) => `${file}\n`).join('') },
    );
    return lines(stdout);
  }

  private async indexModes(
    fullName: string,
    env: Record<string, string>,
  ): Promise<Map<string, string>> {
    const { stdout } = await this.git(fullName, ['ls-files', '-z', '--stage'], { env });
    const modes = new Map<string, string>();
    for (const record of splitNul(stdout)) {
      const tab = record.indexOf('\t');
      modes.set(record.slice(tab + 1), record.slice(0, record.indexOf(' ')));
    }
    return modes;
  }

  /**
   * A three-way merge of trees with a chosen base. git 2.39's merge-tree has no
   * --merge-base (that came in 2.40), so the trees are wrapped in synthetic
   * commits whose only common ancestor holds the base tree.
   */
  private async threeWayMerge(
    fullName: string,
    baseTree: string,
    oursTree: string,
    theirsTree: string,
  ): Promise<{ clean: true; tree: string } | { clean: false; files: string[] }> {
    const synthetic = (tree: string, parents: string[]) =>
      this.writeCommit(fullName, {
        tree,
        parents,
        message: 'tower: merge base',
        author: SYNTHETIC_PERSON,
        committer: SYNTHETIC_PERSON,
      });
    const baseCommit = await synthetic(baseTree, []);
    const ours = await synthetic(oursTree, [baseCommit]);
    const theirs = await synthetic(theirsTree, [baseCommit]);
    return this.mergeTrees(fullName, ours, theirs);
  }

  private async diffFiles(fullName: string, from: string, to: string): Promise<FileChange[]> {
    const summary = parseRawNumstat(
      (
        await this.git(fullName, [
          'diff',
          '--raw',
          '--no-abbrev',
          '--numstat',
          '-z',
          '-M',
          from,
          to,
        ])
      ).stdout,
    );
    const patchText = (
      await this.git(fullName, [
        'diff',
        '-M',
        '--patch',
        '--no-color',
        '--no-ext-diff',
        '--no-textconv',
        from,
        to,
      ])
    ).stdout.toString('utf8');
    const blocks = patchText
      .split(/^(?=diff --git )/m)
      .filter((block) => block.startsWith('diff --git '));
    let next = 0;
    return summary.map(({ entry, additions, deletions }) => {
      // Patches come in the same order as the raw records; a type change prints two.
      const count = entry.status === 'T' ? 2 : 1;
      const patch = hunksOf(blocks.slice(next, next + count));
      next += count;
      const change: FileChange = {
        filename: entry.path,
        status: fileStatus(entry.status),
        additions,
        deletions,
        changes: additions + deletions,
        sha: entry.status === 'D' ? null : entry.newSha,
      };
      if (entry.previousPath !== undefined) change.previousFilename = entry.previousPath;
      if (patch !== undefined) change.patch = patch;
      return change;
    });
  }
}
