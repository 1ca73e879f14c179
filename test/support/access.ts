/** API tokens for tests that read what only operators may (the minion inventory, the queue, /metrics). */
import { createApiTokens } from '../../src/access/api-tokens.js';
import { createAccessQueries } from '../../src/db/access.js';
import type { Database } from '../../src/db/connection.js';
import { systemClock } from '../../src/lib/clock.js';

/** A new operator token's secret. */
export async function operatorToken(database: Pick<Database, 'db'>): Promise<string> {
  const tokens = createApiTokens({ queries: createAccessQueries(database.db), clock: systemClock });
  return (await tokens.create({ name: 'test operator', scope: { operator: true } })).token;
}
