import { createHmac, generateKeyPairSync } from 'node:crypto';

/** A fresh RSA key, as GitHub generates for an app (PKCS#1 PEM). */
export function generateAppKey(): string {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return privateKey.export({ type: 'pkcs1', format: 'pem' }).toString();
}

export function sign(secret: string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}

/** A minimal installation.created payload with the fields GitHub always sends. */
export function installationCreatedPayload(
  installationId: number,
  repos: { id: number; full_name: string }[],
) {
  return {
    action: 'created',
    installation: {
      id: installationId,
      account: { id: 9000 + installationId, login: `org-${installationId}`, type: 'Organization' },
      repository_selection: 'selected',
      target_type: 'Organization',
      suspended_at: null,
    },
    repositories: repos.map((repo) => ({
      ...repo,
      name: repo.full_name.split('/')[1],
      private: false,
    })),
    sender: { id: 1, login: 'octocat', type: 'User' },
  };
}
