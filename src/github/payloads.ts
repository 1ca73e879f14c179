/**
 * The webhook fields Tower uses, through zod: each schema
 * declares only what the handlers read, so a payload GitHub grows stays
 * accepted, and one that lacks a field Tower needs is refused by name.
 */
import { z } from 'zod';

const Sha = z.string().regex(/^[0-9a-f]{40}$/, { error: 'must be a 40-hex-digit commit id' });

const Installation = z.object({ id: z.number().int() });

const Repository = z.object({
  id: z.number().int(),
  full_name: z.string(),
  name: z.string(),
  owner: z.object({ login: z.string() }),
  default_branch: z.string(),
});

const User = z.object({ login: z.string(), type: z.string().optional() });

export const PushPayload = z.object({
  ref: z.string(),
  before: Sha,
  after: Sha,
  deleted: z.boolean().optional(),
  head_commit: z.object({ message: z.string() }).nullable().optional(),
  repository: Repository,
  installation: Installation,
  sender: User,
});
export type PushPayload = z.infer<typeof PushPayload>;

export const PullRequestPayload = z.object({
  action: z.string(),
  number: z.number().int(),
  label: z.object({ name: z.string() }).optional(),
  pull_request: z.object({
    number: z.number().int(),
    state: z.string(),
    title: z.string(),
    draft: z.boolean().optional(),
    merged: z.boolean().nullable().optional(),
    /** GitHub's time of the change: for opened, reopened and synchronize, when the head arrived. */
    updated_at: z.iso.datetime({ offset: true }),
    user: User,
    head: z.object({
      sha: Sha,
      ref: z.string(),
      repo: z
        .object({
          id: z.number().int(),
          full_name: z.string(),
          owner: z.object({ login: z.string() }),
        })
        .nullable(),
    }),
    base: z.object({ sha: Sha, ref: z.string(), repo: z.object({ id: z.number().int() }) }),
    labels: z.array(z.object({ name: z.string() })).optional(),
  }),
  repository: Repository,
  installation: Installation,
  sender: User,
});
export type PullRequestPayload = z.infer<typeof PullRequestPayload>;

export const PullRequestReviewPayload = z.object({
  action: z.string(),
  review: z.object({ state: z.string(), user: User.nullable() }),
  pull_request: z.object({ number: z.number().int() }),
  repository: Repository,
  installation: Installation,
  sender: User,
});
export type PullRequestReviewPayload = z.infer<typeof PullRequestReviewPayload>;

export const IssueCommentPayload = z.object({
  action: z.string(),
  issue: z.object({
    number: z.number().int(),
    pull_request: z.object({ url: z.string().nullable().optional() }).optional(),
  }),
  comment: z.object({
    id: z.number().int(),
    body: z.string(),
    user: User,
    /** When it was written (GitHub's time): commands bind to the head of that moment. */
    created_at: z.iso.datetime({ offset: true }),
  }),
  repository: Repository,
  installation: Installation,
  sender: User,
});
export type IssueCommentPayload = z.infer<typeof IssueCommentPayload>;

export const CheckRunPayload = z.object({
  action: z.string(),
  check_run: z.object({
    id: z.number().int(),
    head_sha: Sha,
    external_id: z.string().nullable().optional(),
    app: z.object({ id: z.number().int() }).nullable().optional(),
  }),
  requested_action: z.object({ identifier: z.string() }).nullable().optional(),
  repository: Repository,
  installation: Installation,
  sender: User,
});
export type CheckRunPayload = z.infer<typeof CheckRunPayload>;

export const CheckSuitePayload = z.object({
  action: z.string(),
  check_suite: z.object({
    id: z.number().int(),
    head_sha: Sha,
    app: z.object({ id: z.number().int() }).nullable().optional(),
  }),
  repository: Repository,
  installation: Installation,
  sender: User,
});
export type CheckSuitePayload = z.infer<typeof CheckSuitePayload>;

/** A payload that lacks what Tower needs: the delivery fails, saying which field. */
export class PayloadError extends Error {
  override readonly name = 'PayloadError';
}

export function parsePayload<S extends z.ZodType>(
  schema: S,
  event: string,
  payload: unknown,
): z.output<S> {
  const parsed = schema.safeParse(payload);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new PayloadError(`${event} payload: ${issue.path.join('.') || 'body'}: ${issue.message}`);
  }
  return parsed.data;
}
