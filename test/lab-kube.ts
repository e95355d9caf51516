// What the cluster suites ask of a lab's API server: kubectl as its admin, a pod by name, and a pod awaited
// until it runs (with the cluster's state added to the error when it does not). `lab` is read at each call:
// suites make their lab in beforeAll.
import type * as k8s from '@kubernetes/client-node';
import { kubeClients, type Lab } from '../hack/lab/lab.ts';
import { run } from '../hack/lab/sh.ts';
import { until } from './eventually.ts';

/** `claims`: the kind whose objects the error of a pod that does not run shows too (vipc, eipc). */
export function labKube(lab: () => Lab, claims: string) {
  const kubectl = (...args: string[]) => run('kubectl', ['--kubeconfig', lab().kubeconfigFile('admin'), ...args]);
  const pod = (name: string): Promise<k8s.V1Pod> => kubeClients(lab().kubeconfigFile('admin')).core.readNamespacedPod({ name, namespace: 'default' });
  /** Waits until the pod of that name runs with an address (`other`: a uid it must not have, the pod it replaces). */
  const runningPod = (name: string, other?: string) =>
    until(`${name} running${other ? ' anew' : ''}`, () => pod(name), (p) => p.status?.phase === 'Running' && Boolean(p.status.podIP) && !p.metadata?.deletionTimestamp && p.metadata?.uid !== other, 45_000).catch(async (err: Error) => {
      err.message += `\n${await kubectl('get', 'pods', '-o', 'wide').catch(() => '')}\n${await kubectl('get', 'events').catch(() => '')}\n${await kubectl('get', claims, '-o', 'yaml').catch(() => '')}\n${lab().ipamds.map((r) => r.log().slice(-3000)).join('\n')}`;
      throw err;
    });
  return { kubectl, pod, runningPod };
}
