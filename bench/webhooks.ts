/**
 * Webhook intake and processing, on PGlite and PostgreSQL, beside the
 * PostgreSQL ceiling (a bare single-row INSERT loop) measured in the same
 * run. `BENCH_DELIVERIES=N` and `BENCH_ROUNDS=N` resize it.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import postgres from 'postgres';
import { openDatabase, type Database } from '../src/db/connection.js';
import { createLogger } from '../src/lib/logger.js';
import { median } from './stats.js';
import { createTower } from '../src/main.js';
import { inProcessConfig } from '../test/support/config.js';
import { installationCreatedPayload, generateAppKey, sign } from '../test/support/github-app.js';
import { findPostgresBinaries, startPostgresServer } from '../test/support/postgres-server.js';

const deliveries = Number(process.env.BENCH_DELIVERIES ?? 1000);
const rounds = Number(process.env.BENCH_ROUNDS ?? 5);
const secret = 'bench-secret';
const logger = createLogger({ level: 'silent' });

type Figures = {
  intakePerSecond: number;
  processPerSecond: number;
  ceilingPerSecond: number | undefined;
};

async function benchWebhooks(
  open: () => Promise<Database & { dispose(): Promise<void> }>,
): Promise<Figures> {
  const intake: number[] = [];
  const processing: number[] = [];
  const ceiling: number[] = [];
  const key = generateAppKey();
  for (let round = 0; round < rounds; round++) {
    const database = await open();
    const config = inProcessConfig({ appId: 1, privateKey: key, webhookSecret: secret });
    const tower = await createTower({ config, logger, database });
    const requests = Array.from({ length: deliveries }, (_, i) => {
      const body = JSON.stringify(installationCreatedPayload(round * 1_000_000 + i + 1, []));
      return {
        body,
        headers: {
          'content-type': 'application/json',
          'x-github-delivery': `bench-${round}-${i}`,
          'x-github-event': 'installation',
          'x-hub-signature-256': sign(secret, body),
        },
      };
    });
    let start = performance.now();
    // Ten concurrent senders, as GitHub delivers in parallel.
    let next = 0;
    await Promise.all(
      Array.from({ length: 10 }, async () => {
        while (next < requests.length) {
          const request = requests[next++]!;
          const response = await tower.app.request('/api/github/webhooks', {
            method: 'POST',
            ...request,
          });
          if (response.status !== 202) throw new Error(`intake answered ${response.status}`);
        }
      }),
    );
    intake.push(deliveries / ((performance.now() - start) / 1000));

    start = performance.now();
    await tower.processor!.drain();
    processing.push(deliveries / ((performance.now() - start) / 1000));

    if (database.kind === 'postgres') ceiling.push(await insertCeiling(database));
    await database.dispose();
  }
  return {
    intakePerSecond: median(intake),
    processPerSecond: median(processing),
    ceilingPerSecond: ceiling.length ? median(ceiling) : undefined,
  };
}

/** The same number of single-row INSERTs, one at a time, through postgres.js. */
async function insertCeiling(database: Database & { url?: string }): Promise<number> {
  const sql = postgres(database.url!, { max: 1, onnotice: () => {} });
  try {
    await sql`create temporary table ceiling (id int primary key, payload jsonb)`;
    const start = performance.now();
    for (let i = 0; i < deliveries; i++)
      await sql`insert into ceiling values (${i}, ${sql.json({ i })})`;
    return deliveries / ((performance.now() - start) / 1000);
  } finally {
    await sql.end();
  }
}

export async function webhookSuite(): Promise<string> {
  const rows: [string, Figures][] = [];
  rows.push([
    'PGlite',
    await benchWebhooks(async () => {
      const dataDir = await mkdtemp(join(tmpdir(), 'tower-bench-'));
      const database = await openDatabase({ kind: 'pglite', dataDir });
      await database.migrate();
      return {
        ...database,
        dispose: async () => {
          await database.close();
          await rm(dataDir, { recursive: true, force: true });
        },
      };
    }),
  ]);

  const binDir = findPostgresBinaries();
  if (binDir) {
    const server = await startPostgresServer(binDir);
    try {
      let n = 0;
      rows.push([
        'PostgreSQL',
        await benchWebhooks(async () => {
          const name = `bench_${n++}`;
          const admin = postgres(server.url, { max: 1, onnotice: () => {} });
          await admin.unsafe(`create database ${name}`);
          await admin.end();
          const url = server.url.replace(/\/postgres$/, `/${name}`);
          const database = await openDatabase({ kind: 'postgres', url });
          await database.migrate();
          return { ...database, url, dispose: () => database.close() };
        }),
      ]);
    } finally {
      await server.stop();
    }
  } else {
    console.log('PostgreSQL server binaries not found: PGlite only.');
  }

  const lines = [
    `Webhook deliveries: ${deliveries} per round, median of ${rounds} rounds`,
    '',
    '| database | intake (stored/s) | processing (done/s) | PostgreSQL ceiling (INSERT/s) |',
    '| --- | ---: | ---: | ---: |',
  ];
  for (const [name, f] of rows) {
    const ceiling = f.ceilingPerSecond ? Math.round(f.ceilingPerSecond).toString() : '—';
    lines.push(
      `| ${name} | ${Math.round(f.intakePerSecond)} | ${Math.round(f.processPerSecond)} | ${ceiling} |`,
    );
  }
  return lines.join('\n');
}
