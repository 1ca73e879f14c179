/**
 * GitHub App authentication as GitHub checks it: an app JWT (RS256, signed
 * with the app's private key, at most ten minutes long) to act as the app,
 * installation tokens (`ghs_…`, one hour) to act for an installation, and
 * user tokens (`ghu_…`, eight hours, oauth.ts) to act for a person.
 */
import { createPublicKey, randomBytes, verify } from 'node:crypto';
import { z } from 'zod';

export type Credential =
  | { kind: 'app'; appId: number }
  | { kind: 'installation'; installationId: number; token: string }
  | { kind: 'user'; login: string; appId: number; token: string }
  | { kind: 'none' };

export type AuthFailure = { status: 401; message: string };

const JwtHeader = z.object({ alg: z.literal('RS256') });
const JwtClaims = z.object({
  iat: z.number(),
  exp: z.number(),
  iss: z.union([z.string(), z.number()]),
});

export type InstallationToken = {
  token: string;
  installationId: number;
  expiresAt: Date;
  repositoryIds: number[] | undefined;
};

/** Tokens handed out, by value. */
export class TokenStore {
  readonly #tokens = new Map<string, InstallationToken>();

  issue(installationId: number, now: Date, repositoryIds?: number[]): InstallationToken {
    const token: InstallationToken = {
      token: `ghs_${randomBytes(27).toString('base64url').slice(0, 36)}`,
      installationId,
      expiresAt: new Date(now.getTime() + 60 * 60 * 1000),
      repositoryIds,
    };
    this.#tokens.set(token.token, token);
    return token;
  }

  get(token: string): InstallationToken | undefined {
    return this.#tokens.get(token);
  }

  revokeInstallation(installationId: number): void {
    for (const [value, token] of this.#tokens)
      if (token.installationId === installationId) this.#tokens.delete(value);
  }
}

/**
 * Reads the Authorization header. `publicKeyFor` gives an app's public key
 * by id, or undefined when there is no such app.
 */
export function authenticate(
  header: string | undefined,
  now: Date,
  {
    publicKeyFor,
    tokens,
    userTokens,
  }: {
    publicKeyFor: (appId: number) => string | undefined;
    tokens: TokenStore;
    userTokens?: {
      userToken(token: string): { login: string; appId: number; expiresAt: Date } | undefined;
    };
  },
): Credential | AuthFailure {
  if (!header) return { kind: 'none' };
  const match = /^(bearer|token)\s+(\S+)$/i.exec(header.trim());
  if (!match) return { status: 401, message: 'Bad credentials' };
  const value = match[2]!;
  if (value.split('.').length === 3) return verifyAppJwt(value, now, publicKeyFor);
  const user = userTokens?.userToken(value);
  if (user) {
    if (user.expiresAt <= now) return { status: 401, message: 'Bad credentials' };
    return { kind: 'user', login: user.login, appId: user.appId, token: value };
  }
  const token = tokens.get(value);
  if (!token || token.expiresAt <= now) return { status: 401, message: 'Bad credentials' };
  return { kind: 'installation', installationId: token.installationId, token: value };
}

function verifyAppJwt(
  jwt: string,
  now: Date,
  publicKeyFor: (appId: number) => string | undefined,
): Credential | AuthFailure {
  const [headerPart, claimsPart, signaturePart] = jwt.split('.') as [string, string, string];
  const decode = (part: string): unknown => {
    try {
      return JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
    } catch {
      return undefined;
    }
  };
  const header = JwtHeader.safeParse(decode(headerPart));
  const claims = JwtClaims.safeParse(decode(claimsPart));
  if (!header.success || !claims.success) {
    return { status: 401, message: 'A JSON web token could not be decoded' };
  }
  const appId = Number(claims.data.iss);
  const publicKey = Number.isInteger(appId) ? publicKeyFor(appId) : undefined;
  if (!publicKey) return { status: 401, message: `Integration not found` };
  const signed = verify(
    'RSA-SHA256',
    Buffer.from(`${headerPart}.${claimsPart}`),
    createPublicKey(publicKey),
    Buffer.from(signaturePart, 'base64url'),
  );
  if (!signed) return { status: 401, message: 'A JSON web token could not be decoded' };
  const seconds = Math.floor(now.getTime() / 1000);
  const { iat, exp } = claims.data;
  // GitHub allows a little clock drift, and at most ten minutes of validity.
  if (exp - iat > 600) {
    return { status: 401, message: "'Expiration time' claim ('exp') is too far in the future" };
  }
  if (exp <= seconds)
    return {
      status: 401,
      message:
        "'Expiration time' claim ('exp') must be a numeric value representing the future time at which the assertion expires",
    };
  if (iat > seconds + 60)
    return {
      status: 401,
      message:
        "'Issued at' claim ('iat') must be an Integer representing the time that the assertion was issued",
    };
  return { kind: 'app', appId };
}
