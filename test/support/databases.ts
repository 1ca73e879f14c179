/**
 * The two storage backends every storage test runs against: PGlite, and a
 * real PostgreSQL when the suite has one. Each `open()` gives a fresh,
 * migrated database of its own.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import postgres from 'postgres';
import { inject } from 'vitest';
import { openDatabase, type Database } from '../../src/db/connection.js';
import { TEMPLATE_DATABASE, withDatabase } from './global-setup.js';

export type Backend = {
  name: 'pglite' | 'postgres';
  /** A fresh database; `migrated: false` gives an empty one. */
  open(options?: { migrated?: boolean }): Promise<TestDatabase>;
};

export type TestDatabase = Database & {
  /** For postgres: the URL of this database, to share it with other processes. */
  url: string | undefined;
  /** Closes and removes everything. */
  dispose(): Promise<void>;
};

const pgliteBackend: Backend = {
  name: 'pglite',
  async open({ migrated = true } = {}) {
    const dataDir = await mkdtemp(join(tmpdir(), 'tower-pglite-'));
    const database = await openDatabase({ kind: 'pglite', dataDir });
    if (migrated) await database.migrate();
    return {
      ...database,
      url: undefined,
      async dispose() {
        await database.close();
        await rm(dataDir, { recursive: true, force: true });
      },
    };
  },
};

/** Creates a database on the test server, cloned from the migrated template or empty. */
export async function createPostgresDatabase(migrated = true): Promise<string> {
  const adminUrl = inject('postgresAdminUrl');
  if (!adminUrl) throw new Error('no test PostgreSQL server in this run');
  const name = `tower_test_${randomBytes(6).toString('hex')}`;
  const admin = postgres(adminUrl, { max: 1, onnotice: () => {} });
  try {
    await admin.unsafe(
      migrated
        ? `create database ${name} template ${TEMPLATE_DATABASE}`
        : `create database ${name}`,
    );
  } finally {
    await admin.end();
  }
  return withDatabase(adminUrl, name);
}

export async function dropPostgresDatabase(url: string): Promise<void> {
  const adminUrl = inject('postgresAdminUrl');
  const name = new URL(url).pathname.slice(1);
  const admin = postgres(adminUrl, { max: 1, onnotice: () => {} });
  try {
    await admin.unsafe(`drop database if exists ${name} with (force)`);
  } finally {
    await admin.end();
  }
}

const postgresBackend: Backend = {
  name: 'postgres',
  async open({ migrated = true } = {}) {
    const url = await createPostgresDatabase(migrated);
    const database = await openDatabase({ kind: 'postgres', url });
    return {
      ...database,
      url,
      async dispose() {
        await database.close();
        await dropPostgresDatabase(url);
      },
    };
  },
};

export const hasPostgres = (): boolean => inject('postgresAdminUrl') !== '';

/** PGlite always; PostgreSQL when the run has a server. */
export function backends(): Backend[] {
  return hasPostgres() ? [pgliteBackend, postgresBackend] : [pgliteBackend];
}

export { pgliteBackend, postgresBackend };
