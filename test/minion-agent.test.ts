/**
 * The minion agent against a Tower listening on a real port, checking out
 * real commits of the GitHub simulator through the GitHub adapter (an
 * installation token and the repository's clone URL), running real commands.
 */
import {
  chmod,
  mkdtemp,
  readdir,
  readFile,
  rm,
  stat,
  symlink,
  mkdir,
  writeFile,
} from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { serve, type ServerType } from '@hono/node-server';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { installations, repositories } from '../src/db/schema.js';
import { createGitHubRepositoryAccess } from '../src/github/repository-access.js';
import { GRAPH_SPEC_VERSION, type GraphSpec, type JobSpec } from '../src/lib/graph-spec.js';
import { createLogger } from '../src/lib/logger.js';
import { createTower, type Tower } from '../src/main.js';
import { AgentError, createMinionAgent, type MinionAgent } from '../src/minions/agent.js';
import { createFileArtifactStore } from '../src/minions/artifact-store.js';
import { contentTypeOf, matchArtifacts } from '../src/minions/workspace.js';
import { canSwitchUsers, runUid, type Isolation } from '../src/minions/isolation.js';
import { inProcessConfig } from './support/config.js';
import { backends, type TestDatabase } from './support/databases.js';
import { job } from './support/graph-specs.js';
import { startSandbox, type Sandbox } from './support/sandbox.js';

const TOKEN = 'registration-token-0123456789';
const LOG_MAX_BYTES = 1024 * 1024;
const logger = createLogger({ level: 'silent' });

type GraphBody = {
  graph: { state: string; result: string | null };
  jobs: {
    label: string;
    state: string;
    result: string | null;
    reason: string | null;
    retriesUsed: number;
    runs: {
      id: number;
      state: string;
      result: string | null;
      reason: string | null;
      exitCode: number | null;
    }[];
  }[];
};

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, ms = 20_000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe.each(backends())('minion agent on $name', (backend) => {
  let database: TestDatabase;
  let sandbox: Sandbox;
  let tower: Tower;
  let server: ServerType;
  let url: string;
  let sha: string;
  let scratch: string;
  const agents: MinionAgent[] = [];
  let events = 0;
  let tagCounter = 0;

  beforeAll(async () => {
    database = await backend.open();
    scratch = await mkdtemp(join(tmpdir(), 'tower-agent-'));
    // Run users (src/minions/isolation.ts) reach their run directories through it.
    await chmod(scratch, 0o711);
    sandbox = await startSandbox({
      files: {
        VERSION: '1.2.3\n',
        'scripts/build.sh':
          'mkdir -p dist/sub\necho "built $(cat VERSION)" > dist/out.txt\necho "{}" > dist/sub/meta.json\necho build done\n',
      },
    });
    sha = await sandbox.sim.push(sandbox.repository, {
      branch: 'main',
      files: { 'CHANGELOG.md': '1.2.3: first release\n' },
      message: 'Release 1.2.3',
      author: 'acme-admin',
    });
    const late: { app?: Tower['app'] } = {};
    server = await new Promise<ServerType>((resolve) => {
      const s = serve(
        { fetch: (request) => late.app!.fetch(request), hostname: '127.0.0.1', port: 0 },
        () => resolve(s),
      );
    });
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    tower = await createTower({
      config: {
        ...inProcessConfig(undefined),
        minionTokens: { trusted: TOKEN },
        publicUrl: url,
        // Small, so that a job reaches it in a test (`cuts a log at the cap`).
        logMaxBytes: LOG_MAX_BYTES,
      },
      logger,
      database,
      artifacts: createFileArtifactStore(join(scratch, 'artifacts')),
      repositories: createGitHubRepositoryAccess({
        appId: sandbox.app.id,
        privateKey: sandbox.privateKey,
        baseUrl: sandbox.apiUrl,
        locate: async (id) =>
          id === sandbox.repository.id
            ? { fullName: sandbox.repository.fullName, installationId: sandbox.installation.id }
            : undefined,
      }),
    });
    late.app = tower.app;
    await database.db.insert(installations).values({
      id: sandbox.installation.id,
      accountLogin: 'acme',
      accountId: 1,
      accountType: 'Organization',
    });
    await database.db.insert(repositories).values({
      id: sandbox.repository.id,
      installationId: sandbox.installation.id,
      fullName: sandbox.repository.fullName,
    });
  });

  afterEach(async () => {
    await Promise.all(agents.splice(0).map((agent) => agent.stop(0)));
  });

  afterAll(async () => {
    await tower?.close();
    if (server) await new Promise((resolve) => server.close(resolve));
    await sandbox?.close();
    await database.dispose();
    await rm(scratch, { recursive: true, force: true });
  });

  /** Each test's jobs get a tag of their own, so that only its agents take them. */
  function freshTag() {
    return `agent-${backend.name}-${++tagCounter}`;
  }

  async function startAgent(
    tag: string,
    options: { workdir?: string; concurrency?: number; isolation?: Isolation } = {},
  ) {
    const agent = createMinionAgent({
      server: url,
      workdir: options.workdir ?? (await mkdtemp(join(scratch, 'minion-'))),
      name: `test-${tag}`,
      register: (client) =>
        client.register(TOKEN, { name: `test-${tag}`, tags: [tag, 'linux'], trust: 'trusted' }),
      concurrency: options.concurrency ?? 1,
      logger,
      claimWaitSeconds: 1,
      ...(options.isolation ? { isolation: options.isolation } : {}),
    });
    await agent.start();
    agents.push(agent);
    return agent;
  }

  async function createGraph(name: string, jobs: JobSpec[], repositoryId = sandbox.repository.id) {
    const { events: eventsTable } = await import('../src/db/schema.js');
    const [event] = await database.db
      .insert(eventsTable)
      .values({
        repositoryId,
        type: 'push',
        dedupKey: `agent-${backend.name}-${++events}`,
        sha,
        payload: {},
      })
      .returning({ id: eventsTable.id });
    const spec: GraphSpec = {
      version: GRAPH_SPEC_VERSION,
      graph: name,
      event: { type: 'push', branch: 'main', sha, changedFiles: null },
      defines: {},
      jobs: [...jobs].sort((a, b) => (a.label < b.label ? -1 : 1)),
    };
    const { graphId } = await tower.scheduler.createGraph({
      repositoryId,
      eventId: event!.id,
      spec,
      trust: 'trusted',
    });
    return graphId;
  }

  async function graph(graphId: number): Promise<GraphBody> {
    const response = await tower.app.request(`/api/v1/graphs/${graphId}`);
    return (await response.json()) as GraphBody;
  }

  const settled = (graphId: number) =>
    waitFor(`graph ${graphId} to finish`, async () => {
      const body = await graph(graphId);
      return body.graph.state === 'done' ? body : undefined;
    });

  const text = async (path: string) => (await tower.app.request(path)).text();

  it('runs a graph with dependencies, chunks and artifacts; downstream jobs read upstream manifests', async () => {
    const tag = freshTag();
    const readUpstream = `node --input-type=module -e '
      import { readFileSync } from "node:fs";
      const manifests = JSON.parse(readFileSync(process.env.TOWER_UPSTREAM_MANIFESTS, "utf8"));
      const entry = manifests.build.artifacts.find((a) => a.name === "dist/out.txt");
      const body = await (await fetch(entry.url)).text();
      console.log("chunk " + process.env.TOWER_CHUNK + "/" + process.env.TOWER_CHUNKS + " read: " + body.trim());
    '`;
    const graphId = await createGraph('ci', [
      job('build', { requires: [tag], command: 'bash scripts/build.sh', artifacts: ['dist/**'] }),
      job('test/1', {
        requires: [tag],
        command: readUpstream,
        dependencies: [{ job: 'build', results: ['success', 'warning'] }],
        chunk: { index: 1, count: 2 },
      }),
      job('test/2', {
        requires: [tag],
        command: readUpstream,
        dependencies: [{ job: 'build', results: ['success', 'warning'] }],
        chunk: { index: 2, count: 2 },
      }),
    ]);
    await startAgent(tag);
    await startAgent(tag);
    const done = await settled(graphId);
    expect(done.graph.result).toBe('success');
    const byLabel = new Map(done.jobs.map((j) => [j.label, j]));
    const buildRun = byLabel.get('build')!.runs[0]!;
    expect(buildRun).toMatchObject({ result: 'success', exitCode: 0 });
    const manifest = (await (
      await tower.app.request(`/api/v1/runs/${buildRun.id}/manifest`)
    ).json()) as {
      version: number;
      artifacts: { name: string; size: number; sha256: string; contentType: string }[];
    };
    expect(manifest.version).toBe(1);
    expect(manifest.artifacts.map((a) => [a.name, a.contentType])).toEqual([
      ['dist/out.txt', 'text/plain; charset=utf-8'],
      ['dist/sub/meta.json', 'application/json'],
    ]);
    expect(await text(`/api/v1/runs/${buildRun.id}/artifacts/dist/out.txt`)).toBe('built 1.2.3\n');
    const buildLog = await text(`/api/v1/runs/${buildRun.id}/log`);
    expect(buildLog).toContain(`checked out ${sha}`);
    expect(buildLog).toContain('build done');
    expect(buildLog).toContain('uploaded dist/out.txt');
    for (const chunk of [1, 2]) {
      const run = byLabel.get(`test/${chunk}`)!.runs[0]!;
      expect(await text(`/api/v1/runs/${run.id}/log`)).toContain(
        `chunk ${chunk}/2 read: built 1.2.3`,
      );
    }
  });

  it('cuts a log at the cap, ends it with a note saying so, and still reports the run', async () => {
    const tag = freshTag();
    // Three times the cap, then a line that must not reach the log.
    const graphId = await createGraph('chatty', [
      job('chatty', {
        requires: [tag],
        command: 'head -c 3145728 /dev/zero | tr "\\0" x; echo; echo after the cap',
      }),
    ]);
    await startAgent(tag);
    const done = await settled(graphId);
    expect(done.jobs[0]).toMatchObject({ result: 'success' });
    const log = await text(`/api/v1/runs/${done.jobs[0]!.runs[0]!.id}/log`);
    expect(Buffer.byteLength(log)).toBeLessThanOrEqual(LOG_MAX_BYTES);
    expect(log).toMatch(
      /\[tower\] log truncated at \d+ bytes: the rest of the output was dropped\n$/,
    );
    expect(log.match(/log truncated/g)).toHaveLength(1);
    expect(log).not.toContain('after the cap');
  });

  it('reports a failing command with its exit code, and runs in a clean environment', async () => {
    const tag = freshTag();
    process.env.TOWER_AGENT_TEST_SECRET = 'leaked';
    try {
      const graphId = await createGraph('fail', [
        job('broken', {
          requires: [tag],
          env: { GREETING: 'hello' },
          command:
            'echo "greeting=$GREETING secret=${TOWER_AGENT_TEST_SECRET:-none} job=$TOWER_JOB"; test -f VERSION; exit 3',
        }),
      ]);
      await startAgent(tag);
      const done = await settled(graphId);
      const broken = done.jobs[0]!;
      expect(broken).toMatchObject({ state: 'done', result: 'failure' });
      expect(broken.runs[0]).toMatchObject({ result: 'failure', exitCode: 3 });
      expect(await text(`/api/v1/runs/${broken.runs[0]!.id}/log`)).toContain(
        'greeting=hello secret=none job=broken',
      );
    } finally {
      delete process.env.TOWER_AGENT_TEST_SECRET;
    }
  });

  /**
   * The attack of a job from a pull request: read the server's environment
   * (the agent's parent process, where the GitHub App's key lives), the
   * minion's credential, the repository caches and another run's workspace,
   * and leave a detached process behind. Without isolation every one works.
   */
  const nosyJob = `set +e
    leaks=""
    cat /proc/$PPID/environ > /dev/null 2>&1 && leaks="$leaks environ"
    cat "$AGENT_DIR/minion.json" > /dev/null 2>&1 && leaks="$leaks credential"
    ls "$AGENT_DIR/cache" > /dev/null 2>&1 && leaks="$leaks cache"
    for other in "$AGENT_DIR"/runs/*; do
      [ "$other" != "$(dirname "$TOWER_WORKSPACE")" ] && ls "$other" > /dev/null 2>&1 && leaks="$leaks other-run"
    done
    echo "secret" > /tmp/tower-isolation-$TOWER_RUN_ID
    setsid -f sleep 300 > /dev/null 2>&1 < /dev/null
    echo "leaks:\${leaks:- none}"
    [ -z "$leaks" ]`;

  async function nosyGraph(tag: string, workdir: string) {
    return createGraph('nosy', [
      // A neighbour whose workspace the nosy job looks for while it runs.
      job('neighbour', { requires: [tag], command: 'sleep 3' }),
      job('nosy', { requires: [tag], env: { AGENT_DIR: workdir }, command: `sleep 1; ${nosyJob}` }),
    ]);
  }

  async function processesOf(uid: number): Promise<number[]> {
    const pids: number[] = [];
    for (const entry of await readdir('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      const info = await stat(join('/proc', entry)).catch(() => undefined);
      if (info?.uid === uid) pids.push(Number(entry));
    }
    return pids;
  }

  it.runIf(canSwitchUsers() || process.env.CI === 'true')(
    'runs each job as a user of its own: no server environment, credential, cache or other run to read, and nothing it started outlives it',
    async () => {
      const tag = freshTag();
      const workdir = await mkdtemp(join(scratch, 'minion-'));
      await chmod(workdir, 0o711);
      const isolation: Isolation = { kind: 'user' };
      const graphId = await nosyGraph(tag, workdir);
      await startAgent(tag, { workdir, concurrency: 2, isolation });
      const done = await settled(graphId);
      const nosy = done.jobs.find((j) => j.label === 'nosy')!;
      const log = await text(`/api/v1/runs/${nosy.runs[0]!.id}/log`);
      expect(log).toContain('leaks: none');
      expect(nosy).toMatchObject({ result: 'success' });
      expect(log).toMatch(/ended \d+ process\(es\) the job left running/);
      // Both slots' users are gone, leftovers in /tmp with them.
      for (const slot of [0, 1]) {
        expect(await processesOf(runUid(isolation, workdir, slot)!)).toEqual([]);
      }
      await expect(stat(`/tmp/tower-isolation-${nosy.runs[0]!.id}`)).rejects.toThrow();
      // The credential stays the agent's own, and the cache is closed to others.
      expect((await stat(join(workdir, 'minion.json'))).mode & 0o077).toBe(0);
      expect((await stat(join(workdir, 'cache'))).mode & 0o077).toBe(0);
    },
  );

  it('without isolation, the same job reads everything (what user isolation prevents)', async () => {
    const tag = freshTag();
    const workdir = await mkdtemp(join(scratch, 'minion-'));
    const graphId = await nosyGraph(tag, workdir);
    await startAgent(tag, { workdir, concurrency: 2, isolation: { kind: 'none' } });
    const done = await settled(graphId);
    const nosy = done.jobs.find((j) => j.label === 'nosy')!;
    const log = await text(`/api/v1/runs/${nosy.runs[0]!.id}/log`);
    expect(log).toMatch(/leaks: environ credential cache/);
    expect(nosy).toMatchObject({ result: 'failure' });
    // Left behind; this test cleans up after it.
    const leftover = await readFile(`/tmp/tower-isolation-${nosy.runs[0]!.id}`, 'utf8');
    expect(leftover).toBe('secret\n');
    await rm(`/tmp/tower-isolation-${nosy.runs[0]!.id}`, { force: true });
    await new Promise<void>((resolve) => {
      const pkill = spawn('pkill', ['-f', '^sleep 300$']);
      pkill.once('close', () => resolve());
    });
  });

  it('stops a command at its max runtime and after its idle timeout', async () => {
    const tag = freshTag();
    const graphId = await createGraph('timeouts', [
      job('slow', {
        requires: [tag],
        maxRuntime: 2,
        command: 'while true; do echo tick; sleep 0.2; done',
      }),
      job('quiet', { requires: [tag], idleTimeout: 1, command: 'echo start; sleep 60' }),
    ]);
    await startAgent(tag, { concurrency: 2 });
    const done = await settled(graphId);
    const byLabel = new Map(done.jobs.map((j) => [j.label, j]));
    expect(byLabel.get('slow')).toMatchObject({ result: 'timed-out', reason: 'max-runtime' });
    expect(byLabel.get('quiet')).toMatchObject({ result: 'timed-out', reason: 'idle-timeout' });
    const quietLog = await text(`/api/v1/runs/${byLabel.get('quiet')!.runs[0]!.id}/log`);
    expect(quietLog).toContain('no output for 1 s: stopped (idle timeout)');
  });

  it('hands running work back as minion-shutdown, and a retry runs on another minion', async () => {
    const tag = freshTag();
    const graphId = await createGraph('shutdown', [
      job('long', {
        requires: [tag],
        retries: 1,
        command:
          'if [ "$TOWER_ATTEMPT" = 1 ]; then echo first; sleep 60; fi; echo "attempt $TOWER_ATTEMPT"',
      }),
    ]);
    const first = await startAgent(tag);
    // Handed back while its command runs, not before it started.
    await waitFor('the first run to print', async () => {
      const run = (await graph(graphId)).jobs[0]!.runs[0];
      return run && (await text(`/api/v1/runs/${run.id}/log`)).includes('first') ? true : undefined;
    });
    await first.stop(0);
    const afterStop = await graph(graphId);
    expect(afterStop.jobs[0]!.runs[0]).toMatchObject({
      result: 'exception',
      reason: 'minion-shutdown',
    });
    await startAgent(tag);
    const done = await settled(graphId);
    expect(done.jobs[0]).toMatchObject({ result: 'success', retriesUsed: 1 });
    expect(done.jobs[0]!.runs.map((run) => run.result)).toEqual(['exception', 'success']);
  });

  it('lets running work finish within the shutdown grace', async () => {
    const tag = freshTag();
    const graphId = await createGraph('grace', [
      job('short', { requires: [tag], command: 'sleep 1; echo finished' }),
    ]);
    const agent = await startAgent(tag);
    await waitFor('the run', async () => (agent.running.length > 0 ? true : undefined));
    await agent.stop(30_000);
    const done = await graph(graphId);
    expect(done.jobs[0]).toMatchObject({ state: 'done', result: 'success' });
  });

  it('abandons a run that is no longer its own, without reporting it', async () => {
    const tag = freshTag();
    const graphId = await createGraph('lost', [
      job('chatty', { requires: [tag], command: 'while true; do echo line; sleep 0.1; done' }),
    ]);
    const agent = await startAgent(tag);
    await waitFor('the run', async () => (agent.running.length > 0 ? true : undefined));
    const chatty = await jobId(graphId, 'chatty');
    expect(await tower.scheduler.cancel({ graphId, jobId: chatty })).toMatchObject({ ok: true });
    await waitFor('the agent to let go', async () =>
      agent.running.length === 0 ? true : undefined,
    );
    const done = await graph(graphId);
    expect(done.jobs[0]).toMatchObject({ result: 'cancelled', reason: 'user-cancel' });
    expect(done.jobs[0]!.runs[0]).toMatchObject({ result: 'cancelled', exitCode: null });
  });

  async function jobId(graphId: number, label: string): Promise<number> {
    const status = await tower.scheduler.graphStatus({ graphId });
    return status!.jobs.find((j) => j.label === label)!.id;
  }

  it('keeps its identity in the work directory, and refuses a second agent there', async () => {
    const tag = freshTag();
    const workdir = await mkdtemp(join(scratch, 'minion-'));
    const first = await startAgent(tag, { workdir });
    const id = first.minionId;
    const second = createMinionAgent({
      server: url,
      workdir,
      name: 'second',
      register: () => {
        throw new Error('must not register');
      },
      concurrency: 1,
      logger,
    });
    await expect(second.start()).rejects.toThrow(AgentError);
    await first.stop(0);
    agents.splice(agents.indexOf(first), 1);
    const again = createMinionAgent({
      server: url,
      workdir,
      name: 'again',
      register: () => {
        throw new Error('must not register again');
      },
      concurrency: 1,
      logger,
      claimWaitSeconds: 1,
    });
    await again.start();
    agents.push(again);
    expect(again.minionId).toBe(id);
  });

  it('ends a run as an exception, with the cause in its log, when the repository cannot be fetched', async () => {
    const tag = freshTag();
    // A repository Tower knows but the adapter cannot locate: the claim carries no checkout.
    await database.db.insert(repositories).values({
      id: 999_000 + tagCounter,
      installationId: sandbox.installation.id,
      fullName: 'acme/gone',
    });
    const graphId = await createGraph(
      'no-source',
      [job('build', { requires: [tag], command: 'true' })],
      999_000 + tagCounter,
    );
    await startAgent(tag);
    const done = await settled(graphId);
    expect(done.jobs[0]).toMatchObject({ result: 'exception' });
    expect(await text(`/api/v1/runs/${done.jobs[0]!.runs[0]!.id}/log`)).toContain(
      'Tower gave no way to fetch repository',
    );
  });
});

describe('artifact matching', () => {
  it('walks only what the globs reach, never .git or through symbolic links, sorted', async () => {
    const root = await mkdtemp(join(tmpdir(), 'tower-match-'));
    try {
      await mkdir(join(root, 'dist/deep'), { recursive: true });
      await mkdir(join(root, '.git'), { recursive: true });
      await writeFile(join(root, 'dist/b.txt'), 'b');
      await writeFile(join(root, 'dist/deep/a.js'), 'a');
      await writeFile(join(root, '.git/config'), 'secret');
      await writeFile(join(root, 'report.xml'), '<r/>');
      await symlink('/etc/passwd', join(root, 'dist/passwd'));
      const found = await matchArtifacts(root, ['dist/**', '**/*.xml', 'missing/**', '.git/**']);
      expect(found.map((f) => [f.name, f.size, f.contentType])).toEqual([
        ['dist/b.txt', 1, 'text/plain; charset=utf-8'],
        ['dist/deep/a.js', 1, 'text/javascript'],
        ['report.xml', 4, 'application/xml'],
      ]);
      expect(contentTypeOf('x.bin')).toBe('application/octet-stream');
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});
