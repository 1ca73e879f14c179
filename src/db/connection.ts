import { chmod, mkdir, open, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { PGlite } from '@electric-sql/pglite';
import { sql } from 'drizzle-orm';
import type { PgDatabase, PgQueryResultHKT } from 'drizzle-orm/pg-core';
import { drizzle as drizzlePostgres } from 'drizzle-orm/postgres-js';
import { migrate as migratePostgres } from 'drizzle-orm/postgres-js/migrator';
import postgres from 'postgres';
import { TowerError } from '../lib/errors.js';
import * as schema from './schema.js';

export type Schema = typeof schema;

/** Both drivers give this one query interface. */
export type TowerDb = PgDatabase<PgQueryResultHKT, Schema>;

export type DatabaseTarget =
  { kind: 'pglite'; dataDir: string } | { kind: 'postgres'; url: string };

export type Database = {
  readonly kind: DatabaseTarget['kind'];
  readonly db: TowerDb;
  /** Throws when the database cannot answer. */
  ping(): Promise<void>;
  /** Applies the migrations in `db/`; safe to run from several replicas at once. */
  migrate(): Promise<void>;
  close(): Promise<void>;
};

export const migrationsFolder = fileURLToPath(new URL('../../db', import.meta.url));

/** Any number: it only has to be the same for every Tower replica. */
const MIGRATION_LOCK_KEY = 7_021_994_212;

export class DataDirectoryLockedError extends TowerError {
  override readonly name = 'DataDirectoryLockedError';
}

export async function openDatabase(target: DatabaseTarget): Promise<Database> {
  return target.kind === 'pglite'
    ? openPglite(target.dataDir)
    : Promise.resolve(openPostgres(target.url));
}

async function openPglite(dataDir: string): Promise<Database> {
  const directory = join(dataDir, 'pglite');
  // The database is the server's alone: no other user (a job's, say) may read it.
  await mkdir(directory, { recursive: true, mode: 0o700 });
  await chmod(directory, 0o700);
  const releaseLock = await lockDataDirectory(dataDir);
  // Loaded only when used: PGlite's WebAssembly costs a PostgreSQL deployment ~60 MB of RSS.
  const [{ PGlite }, { drizzle: drizzlePglite }, { migrate: migratePglite }] = await Promise.all([
    import('@electric-sql/pglite'),
    import('drizzle-orm/pglite'),
    import('drizzle-orm/pglite/migrator'),
  ]);
  let client: PGlite;
  try {
    client = await PGlite.create(directory);
  } catch (error) {
    await releaseLock();
    throw error;
  }
  const db = drizzlePglite(client, { schema });
  return {
    kind: 'pglite',
    db,
    ping: async () => {
      await db.execute(sql`select 1`);
    },
    migrate: async () => {
      // One process owns a PGlite directory (see the lock), so no migration lock is needed.
      await migratePglite(db, { migrationsFolder });
    },
    close: async () => {
      await client.close();
      await releaseLock();
    },
  };
}

function openPostgres(url: string): Database {
  const client = postgres(url, {
    max: 10,
    onnotice: () => {},
    connection: { application_name: 'tower' },
  });
  const db = drizzlePostgres(client, { schema });
  return {
    kind: 'postgres',
    db,
    ping: async () => {
      await db.execute(sql`select 1`);
    },
    migrate: async () => {
      // A session-level advisory lock needs one connection for lock, migration and unlock.
      const single = postgres(url, { max: 1, onnotice: () => {} });
      try {
        await single`select pg_advisory_lock(${MIGRATION_LOCK_KEY})`;
        await migratePostgres(drizzlePostgres(single), { migrationsFolder });
        await single`select pg_advisory_unlock(${MIGRATION_LOCK_KEY})`;
      } finally {
        await single.end();
      }
    },
    close: async () => {
      await client.end({ timeout: 5 });
    },
  };
}

/**
 * PGlite is one process's database: a second process opening the same
 * directory would corrupt it. A pid file keeps the second one out.
 */
async function lockDataDirectory(dataDir: string): Promise<() => Promise<void>> {
  const lockPath = join(dataDir, 'pglite.lock');
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const handle = await open(lockPath, 'wx');
      await handle.writeFile(String(process.pid));
      await handle.close();
      return () => rm(lockPath, { force: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const holder = Number.parseInt(await readFile(lockPath, 'utf8').catch(() => ''), 10);
      if (Number.isInteger(holder) && isAlive(holder)) {
        throw new DataDirectoryLockedError(
          `The data directory ${dataDir} is in use by process ${holder}; ` +
            'stop it, choose another TOWER_DATA_DIR, or set DATABASE_URL to share a PostgreSQL',
        );
      }
      // Left behind by a process that has ended: take it over.
      await rm(lockPath, { force: true });
    }
  }
  throw new DataDirectoryLockedError(`Cannot lock the data directory ${dataDir}`);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
