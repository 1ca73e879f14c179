/** Reading requests: JSON bodies and path parameters through zod, bearer tokens. */
import type { Context } from 'hono';
import { z } from 'zod';
import { MAX_PAGE } from '../minions/reads.js';
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

/** The query string through the schema; the message names the parameter. */
export function parseQuery<S extends z.ZodType>(c: Context, schema: S): z.output<S> {
  const parsed = schema.safeParse(c.req.query());
  if (!parsed.success) throw new InvalidRequestError(describeIssues(parsed.error.issues, 'query'));
  return parsed.data;
}

const pageLimit = z.coerce
  .number({ error: `must be a whole number from 1 to ${MAX_PAGE}` })
  .int({ error: `must be a whole number from 1 to ${MAX_PAGE}` })
  .min(1, { error: `must be a whole number from 1 to ${MAX_PAGE}` })
  .max(MAX_PAGE, { error: `must be a whole number from 1 to ${MAX_PAGE}` })
  .optional();

/** `?after=<label>&limit=<n>` of GET /api/v1/graphs/:id. */
export const GraphPageQuery = z.object({
  after: z.string().min(1).max(200).optional(),
  limit: pageLimit,
});

/** `?after=<id>&limit=<n>` of GET /api/v1/minions. */
export const MinionPageQuery = z.object({ after: Id.optional(), limit: pageLimit });
