import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { freePort } from './support/postgres-server.js';
import { baseEnv, runTower, type TowerProcess } from './support/processes.js';

let sandbox: TowerProcess | undefined;
let dataDir: string | undefined;
afterAll(async () => {
  await sandbox?.stop('SIGKILL');
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

it('`tower sandbox-github --port N` serves the API and prints a token that works', async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'tower-sandbox-cli-'));
  const port = await freePort();
  sandbox = runTower(['sandbox-github', '--port', String(port), '--data-dir', dataDir], {
    cwd: dataDir,
    env: baseEnv({}),
  });
  await expect.poll(() => sandbox!.output(), { timeout: 30_000 }).toMatch(/ghs_\w+/);
  const output = sandbox.output();
  const token = /(ghs_[A-Za-z0-9_-]{36})/.exec(output)![1]!;
  const api = `http://127.0.0.1:${port}/api/v3`;
  expect(output).toContain(`GitHub simulator listening: ${api}`);
  expect(output).toContain('demo-org/demo');

  const headers = { authorization: `token ${token}`, 'content-type': 'application/json' };
  const repo = await fetch(`${api}/repos/demo-org/demo`, { headers });
  expect(repo.status).toBe(200);
  const { default_branch } = (await repo.json()) as { default_branch: string };
  const ref = (await (
    await fetch(`${api}/repos/demo-org/demo/git/ref/heads/${default_branch}`, { headers })
  ).json()) as {
    object: { sha: string };
  };

  const invalid = await fetch(`${api}/repos/demo-org/demo/check-runs`, {
    method: 'POST',
    headers,
    body: JSON.stringify({ name: 'build', status: 'finished' }),
  });
  expect(invalid.status).toBe(422);
  expect(((await invalid.json()) as { message: string }).message).toContain('Invalid request');

  const valid = await fetch(`${api}/repos/demo-org/demo/check-runs`, {
    method: 'POST',
    headers,
    body: JSON.stringify({ name: 'build', head_sha: ref.object.sha }),
  });
  expect(valid.status).toBe(201);
  expect(await valid.json()).toMatchObject({
    name: 'build',
    head_sha: ref.object.sha,
    status: 'queued',
  });

  expect(await sandbox.stop('SIGTERM')).toBe(0);
});
