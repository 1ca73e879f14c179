/** The public URLs of runs' manifests and artifacts (the read API, docs/api.md). */

export type ArtifactEntry = {
  name: string;
  size: number;
  sha256: string;
  contentType: string;
  url: string;
};

export function createUrls(publicUrl: string) {
  const run = (runId: number) => `${publicUrl}/api/v1/runs/${runId}`;
  return {
    run,
    manifest: (runId: number) => `${run(runId)}/manifest`,
    log: (runId: number) => `${run(runId)}/log`,
    /** Each path segment of the name is encoded; the slashes stay. */
    artifact: (runId: number, name: string) =>
      `${run(runId)}/artifacts/${name.split('/').map(encodeURIComponent).join('/')}`,
  };
}
