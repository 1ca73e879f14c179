/** Minion credentials: random bearer secrets of which only a hash is stored. */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

export const CREDENTIAL_PREFIX = 'tmc_';

/** `tmc_` + 32 random bytes, base64url. */
export function newCredential(): string {
  return CREDENTIAL_PREFIX + randomBytes(32).toString('base64url');
}

export const RUN_READ_TOKEN_PREFIX = 'tmr_';

/**
 * A run's read token, handed to its job: `tmr_<run id>_<secret>`, the
 * secret 32 random bytes, base64url, of which the run keeps the SHA-256. The
 * run id finds the run by its key: the hash needs no index of its own.
 */
export function newRunReadSecret(): string {
  return randomBytes(32).toString('base64url');
}

export function runReadToken(runId: number, secret: string): string {
  return `${RUN_READ_TOKEN_PREFIX}${runId}_${secret}`;
}

/** What the minions table stores: the SHA-256 of the credential, hex. */
export function credentialHash(credential: string): string {
  return createHash('sha256').update(credential).digest('hex');
}

/** Compares two secrets in constant time; hashing first makes the lengths equal. */
export function sameSecret(given: string, expected: string): boolean {
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}
