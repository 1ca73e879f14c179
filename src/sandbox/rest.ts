/** What a REST handler of the simulator receives and returns. */
import type { SimAccount, SimApp, SimInstallation, SimRepository } from './model.js';
import type { GitHubSimulator } from './simulator.js';

export type ApiRequest = {
  params: Record<string, unknown>;
  query: Record<string, unknown>;
  /** Already validated against the operation's request schema. */
  body: unknown;
  app: SimApp;
  /** Absent for requests authenticated as the app (JWT). */
  installation: SimInstallation | undefined;
  /** The person a user token (`ghu_…`) acts for; absent otherwise. */
  user?: SimAccount | undefined;
  /** Present when the path names a repository the credential may reach. */
  repository: SimRepository | undefined;
};

export type ApiResponse = { status: number; body?: unknown; headers?: Record<string, string> };

export type Handler = (request: ApiRequest, sim: GitHubSimulator) => Promise<ApiResponse>;

/** An answer other than success, worded as GitHub words it. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly extra: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

export const notFound = () => new ApiError(404, 'Not Found');

/** The request's repository; handlers under /repos/{owner}/{repo} always have one. */
export function repositoryOf(request: ApiRequest): SimRepository {
  if (!request.repository) throw notFound();
  return request.repository;
}

export function installationOf(request: ApiRequest): SimInstallation {
  if (!request.installation) throw new ApiError(403, 'Resource not accessible by integration');
  return request.installation;
}
