/** Reading requests: JSON bodies and path parameters through zod, bearer tokens. */
import type { Context } from 'hono';
import type { z } from 'zod';
import { InvalidRequestError } from '../minions/errors.js';
import { Id, describeIssues } from '../minions/schemas.js';

/** Parses the JSON body with the schema; an empty body counts as `{}`. */
export async function jsonBody<S extends z.ZodType>(c: Context, schema: S): Promise<z.output<S>> {
  const text = await c.req.text();
  let value: unknown = {};
  if (text.trim() !== '') {
    try {
      value = JSON.parse(text);
    } catch {
      throw new InvalidRequestError('body: is not JSON');
    }
  }
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw new InvalidRequestError(describeIssues(parsed.error.issues));
  return parsed.data;
}

/** A positive whole number in the path. */
export function idParam(c: Context, name: string): number {
  const parsed = Id.safeParse(c.req.param(name));
  if (!parsed.success) throw new InvalidRequestError(describeIssues(parsed.error.issues, name));
  return parsed.data;
}

/** The token of `Authorization: Bearer <token>`, or undefined. */
export function bearerToken(c: Context): string | undefined {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(c.req.header('authorization') ?? '');
  return match?.[1];
}
