/**
 * A run's workspace on a minion: a clean checkout of the commit, made from a
 * per-repository cache so that the second checkout of a repository fetches
 * only what is new (the server prefers a minion that ran the job before), and
 * the files the job's artifact globs match.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { lstat, mkdir, readdir, realpath } from 'node:fs/promises';
import { extname, isAbsolute, join, relative, sep } from 'node:path';
import picomatch from 'picomatch';
import { TowerError } from '../lib/errors.js';

/** A git command failed: the message holds its stderr. */
export class CheckoutError extends TowerError {
  override readonly name = 'CheckoutError';
}

export type CheckoutSource = { url: string; token: string | null };

/** Credentials go in an environment-provided header: never in argv, a URL or .git/config. */
function gitEnv(source: CheckoutSource | undefined): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, GIT_TERMINAL_PROMPT: '0' };
  if (source?.token && /^https?:/.test(source.url)) {
    const basic = Buffer.from(`x-access-token:${source.token}`).toString('base64');
    Object.assign(env, {
      GIT_CONFIG_COUNT: '1',
      GIT_CONFIG_KEY_0: 'http.extraHeader',
      GIT_CONFIG_VALUE_0: `Authorization: Basic ${basic}`,
    });
  }
  return env;
}

function git(args: string[], env: NodeJS.ProcessEnv = gitEnv(undefined)): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('git', args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.once('error', (error) => reject(new CheckoutError(`git: ${error.message}`)));
    child.once('close', (code) => {
      if (code === 0) resolve(stdout);
      else reject(new CheckoutError(`git ${args[0] ?? ''} failed (${code}): ${stderr.trim()}`));
    });
  });
}

/** Checkouts from one cache, one fetch at a time per repository. */
export function createCheckouts(cacheDir: string) {
  const locks = new Map<number, Promise<unknown>>();

  function serially<T>(repositoryId: number, work: () => Promise<T>): Promise<T> {
    const previous = locks.get(repositoryId) ?? Promise.resolve();
    const next = previous.then(work, work);
    locks.set(
      repositoryId,
      next.catch(() => undefined),
    );
    return next;
  }

  /** Makes sure the cache has the commit; returns the cache's path. */
  function fetchIntoCache(repositoryId: number, source: CheckoutSource, sha: string) {
    return serially(repositoryId, async () => {
      const cache = join(cacheDir, `${repositoryId}.git`);
      if (!existsSync(cache)) {
        await mkdir(cacheDir, { recursive: true });
        await git(['init', '--quiet', '--bare', cache]);
        // Workspaces borrow the cache's objects: git must never prune them on its own.
        await git(['-C', cache, 'config', 'gc.auto', '0']);
      }
      const present = await git(['-C', cache, 'cat-file', '-e', `${sha}^{commit}`]).then(
        () => true,
        () => false,
      );
      if (!present) {
        await git(
          ['-C', cache, 'fetch', '--quiet', '--no-tags', source.url, `+${sha}:refs/tower/${sha}`],
          gitEnv(source),
        );
      }
      return cache;
    });
  }

  return {
    /**
     * A clean working tree of `sha` at `into` (which must not exist yet).
     * By default the checkout borrows the cache's objects (`--shared`); with
     * `borrow: false` it hard-links them instead, so that a job running as
     * another user needs no access to the cache (src/minions/isolation.ts).
     */
    async checkout(input: {
      repositoryId: number;
      source: CheckoutSource;
      sha: string;
      into: string;
      borrow?: boolean;
    }): Promise<void> {
      if (!/^[0-9a-f]{40}$/.test(input.sha)) {
        throw new CheckoutError(`not a commit sha: ${input.sha}`);
      }
      const cache = await fetchIntoCache(input.repositoryId, input.source, input.sha);
      const objects = input.borrow === false ? '--local' : '--shared';
      await git(['clone', '--quiet', objects, '--no-checkout', cache, input.into]);
      await git(['-C', input.into, 'checkout', '--quiet', '--detach', input.sha]);
    },
  };
}

export type Checkouts = ReturnType<typeof createCheckouts>;

export type ArtifactFile = { name: string; path: string; size: number; contentType: string };

const contentTypes: Record<string, string> = {
  '.txt': 'text/plain; charset=utf-8',
  '.log': 'text/plain; charset=utf-8',
  '.md': 'text/markdown; charset=utf-8',
  '.json': 'application/json',
  '.xml': 'application/xml',
  '.html': 'text/html; charset=utf-8',
  '.css': 'text/css',
  '.js': 'text/javascript',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.gz': 'application/gzip',
  '.tgz': 'application/gzip',
  '.tar': 'application/x-tar',
  '.zip': 'application/zip',
};

export function contentTypeOf(name: string): string {
  return contentTypes[extname(name).toLowerCase()] ?? 'application/octet-stream';
}

/**
 * The regular files under `root` that match any glob, as names relative to
 * `root` with forward slashes, sorted. Only the directories a glob can reach
 * are walked, and `.git` never is. Nothing outside `root` is ever reached:
 * not through `..`, nor through a symbolic link, even one in a glob's base
 * (`out/**` where `out` links to `/etc` or to another run's directory).
 */
export async function matchArtifacts(
  root: string,
  globs: readonly string[],
): Promise<ArtifactFile[]> {
  const found = new Map<string, ArtifactFile>();
  const realRoot = await realpath(root);
  for (const glob of globs) {
    const match = picomatch(glob, { dot: true });
    const start = await baseInside(root, picomatch.scan(glob).base);
    if (start === undefined) continue;
    for await (const path of walk(start)) {
      const name = relative(root, path).split(sep).join('/');
      if (found.has(name) || name.split('/').includes('.git') || !match(name)) continue;
      // A directory swapped for a link while we walked is still caught here.
      if (!isWithin(realRoot, await realpath(path).catch(() => ''))) continue;
      const info = await lstat(path);
      found.set(name, { name, path, size: info.size, contentType: contentTypeOf(name) });
    }
  }
  return [...found.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/**
 * Where a glob's base lies under `root`, or undefined when it leaves it:
 * absolute, through `..`, or with anything but a real directory (never a
 * symbolic link) on the way. The last part is checked by `walk`.
 */
async function baseInside(root: string, base: string): Promise<string | undefined> {
  if (isAbsolute(base)) return undefined;
  const parts = base.split('/').filter((part) => part !== '' && part !== '.');
  if (parts.includes('..')) return undefined;
  let path = root;
  for (const part of parts.slice(0, -1)) {
    path = join(path, part);
    const info = await lstat(path).catch(() => undefined);
    if (!info?.isDirectory()) return undefined;
  }
  return join(root, ...parts);
}

function isWithin(directory: string, path: string): boolean {
  return path.startsWith(directory + sep);
}

async function* walk(path: string): AsyncGenerator<string> {
  let info;
  try {
    // lstat: a symbolic link is never followed out of the workspace.
    info = await lstat(path);
  } catch {
    return; // a glob whose base does not exist matches nothing
  }
  if (info.isFile()) {
    yield path;
    return;
  }
  if (!info.isDirectory()) return;
  for (const entry of await readdir(path, { withFileTypes: true })) {
    if (entry.name === '.git') continue;
    const child = join(path, entry.name);
    if (entry.isDirectory()) yield* walk(child);
    else if (entry.isFile()) yield child;
  }
}
