import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import postgres from 'postgres';
import { afterEach, describe, expect, it } from 'vitest';
import { createPostgresDatabase, dropPostgresDatabase, hasPostgres } from './support/databases.js';
import { generateAppKey, installationCreatedPayload, sign } from './support/github-app.js';
import { freePort } from './support/postgres-server.js';
import {
  baseEnv,
  listeningUrl,
  runTower,
  waitForHealthy,
  type TowerProcess,
} from './support/processes.js';

const running: TowerProcess[] = [];
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((p) => p.stop('SIGKILL')));
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'tower-serve-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

function start(cwd: string, env: Record<string, string>) {
  const tower = runTower(['serve'], { cwd, env: baseEnv(env) });
  running.push(tower);
  return tower;
}

describe('tower serve', () => {
  it('starts on embedded defaults, keeps its data in the data directory, and starts again on it', async () => {
    const cwd = await tempDir();
    const first = start(cwd, { TOWER_PORT: '0' });
    expect(await waitForHealthy(first, await listeningUrl(first))).toMatchObject({
      status: 'ok',
      database: { kind: 'pglite', status: 'ok' },
    });
    expect(first.output()).toContain('No GitHub App configured');
    expect(existsSync(join(cwd, 'data', 'pglite', 'PG_VERSION'))).toBe(true);

    // Graceful shutdown: exits 0 and releases the data directory.
    expect(await first.stop('SIGTERM')).toBe(0);
    expect(first.output()).toContain('"msg":"stopped"');
    expect(existsSync(join(cwd, 'data', 'pglite.lock'))).toBe(false);

    const second = start(cwd, { TOWER_PORT: '0' });
    expect(await waitForHealthy(second, await listeningUrl(second))).toMatchObject({
      status: 'ok',
    });
    expect(second.output()).not.toMatch(/error/i);
    expect(await second.stop('SIGINT')).toBe(0);
    // Two starts of PGlite and the embedded simulator: slow on a loaded machine.
  }, 120_000);

  it('refuses a second process on the same PGlite data directory, saying why', async () => {
    const cwd = await tempDir();
    const first = start(cwd, { TOWER_PORT: '0' });
    const url = await listeningUrl(first);
    await waitForHealthy(first, url);
    const second = start(cwd, { TOWER_PORT: '0' });
    expect(await second.exited).toBe(1);
    expect(second.output()).toContain(`is in use by process`);
    // The first is unharmed.
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
  }, 120_000);

  it('exits non-zero on an invalid configuration value, naming the variable', async () => {
    const cwd = await tempDir();
    const tower = start(cwd, { TOWER_PORT: 'eighty', TOWER_LOG_LEVEL: 'loud' });
    expect(await tower.exited).toBe(78);
    expect(tower.output()).toContain('TOWER_PORT: must be a port number from 0 to 65535');
    expect(tower.output()).toContain('TOWER_LOG_LEVEL: must be one of');
    expect(existsSync(join(cwd, 'data'))).toBe(false);
  });

  it('reads a .env file in the working directory', async () => {
    const cwd = await tempDir();
    await writeFile(join(cwd, '.env'), 'TOWER_PORT=nope\n');
    const tower = start(cwd, {});
    expect(await tower.exited).toBe(78);
    expect(tower.output()).toContain('TOWER_PORT');
  });

  it('migrates and exits with `tower migrate`', async () => {
    const cwd = await tempDir();
    const tower = runTower(['migrate'], { cwd, env: baseEnv({}) });
    expect(await tower.exited).toBe(0);
    expect(existsSync(join(cwd, 'data', 'pglite', 'PG_VERSION'))).toBe(true);
  });
});

describe.skipIf(!hasPostgres())('tower serve on a shared PostgreSQL', () => {
  it('runs two replicas that migrate together and store and process each delivery once', async () => {
    const databaseUrl = await createPostgresDatabase(false);
    cleanups.push(() => dropPostgresDatabase(databaseUrl));
    const secret = 'replica-webhook-secret';
    const keyDir = await tempDir();
    await writeFile(join(keyDir, 'app.pem'), generateAppKey());
    const env = {
      DATABASE_URL: databaseUrl,
      TOWER_APP_ID: '12345',
      TOWER_PRIVATE_KEY_PATH: join(keyDir, 'app.pem'),
      TOWER_WEBHOOK_SECRET: secret,
      TOWER_GITHUB_API_URL: 'http://127.0.0.1:9',
    };
    const ports = [await freePort(), await freePort()];
    const urls = ports.map((port) => `http://127.0.0.1:${port}`);
    // Both start on an empty database at once: the migration lock keeps them apart.
    const replicas = [
      start(await tempDir(), { ...env, TOWER_PORT: String(ports[0]) }),
      start(await tempDir(), { ...env, TOWER_PORT: String(ports[1]) }),
    ];
    for (const [i, replica] of replicas.entries()) {
      expect(await waitForHealthy(replica, urls[i]!)).toMatchObject({
        database: { kind: 'postgres', status: 'ok' },
      });
    }

    // Twenty deliveries, each sent to both replicas at the same moment.
    const ids = Array.from({ length: 20 }, (_, i) => `shared-${i}`);
    const answers = await Promise.all(
      ids.flatMap((id, i) => {
        const body = JSON.stringify(
          installationCreatedPayload(500 + i, [{ id: 50_000 + i, full_name: `o/r${i}` }]),
        );
        const headers = {
          'content-type': 'application/json',
          'x-github-delivery': id,
          'x-github-event': 'installation',
          'x-hub-signature-256': sign(secret, body),
        };
        return urls.map(async (url) => {
          const response = await fetch(`${url}/api/github/webhooks`, {
            method: 'POST',
            body,
            headers,
          });
          expect(response.status).toBe(202);
          return ((await response.json()) as { status: string }).status;
        });
      }),
    );
    expect(answers.filter((a) => a === 'stored')).toHaveLength(20);
    expect(answers.filter((a) => a === 'duplicate')).toHaveLength(20);

    const sql = postgres(databaseUrl, { max: 1, onnotice: () => {} });
    cleanups.unshift(() => sql.end());
    await expect
      .poll(
        async () => {
          const [row] = await sql<
            { n: number }[]
          >`select count(*)::int as n from webhook_deliveries where status = 'done'`;
          return row?.n;
        },
        {
          timeout: 20_000,
        },
      )
      .toBe(20);
    const rows = await sql`select id, attempts from webhook_deliveries order by id`;
    expect(rows).toHaveLength(20);
    expect(rows.every((row) => row.attempts === 1)).toBe(true);
    const installations = await sql`select count(*)::int as n from installations`;
    expect(installations[0]?.n).toBe(20);
    const migrations = await sql`select count(*)::int as n from drizzle.__drizzle_migrations`;
    const journal = JSON.parse(
      await readFile(new URL('../db/meta/_journal.json', import.meta.url), 'utf8'),
    ) as {
      entries: unknown[];
    };
    expect(migrations[0]?.n).toBe(journal.entries.length);

    for (const replica of replicas) expect(await replica.stop('SIGTERM')).toBe(0);
  });
});
