/**
 * API tokens for machines: `twr_` + 32 random bytes, shown once; only the
 * SHA-256 is stored. A token reads the repositories it names, or, as an
 * operator token, everything (the minion inventory and /metrics included).
 */
import { createHash, randomBytes } from 'node:crypto';
import type { AccessQueries, ApiTokenRow } from '../db/access.js';
import type { Clock } from '../lib/clock.js';

export const API_TOKEN_PREFIX = 'twr_';

const LAST_USED_PRECISION_MS = 60_000;

export type ApiTokenScope = { operator: true } | { operator: false; repositoryIds: number[] };

export function apiTokenHash(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

export function scopeOf(row: Pick<ApiTokenRow, 'operator' | 'repositoryIds'>): ApiTokenScope {
  return row.operator
    ? { operator: true }
    : { operator: false, repositoryIds: row.repositoryIds ?? [] };
}

export function createApiTokens(deps: {
  queries: Pick<
    AccessQueries,
    'insertToken' | 'liveToken' | 'touchToken' | 'listTokens' | 'revokeToken'
  >;
  clock: Clock;
}) {
  return {
    /** A new token: the secret is in the answer and nowhere else. */
    async create(input: { name: string; scope: ApiTokenScope }) {
      const token = API_TOKEN_PREFIX + randomBytes(32).toString('base64url');
      const row = await deps.queries.insertToken({
        name: input.name,
        tokenHash: apiTokenHash(token),
        operator: input.scope.operator,
        repositoryIds: input.scope.operator ? null : input.scope.repositoryIds,
        now: deps.clock.now(),
      });
      return { token, row };
    },

    /** The scope of a live token; undefined for an unknown or revoked one. */
    async authenticate(token: string): Promise<(ApiTokenScope & { tokenId: number }) | undefined> {
      if (!token.startsWith(API_TOKEN_PREFIX)) return undefined;
      const row = await deps.queries.liveToken(apiTokenHash(token));
      if (!row) return undefined;
      // "Last used" to the minute: a busy reader does not write on every request.
      const now = deps.clock.now();
      if (!row.lastUsedAt || now.getTime() - row.lastUsedAt.getTime() >= LAST_USED_PRECISION_MS) {
        await deps.queries.touchToken(row.id, now);
      }
      return { ...scopeOf(row), tokenId: row.id };
    },

    list: () => deps.queries.listTokens(),
    revoke: (id: number) => deps.queries.revokeToken(id, deps.clock.now()),
  };
}

export type ApiTokens = ReturnType<typeof createApiTokens>;
