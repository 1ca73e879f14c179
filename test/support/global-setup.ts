/**
 * Starts one PostgreSQL server for the whole run (when its binaries are
 * installed, or when TOWER_TEST_DATABASE_URL names one) and migrates a
 * template database that each test file clones.
 */
import type { TestProject } from 'vitest/node';
import postgres from 'postgres';
import { openDatabase } from '../../src/db/connection.js';
import {
  findPostgresBinaries,
  startPostgresServer,
  type PostgresServer,
} from './postgres-server.js';

export const TEMPLATE_DATABASE = 'tower_test_template';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Admin URL of the test PostgreSQL server, or '' when there is none. */
    postgresAdminUrl: string;
  }
}

export default async function setup(project: TestProject) {
  let server: PostgresServer | undefined;
  let adminUrl = process.env.TOWER_TEST_DATABASE_URL ?? '';
  if (!adminUrl) {
    const binDir = findPostgresBinaries();
    if (binDir) {
      server = await startPostgresServer(binDir);
      adminUrl = server.url;
    } else {
      console.warn(
        'PostgreSQL server binaries not found: the suite runs on PGlite only. ' +
          'Install the postgresql package (or set TOWER_TEST_DATABASE_URL) to test both.',
      );
    }
  }
  if (adminUrl) await createTemplate(adminUrl);
  project.provide('postgresAdminUrl', adminUrl);
  return async () => {
    await server?.stop();
  };
}

async function createTemplate(adminUrl: string): Promise<void> {
  const admin = postgres(adminUrl, { max: 1, onnotice: () => {} });
  try {
    await admin.unsafe(`drop database if exists ${TEMPLATE_DATABASE}`);
    await admin.unsafe(`create database ${TEMPLATE_DATABASE}`);
  } finally {
    await admin.end();
  }
  const database = await openDatabase({
    kind: 'postgres',
    url: withDatabase(adminUrl, TEMPLATE_DATABASE),
  });
  try {
    await database.migrate();
  } finally {
    await database.close();
  }
}

export function withDatabase(url: string, name: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${name}`;
  return parsed.toString();
}
