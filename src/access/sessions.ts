/**
 * Sessions of people signed in with GitHub, kept in the browser: the cookie
 * is sealed with AES-256-GCM (authenticated encryption: it can be neither
 * forged nor read), under a key derived from TOWER_SESSION_SECRET or from a
 * secret Tower keeps in its data directory (mode 0600), never in the
 * database. The GitHub user token rides inside the sealed cookie, so that
 * every replica can check permissions without a session table.
 */
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import type { Clock } from '../lib/clock.js';

/** How long a sign-in lasts; GitHub App user tokens last as long. */
export const SESSION_TTL_MS = 8 * 60 * 60 * 1000;
/** How long the way to GitHub and back may take. */
export const SIGN_IN_TTL_MS = 10 * 60 * 1000;
/** Cookies are at most 4 KiB; anything longer is not one of Tower's. */
const MAX_SEALED_LENGTH = 4096;

export const Session = z.object({
  userId: z.number().int().positive(),
  login: z.string().min(1).max(100),
  githubToken: z.string().min(1).max(1000),
  /** Compared with the form field or header of state-changing page requests. */
  csrf: z.string().min(32).max(100),
  expiresAt: z.number(),
});
export type Session = z.infer<typeof Session>;

/** The `state` of a sign-in under way, and where to go back to. */
export const SignInState = z.object({
  state: z.string().min(32).max(100),
  next: z.string().max(2000),
  expiresAt: z.number(),
});
export type SignInState = z.infer<typeof SignInState>;

type Purpose = 'session' | 'sign-in';

/** Seals and opens session and sign-in cookies; each purpose has its own key. */
export function createSealer(secret: string, clock: Clock) {
  const keys = new Map<Purpose, Buffer>(
    (['session', 'sign-in'] as const).map((purpose) => [
      purpose,
      Buffer.from(hkdfSync('sha256', secret, 'tower', `tower ${purpose} cookie`, 32)),
    ]),
  );

  function seal(purpose: Purpose, value: unknown): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', keys.get(purpose)!, iv);
    const body = Buffer.concat([cipher.update(JSON.stringify(value), 'utf8'), cipher.final()]);
    return Buffer.concat([iv, cipher.getAuthTag(), body]).toString('base64url');
  }

  function open<S extends z.ZodType<{ expiresAt: number }>>(
    purpose: Purpose,
    schema: S,
    sealed: string | undefined,
  ): z.output<S> | undefined {
    if (!sealed || sealed.length > MAX_SEALED_LENGTH) return undefined;
    const bytes = Buffer.from(sealed, 'base64url');
    if (bytes.length < 12 + 16 + 1) return undefined;
    let text: string;
    try {
      const decipher = createDecipheriv('aes-256-gcm', keys.get(purpose)!, bytes.subarray(0, 12));
      decipher.setAuthTag(bytes.subarray(12, 28));
      text = Buffer.concat([decipher.update(bytes.subarray(28)), decipher.final()]).toString();
    } catch {
      return undefined; // forged, damaged, or sealed under another key
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      return undefined;
    }
    const parsed = schema.safeParse(json);
    if (!parsed.success || parsed.data.expiresAt <= clock.now().getTime()) return undefined;
    return parsed.data;
  }

  return {
    sealSession: (session: Session) => seal('session', session),
    openSession: (sealed: string | undefined) => open('session', Session, sealed),
    sealSignIn: (state: SignInState) => seal('sign-in', state),
    openSignIn: (sealed: string | undefined) => open('sign-in', SignInState, sealed),
  };
}

export type Sealer = ReturnType<typeof createSealer>;

/** A random secret for a cookie value or a CSRF token. */
export function randomToken(): string {
  return randomBytes(32).toString('base64url');
}

/**
 * The configured secret, or the one kept in `<dataDir>/session-secret`,
 * made on first use with mode 0600 (so that sessions survive restarts).
 */
export async function sessionSecret(configured: string | undefined, dataDir: string) {
  if (configured !== undefined) return configured;
  const path = join(dataDir, 'session-secret');
  try {
    return (await readFile(path, 'utf8')).trim();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  await mkdir(dataDir, { recursive: true });
  const secret = randomBytes(48).toString('base64url');
  try {
    // 'wx': of two processes starting at once, one writes and both read its secret.
    await writeFile(path, secret + '\n', { mode: 0o600, flag: 'wx' });
    return secret;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    return (await readFile(path, 'utf8')).trim();
  }
}
