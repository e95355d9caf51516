// A kubeconfig that points kubectl or @kubernetes/client-node at the server, with its bearer token when it has
// one. Over HTTPS it carries the server's certificate as the CA; over plain HTTP it says
// insecure-skip-tls-verify, without which client-node refuses an http:// server (kubectl ignores it there).
import { writeFile } from 'node:fs/promises';
import YAML from 'yaml';

export interface KubeconfigOptions {
  /** the server's URL, `http://127.0.0.1:PORT` or `https://…` */
  server: string;
  /** the PEM certificate an https server presents */
  certificate?: string;
  token?: string;
  /** the context's default namespace */
  namespace?: string;
}

export function kubeconfigYaml(options: KubeconfigOptions): string {
  const name = 'eni-cni-apiserver';
  const trust = options.certificate
    ? { 'certificate-authority-data': Buffer.from(options.certificate).toString('base64') }
    : { 'insecure-skip-tls-verify': true };
  return YAML.stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name, cluster: { server: options.server, ...trust } }],
    users: [{ name, user: options.token ? { token: options.token } : {} }],
    contexts: [{ name, context: { cluster: name, user: name, ...(options.namespace ? { namespace: options.namespace } : {}) } }],
    'current-context': name,
    preferences: {},
  });
}

/** Writes the kubeconfig readable by its owner only (it may hold the token); returns the path. */
export async function writeKubeconfig(path: string, options: KubeconfigOptions): Promise<string> {
  await writeFile(path, kubeconfigYaml(options), { mode: 0o600 });
  return path;
}
