/**
 * The minion agent (`tower minion`, and the minion `npm start` embeds): it
 * claims runs from a Tower server, checks out the commit, runs the job's
 * command in a clean workspace, streams its output, enforces the job's max
 * runtime and idle timeout, uploads the artifacts its globs match, and
 * reports. It holds no state the server needs: a run it loses (the server
 * answers 409, or its lease lapsed) is abandoned without a report, and one
 * it cannot finish before shutting down is handed back as `minion-shutdown`.
 *
 * Layout of the work directory:
 *   minion.json      the minion's id and credential (mode 0600)
 *   agent.pid        one agent per work directory
 *   cache/<repo>.git the per-repository object cache checkouts borrow from
 *   home/            HOME of every command without isolation: tool caches survive between runs
 *   runs/<run>/      one run's workspace: checkout/, tmp/, upstream.json, and with
 *                    user isolation home/; the run user's own (src/minions/isolation.ts)
 */
import { spawn } from 'node:child_process';
import { chmod, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import { z } from 'zod';
import { TowerError, errorMessage } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';
import {
  MinionApiError,
  createMinionClient,
  type ClaimedRunBody,
  type MinionClient,
  type Report,
} from './agent-client.js';
import {
  availableIsolation,
  checkIsolation,
  endRunUser,
  giveToRunUser,
  runUid,
  type Isolation,
} from './isolation.js';
import { logTruncatedNote } from './schemas.js';
import { createCheckouts, matchArtifacts, type Checkouts } from './workspace.js';

export type Registration = { minionId: number; credential: string };

export type AgentOptions = {
  /** The Tower server's base URL. */
  server: string;
  workdir: string;
  name: string;
  /** How to get a credential when the work directory holds none for this server. */
  register: (client: MinionClient) => Promise<Registration>;
  /** Runs at once; each slot claims and runs one job at a time. */
  concurrency: number;
  logger: Logger;
  /** How long a claim waits for work (the server allows up to 20 s). */
  claimWaitSeconds?: number;
  /** Keep each run's workspace after it ends (for debugging). */
  keepWorkspaces?: boolean;
  /**
   * How jobs are kept from the agent and from each other; by default each
   * slot's own user where the agent can switch users (root), else none.
   */
  isolation?: Isolation;
  fetch?: typeof fetch;
};

/** The agent cannot go on: a refused credential, a work directory in use. */
export class AgentError extends TowerError {
  override readonly name = 'AgentError';
}

const StoredIdentity = z.object({
  server: z.string(),
  minionId: z.number(),
  credential: z.string(),
});

/** Output is sent in chunks of at most this many characters, at least this often. */
const LOG_CHUNK_CHARS = 256 * 1024;
const LOG_FLUSH_MS = 250;
/** A command told to stop gets this long before it is killed. */
const KILL_GRACE_MS = 5000;

type Outcome = Report & { note: string };

type ActiveRun = {
  runId: number;
  /** Set when the agent hands the run back on shutdown. */
  handBack: AbortController;
  done: Promise<void>;
};

export function createMinionAgent(options: AgentOptions) {
  const { logger } = options;
  const client = createMinionClient({
    server: options.server,
    ...(options.fetch ? { fetch: options.fetch } : {}),
    onRetry: (path, attempt, problem) =>
      logger.warn({ path, attempt, problem }, 'Tower server unreachable; retrying'),
  });
  const checkouts: Checkouts = createCheckouts(join(options.workdir, 'cache'));
  const home = join(options.workdir, 'home');
  const isolation = options.isolation ?? availableIsolation();
  const claiming = new AbortController();
  const active = new Map<number, ActiveRun>();
  let minionId = 0;
  let slots: Promise<void>[] = [];
  let fatal: Error | undefined;
  let stopping = false;
  let stopped: (() => void) | undefined;
  const finished = new Promise<void>((resolve) => (stopped = resolve));

  async function identify(): Promise<void> {
    const file = join(options.workdir, 'minion.json');
    let stored: z.infer<typeof StoredIdentity> | undefined;
    try {
      stored = StoredIdentity.parse(JSON.parse(await readFile(file, 'utf8')));
    } catch {
      stored = undefined;
    }
    if (stored && stored.server === options.server) {
      minionId = stored.minionId;
      client.useCredential(stored.credential);
      return;
    }
    const registered = await options.register(client);
    minionId = registered.minionId;
    client.useCredential(registered.credential);
    await writeFile(
      file,
      JSON.stringify({ server: options.server, ...registered }, null, 2) + '\n',
      { mode: 0o600 },
    );
    logger.info({ minionId, server: options.server }, 'minion registered');
  }

  /**
   * One agent per work directory: two would share workspaces and a
   * credential. The lock file names the holder's pid; a holder that is gone
   * left a stale lock, which is taken over.
   */
  const lockFile = join(options.workdir, 'agent.pid');
  async function lockWorkdir(): Promise<void> {
    for (;;) {
      try {
        await writeFile(lockFile, `${process.pid}\n`, { flag: 'wx' });
        return;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      }
      const holder = Number((await readFile(lockFile, 'utf8').catch(() => '')).trim());
      if (Number.isInteger(holder) && holder > 0 && isAlive(holder)) {
        throw new AgentError(
          `Work directory ${options.workdir} is in use by another minion agent (pid ${holder}); ` +
            `if there is none, delete ${lockFile}`,
        );
      }
      await rm(lockFile, { force: true });
    }
  }

  async function slot(index: number): Promise<void> {
    while (!stopping) {
      let run: ClaimedRunBody | undefined;
      try {
        run = await client.claim(options.claimWaitSeconds ?? 20, claiming.signal);
      } catch (error) {
        if (stopping) return;
        if (error instanceof MinionApiError && error.status === 401) {
          fatal = new AgentError(
            `Tower refused this minion's credential (${error.message}); ` +
              `delete ${join(options.workdir, 'minion.json')} to register again`,
          );
          void stop();
          return;
        }
        const quarantined = error instanceof MinionApiError && error.status === 403;
        logger.error(
          { err: error, slot: index },
          quarantined ? 'minion refused work' : 'claim failed',
        );
        await sleep(quarantined ? 30_000 : 5000, claiming.signal);
        continue;
      }
      if (!run) continue;
      const handBack = new AbortController();
      // Claimed as the agent began to stop: handed straight back, not run.
      if (stopping) handBack.abort();
      const entry: ActiveRun = { runId: run.runId, handBack, done: Promise.resolve() };
      entry.done = execute(run, handBack.signal, runUid(isolation, options.workdir, index));
      active.set(run.runId, entry);
      await entry.done;
      active.delete(run.runId);
    }
  }

  /** Runs one claimed run; `uid`: the run user, under user isolation. */
  async function execute(
    run: ClaimedRunBody,
    handBack: AbortSignal,
    uid: number | undefined,
  ): Promise<void> {
    const claimedAt = Date.now();
    const runDir = join(options.workdir, 'runs', String(run.runId));
    const lost = new AbortController();
    const log = createLogStream(client, run.runId, () => lost.abort());
    const say = (line: string) => log.write(`[tower] ${line}\n`);
    const beat = setInterval(
      () => {
        client.heartbeat(run.runId, run.leaseSeconds).then(
          (answer) => {
            if (answer === 'stop') lost.abort();
          },
          (error: unknown) => logger.warn({ err: error, runId: run.runId }, 'heartbeat failed'),
        );
      },
      Math.max(1000, Math.min((run.leaseSeconds * 1000) / 3, 30_000)),
    );
    const context = { runId: run.runId, job: run.label, attempt: run.attempt };
    logger.info(context, 'run started');
    let outcome: Outcome;
    try {
      await rm(runDir, { recursive: true, force: true });
      await mkdir(join(runDir, 'tmp'), { recursive: true });
      // A run user gets a home of its own: nothing one job leaves there reaches the next.
      const runHome = uid === undefined ? home : join(runDir, 'home');
      await mkdir(runHome, { recursive: true });
      say(
        `minion ${options.name} (#${minionId}) runs ${run.label}, attempt ${run.attempt}, ` +
          `commit ${run.sha}`,
      );
      const workspace = join(runDir, 'checkout');
      if (run.checkout === null) {
        throw new AgentError(
          `Tower gave no way to fetch repository ${run.repositoryId}: is its GitHub App configured?`,
        );
      }
      await checkouts.checkout({
        repositoryId: run.repositoryId,
        source: { url: run.checkout.url, token: run.checkout.token },
        sha: run.sha,
        into: workspace,
        borrow: uid === undefined,
      });
      say(`checked out ${run.sha}`);
      const manifests: Record<string, unknown> = {};
      for (const upstream of run.upstream) {
        manifests[upstream.label] = await client.manifest(upstream.manifestUrl);
      }
      const upstreamFile = join(runDir, 'upstream.json');
      await writeFile(upstreamFile, JSON.stringify(manifests, null, 2) + '\n');
      if (uid !== undefined) await giveToRunUser(runDir, uid);
      if (run.job.command === null) throw new AgentError(`Job ${run.label} has no command`);
      if (handBack.aborted) throw new AgentError('handed back before its command started');
      outcome = await runCommand({
        command: run.job.command,
        cwd: workspace,
        uid,
        env: commandEnv(run, {
          workspace,
          runDir,
          upstreamFile,
          home: runHome,
          server: options.server,
        }),
        output: (text) => log.write(text),
        maxRuntimeMs: run.job.maxRuntime === null ? null : run.job.maxRuntime * 1000,
        idleTimeoutMs: run.job.idleTimeout === null ? null : run.job.idleTimeout * 1000,
        claimedAt,
        stop: [lost.signal, handBack],
      });
      say(outcome.note);
      if (!lost.signal.aborted && !handBack.aborted && run.job.artifacts.length > 0) {
        await uploadArtifacts(run, workspace, say, lost);
      }
    } catch (error) {
      const note = error instanceof TowerError ? error.message : errorMessage(error);
      outcome = handBack.aborted
        ? { result: 'exception', reason: 'minion-shutdown', note: 'handed back: minion shutdown' }
        : { result: 'exception', note };
      say(`error: ${note}`);
      logger.warn({ ...context, err: error }, 'run failed before its command finished');
    }

    try {
      // Heartbeats go on until the report is in: a report held up by an outage keeps the lease.
      await log.close();
      if (lost.signal.aborted) {
        logger.warn(context, "run is no longer this minion's; abandoned without a report");
      } else {
        const { note: _note, ...report } = outcome;
        const answer = await client.report(run.runId, report);
        logger.info({ ...context, ...report, taken: answer === 'ok' }, 'run reported');
      }
    } catch (error) {
      logger.error({ ...context, err: error }, 'report failed; the lease will lapse');
    } finally {
      clearInterval(beat);
      if (!options.keepWorkspaces) await rm(runDir, { recursive: true, force: true });
    }
  }

  async function uploadArtifacts(
    run: ClaimedRunBody,
    workspace: string,
    say: (line: string) => void,
    lost: AbortController,
  ): Promise<void> {
    const files = await matchArtifacts(workspace, run.job.artifacts);
    if (files.length === 0)
      say(`no files match the artifact globs ${run.job.artifacts.join(', ')}`);
    for (const file of files) {
      const answer = await client.putArtifact(run.runId, file.name, file);
      if (answer === 'stop') {
        lost.abort();
        return;
      }
      say(`uploaded ${file.name} (${file.size} bytes)`);
    }
  }

  async function stop(graceMs = 0): Promise<void> {
    if (!stopping) {
      stopping = true;
      claiming.abort();
      if (active.size > 0) {
        logger.info({ runs: active.size, graceMs }, 'finishing running jobs before stopping');
        const all = Promise.all([...active.values()].map((run) => run.done));
        const timedOut = await Promise.race([
          all.then(() => false),
          sleep(graceMs).then(() => true),
        ]);
        if (timedOut) for (const run of active.values()) run.handBack.abort();
      }
      await Promise.all(slots);
      await rm(lockFile, { force: true });
      stopped?.();
    }
    await finished;
  }

  return {
    /** Registers (or reads the stored credential) and starts claiming. */
    async start(): Promise<void> {
      await mkdir(options.workdir, { recursive: true });
      await checkIsolation(isolation, options.concurrency, options.workdir);
      if (isolation.kind === 'user') {
        // Run users pass through to their run directories; the rest stays the agent's.
        await chmod(options.workdir, 0o711);
        for (const dir of ['cache', 'home']) {
          await mkdir(join(options.workdir, dir), { recursive: true, mode: 0o700 });
          await chmod(join(options.workdir, dir), 0o700);
        }
        await mkdir(join(options.workdir, 'runs'), { recursive: true });
        await chmod(join(options.workdir, 'runs'), 0o711);
      }
      await lockWorkdir();
      try {
        await identify();
      } catch (error) {
        await rm(lockFile, { force: true });
        throw error;
      }
      slots = Array.from({ length: options.concurrency }, (_, i) => slot(i));
      logger.info(
        { minionId, server: options.server, concurrency: options.concurrency },
        'minion agent claiming work',
      );
    },
    /**
     * Stops claiming; running jobs get `graceMs` to finish, then are killed
     * and handed back as `minion-shutdown`. A second call with a shorter
     * grace hands them back sooner.
     */
    async stop(graceMs = 0): Promise<void> {
      if (stopping) {
        for (const run of active.values()) run.handBack.abort();
      }
      await stop(graceMs);
    },
    /** Resolves when the agent has stopped; rejects with why, if it had to. */
    async stopped(): Promise<void> {
      await finished;
      if (fatal) throw fatal;
    },
    get minionId() {
      return minionId;
    },
    get running() {
      return [...active.keys()];
    },
  };
}

export type MinionAgent = ReturnType<typeof createMinionAgent>;

function commandEnv(
  run: ClaimedRunBody,
  paths: { workspace: string; runDir: string; upstreamFile: string; home: string; server: string },
): NodeJS.ProcessEnv {
  const chunk =
    run.job.chunk && typeof run.job.chunk === 'object' && 'index' in run.job.chunk
      ? (run.job.chunk as { index: number; count: number })
      : undefined;
  return {
    // Only what a build needs from the host: the rest of the agent's environment stays out.
    PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin',
    LANG: process.env.LANG ?? 'C.UTF-8',
    HOME: paths.home,
    TMPDIR: join(paths.runDir, 'tmp'),
    CI: 'true',
    ...run.job.env,
    TOWER: 'true',
    TOWER_SERVER: paths.server,
    TOWER_RUN_ID: String(run.runId),
    TOWER_JOB_ID: String(run.jobId),
    TOWER_GRAPH_ID: String(run.graphId),
    TOWER_JOB: run.label,
    TOWER_ATTEMPT: String(run.attempt),
    TOWER_SHA: run.sha,
    TOWER_REPOSITORY_ID: String(run.repositoryId),
    TOWER_WORKSPACE: paths.workspace,
    // Reads this graph's manifests and artifacts while the run runs (`Authorization: Bearer`).
    TOWER_RUN_TOKEN: run.readToken,
    TOWER_UPSTREAM_MANIFESTS: paths.upstreamFile,
    ...(chunk ? { TOWER_CHUNK: String(chunk.index), TOWER_CHUNKS: String(chunk.count) } : {}),
  };
}

/**
 * Runs the command in its own process group under bash (`-e -o pipefail`),
 * and ends it, group and all, at its max runtime (counted from the claim,
 * as the server counts it), after its idle timeout without output, or when
 * told to stop. With a run user (`uid`), the command runs as that user and
 * every process of the user is ended before this resolves, however it
 * detached: what follows (artifacts) sees a workspace nothing changes.
 */
function runCommand(input: {
  command: string;
  cwd: string;
  uid: number | undefined;
  env: NodeJS.ProcessEnv;
  output: (text: string) => void;
  maxRuntimeMs: number | null;
  idleTimeoutMs: number | null;
  claimedAt: number;
  stop: AbortSignal[];
}): Promise<Outcome> {
  return new Promise((resolve) => {
    const child = spawn(
      'bash',
      ['--noprofile', '--norc', '-e', '-o', 'pipefail', '-c', input.command],
      {
        cwd: input.cwd,
        env: input.env,
        detached: true,
        stdio: ['ignore', 'pipe', 'pipe'],
        ...(input.uid === undefined ? {} : { uid: input.uid, gid: input.uid }),
      },
    );
    let cleanup: Promise<void> = Promise.resolve();
    let ended: Outcome | undefined;
    let killTimer: NodeJS.Timeout | undefined;
    const group = (signal: NodeJS.Signals) => {
      try {
        if (child.pid !== undefined) process.kill(-child.pid, signal);
      } catch {
        // the group is gone already
      }
    };
    const end = (outcome: Outcome) => {
      if (ended) return;
      ended = outcome;
      group('SIGTERM');
      killTimer = setTimeout(() => group('SIGKILL'), KILL_GRACE_MS);
    };
    let idleTimer: NodeJS.Timeout | undefined;
    const idle = () => {
      if (input.idleTimeoutMs === null) return;
      clearTimeout(idleTimer);
      const ms = input.idleTimeoutMs;
      idleTimer = setTimeout(
        () =>
          end({
            result: 'timed-out',
            reason: 'idle-timeout',
            note: `no output for ${ms / 1000} s: stopped (idle timeout)`,
          }),
        ms,
      );
    };
    idle();
    const runtimeTimer =
      input.maxRuntimeMs === null
        ? undefined
        : setTimeout(
            () =>
              end({
                result: 'timed-out',
                reason: 'max-runtime',
                note: `ran longer than ${input.maxRuntimeMs! / 1000} s: stopped (max runtime)`,
              }),
            Math.max(0, input.claimedAt + input.maxRuntimeMs - Date.now()),
          );
    const onStop = () =>
      end({ result: 'exception', reason: 'minion-shutdown', note: 'stopped: handed back' });
    for (const signal of input.stop) signal.addEventListener('abort', onStop);
    if (input.stop.some((signal) => signal.aborted)) onStop();
    for (const stream of [child.stdout, child.stderr]) {
      const decoder = new StringDecoder('utf8');
      stream.on('data', (chunk: Buffer) => {
        input.output(decoder.write(chunk));
        idle();
      });
      stream.on('end', () => {
        const rest = decoder.end();
        if (rest) input.output(rest);
      });
    }
    child.once('error', (error) =>
      end({ result: 'exception', note: `could not start bash: ${error.message}` }),
    );
    child.once('exit', () => {
      // Whatever the command left running in its group ends with it: the next run starts clean.
      group('SIGKILL');
      if (input.uid !== undefined) {
        cleanup = endRunUser(input.uid).then(
          ({ killed }) => {
            if (killed > 0)
              input.output(`[tower] ended ${killed} process(es) the job left running\n`);
          },
          (error: unknown) =>
            input.output(`[tower] could not end the job's processes: ${errorMessage(error)}\n`),
        );
      } else {
        // A process that left the group keeps the output open: stop reading after a grace.
        setTimeout(() => {
          child.stdout?.destroy();
          child.stderr?.destroy();
        }, KILL_GRACE_MS).unref();
      }
    });
    child.once('close', (code, signal) => void cleanup.then(() => closed(code, signal)));
    const closed = (code: number | null, signal: NodeJS.Signals | null) => {
      clearTimeout(idleTimer);
      clearTimeout(runtimeTimer);
      clearTimeout(killTimer);
      for (const s of input.stop) s.removeEventListener('abort', onStop);
      if (ended) {
        resolve({ ...ended, ...(code === null ? {} : { exitCode: code }) });
      } else if (code === 0) {
        resolve({ result: 'success', exitCode: 0, note: 'command exited 0' });
      } else if (code !== null) {
        resolve({ result: 'failure', exitCode: code, note: `command exited ${code}` });
      } else {
        resolve({ result: 'failure', note: `command was killed by ${signal ?? 'a signal'}` });
      }
    };
  });
}

/**
 * The run's log as numbered chunks, sent one at a time in order. A chunk
 * the server refuses with 409 means the run is lost; with 413, the log is
 * at its cap: the rest of the output is dropped, and the log ends with a
 * note saying so (the server keeps room for it).
 */
function createLogStream(client: MinionClient, runId: number, onLost: () => void) {
  let buffer = '';
  let seq = 0;
  let sending: Promise<void> = Promise.resolve();
  let lost = false;
  let full = false;
  /** Bytes of log the server took. */
  let taken = 0;
  let timer: NodeJS.Timeout | undefined;

  async function send(mine: number, data: string): Promise<void> {
    if ((await client.appendLog(runId, mine, data)) === 'stop') {
      lost = true;
      onLost();
    } else {
      taken += Buffer.byteLength(data, 'utf8');
    }
  }

  function flush(): Promise<void> {
    clearTimeout(timer);
    timer = undefined;
    while (buffer.length > 0) {
      const data = buffer.slice(0, LOG_CHUNK_CHARS);
      buffer = buffer.slice(LOG_CHUNK_CHARS);
      const mine = seq++;
      sending = sending.then(async () => {
        if (lost || full) return;
        try {
          await send(mine, data);
        } catch (error) {
          // Otherwise the server stayed unreachable past the retries: this part of the log is lost.
          if (!(error instanceof MinionApiError && error.status === 413)) return;
          full = true;
          buffer = '';
          // The refused chunk's number is free, and the note fits the room kept below the cap.
          await send(mine, logTruncatedNote(taken)).catch(() => undefined);
        }
      });
    }
    return sending;
  }

  return {
    write(text: string) {
      if (text.length === 0 || full) return;
      buffer += text;
      if (buffer.length >= LOG_CHUNK_CHARS) void flush();
      else timer ??= setTimeout(() => void flush(), LOG_FLUSH_MS);
    },
    close: flush,
  };
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    timer.unref?.();
    signal?.addEventListener('abort', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/** The host's tags for a minion that was given none: its OS, its CPU, and node. */
export function hostTags(): string[] {
  const os =
    process.platform === 'darwin'
      ? 'macos'
      : process.platform === 'win32'
        ? 'windows'
        : process.platform;
  return [os, process.arch, 'node'].sort();
}
