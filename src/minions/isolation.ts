/**
 * How a minion keeps a job away from everything that is not the job's
 * (docs/security.md, "Minions"). Two levels:
 *
 * - `user`: each slot of the agent runs its jobs as a user of its own, a
 *   numeric uid from a range no account and no process uses, with no
 *   supplementary groups. The run's directory is that user's (mode 0700);
 *   the agent's credential, the repository caches and the other runs stay
 *   the agent's, unreadable. When the command ends, every process of that
 *   user is killed (`kill -KILL -1` as the user, which reaches `setsid` and
 *   double-fork escapes too) and what it left in the shared temporary
 *   directories is removed, so the next run on the slot starts from nothing.
 *   It needs the agent to run as root on Linux.
 * - `none`: jobs run as the agent's own user. For the demo on a laptop, or a
 *   machine whose only work is one trusted repository: a job can read the
 *   agent's credential and the other runs.
 */
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmod, lchown, lstat, readdir, readFile, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { TowerError } from '../lib/errors.js';

/** `firstUid` absent: one derived from the work directory (`defaultFirstRunUid`). */
export type Isolation = { kind: 'none' } | { kind: 'user'; firstUid?: number };

/**
 * The first run uid of an agent that was given none: above the ranges
 * distributions, systemd and user namespaces hand out, still a signed 32-bit
 * id, and different for each work directory, so that two agents on one
 * machine do not share users (`checkIsolation` refuses one that would).
 */
export function defaultFirstRunUid(workdir: string): number {
  const bucket = createHash('sha256').update(workdir).digest().readUInt32BE(0) % 100_000;
  return 2_000_000_000 + bucket * MAX_SLOTS;
}

/** An agent runs at most this many jobs at once: one uid each. */
const MAX_SLOTS = 64;

/** Where any user may leave files; a run's leftovers there are removed. */
const SHARED_TEMP_DIRECTORIES = ['/tmp', '/var/tmp', '/dev/shm'];

/** The agent cannot isolate jobs as asked: the message says what to change. */
export class IsolationError extends TowerError {
  override readonly name = 'IsolationError';
}

/** `user` where the agent can switch users (root on Linux), else `none`. */
export function availableIsolation(): Isolation {
  return canSwitchUsers() ? { kind: 'user' } : { kind: 'none' };
}

export function canSwitchUsers(): boolean {
  return process.platform === 'linux' && process.getuid?.() === 0;
}

/** The uid (and gid) a slot's jobs run as; undefined when jobs run as the agent. */
export function runUid(isolation: Isolation, workdir: string, slot: number): number | undefined {
  if (isolation.kind === 'none') return undefined;
  return (isolation.firstUid ?? defaultFirstRunUid(workdir)) + slot;
}

/**
 * Checks, before the agent claims anything, that user isolation can work:
 * root on Linux, uids that no account and no running process has, a user
 * switch that succeeds, and a work directory the run users can reach.
 */
export async function checkIsolation(
  isolation: Isolation,
  slots: number,
  workdir: string,
): Promise<void> {
  if (isolation.kind === 'none') return;
  if (!canSwitchUsers()) {
    throw new IsolationError(
      'Running each job as a user of its own (isolation "user") needs the agent to run as root on Linux; ' +
        'run it as root, or pass --isolation none to run jobs as this user (they can then read its credential and each other’s runs)',
    );
  }
  const first = runUid(isolation, workdir, 0)!;
  const last = first + slots - 1;
  if (!Number.isInteger(first) || first < 1000 || last > 2_147_483_646) {
    throw new IsolationError(
      `Run uids ${first}-${last} are out of range: choose a first uid from 1000 with room for ${slots} slots below 2^31`,
    );
  }
  const inRange = (uid: number) => uid >= first && uid <= last;
  const passwd = await readFile('/etc/passwd', 'utf8').catch(() => '');
  for (const line of passwd.split('\n')) {
    const [name, , uid] = line.split(':');
    if (uid !== undefined && inRange(Number(uid))) {
      throw new IsolationError(
        `Run uid ${uid} belongs to the account ${name}: choose run uids no account has (--run-uid)`,
      );
    }
  }
  for (const { pid, uid } of await processes()) {
    if (inRange(uid)) {
      throw new IsolationError(
        `Process ${pid} runs as uid ${uid}, one of this agent's run uids ${first}-${last}: ` +
          'is another agent using them? Give each agent its own range (--run-uid)',
      );
    }
  }
  const probe = spawnSync('true', [], { uid: first, gid: first, stdio: 'ignore' });
  if (probe.error || probe.status !== 0) {
    throw new IsolationError(
      `Cannot run a command as uid ${first} (${probe.error?.message ?? `exit ${probe.status}`}); ` +
        'in a user namespace, choose run uids inside its mapping (--run-uid)',
    );
  }
  // Run users reach their run directories through the work directory's parents (the agent opens the work directory itself).
  for (let dir = dirname(workdir); ; dir = dirname(dir)) {
    const mode = (await stat(dir)).mode;
    if ((mode & 0o001) === 0) {
      throw new IsolationError(
        `Run users cannot reach the work directory: ${dir} is not searchable by others ` +
          `(mode ${(mode & 0o777).toString(8)}); chmod o+x ${dir}, or choose another --workdir`,
      );
    }
    if (dirname(dir) === dir) break;
  }
}

/** Makes `dir` the run user's own; the agent's directories stay its own. */
export async function giveToRunUser(dir: string, uid: number): Promise<void> {
  await chmod(dir, 0o700);
  await ownTree(dir, uid);
}

/**
 * Hands a tree to a run user. Files with other hard links (a checkout's
 * objects borrowed from the repository cache) stay the agent's and
 * read-only: a job reads them but cannot change the cache through them.
 */
async function ownTree(path: string, uid: number): Promise<void> {
  const info = await lstat(path);
  if (info.isFile() && info.nlink > 1) return;
  await lchown(path, uid, uid);
  if (!info.isDirectory()) return;
  for (const entry of await readdir(path)) await ownTree(join(path, entry), uid);
}

/**
 * Ends every process of the run user and removes what it left in the
 * shared temporary directories. `kill -KILL -1`, sent as the user, reaches
 * every process the user has, however it detached, and not the sender; it
 * is repeated until none is left, so a process forking as it dies goes too.
 */
export async function endRunUser(uid: number): Promise<{ killed: number }> {
  let killed = 0;
  for (let round = 0; round < 50; round++) {
    const left = (await processes()).filter((p) => p.uid === uid);
    if (left.length === 0) break;
    killed = Math.max(killed, left.length);
    await new Promise<void>((resolve) => {
      const killer = spawn(
        'bash',
        ['--noprofile', '--norc', '-c', 'kill -KILL -1 2>/dev/null; exit 0'],
        {
          uid,
          gid: uid,
          stdio: 'ignore',
          env: {},
        },
      );
      killer.once('error', () => resolve());
      killer.once('close', () => resolve());
    });
    if (round > 0) await new Promise((resolve) => setTimeout(resolve, 20));
  }
  for (const directory of SHARED_TEMP_DIRECTORIES) {
    let entries: string[];
    try {
      entries = await readdir(directory);
    } catch {
      continue;
    }
    for (const entry of entries) {
      const path = join(directory, entry);
      const info = await lstat(path).catch(() => undefined);
      if (info?.uid === uid) await rm(path, { recursive: true, force: true });
    }
  }
  return { killed };
}

/** The running processes and their uids, from /proc. */
async function processes(): Promise<{ pid: number; uid: number }[]> {
  let entries: string[];
  try {
    entries = await readdir('/proc');
  } catch {
    return [];
  }
  const found: { pid: number; uid: number }[] = [];
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    const info = await stat(join('/proc', entry)).catch(() => undefined);
    if (info) found.push({ pid: Number(entry), uid: info.uid });
  }
  return found;
}
