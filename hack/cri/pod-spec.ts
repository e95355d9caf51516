// kubelet's part for one container of a manifest's pod spec: its volumes made and bound (hostPath with its
// type, configMap written out as files), its environment (values, field references, ConfigMap keys), its
// args with $(VAR) put in, its securityContext, all turned into the CRI's ContainerSpec. Small on purpose:
// only what the manifests in daemonset/ use, and an error for anything else, so that a manifest using
// more cannot pass a test by being misread.
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type * as k8s from '@kubernetes/client-node';
import type { ContainerMount, ContainerSpec } from './cri-client.ts';

export interface PodEnvironment {
  /** Where a hostPath volume's path is on this machine (a lab node keeps some host dirs of its own). */
  hostPath(path: string): string;
  /** The ConfigMaps the pod may name, by name: their data. */
  configMaps: Record<string, Record<string, string>>;
  /** Values of the field references the pod uses (spec.nodeName, metadata.namespace). */
  fields: Record<string, string>;
  /** Where configMap volumes are written out, one dir each. */
  volumeDir: string;
  /** The image to run, when it differs from what the manifest names (a local tag). */
  image?: string;
  /** Mounts kubelet adds of its own (a host-network pod's /etc/hosts). */
  extraMounts?: ContainerMount[];
}

/** Fields of a container that kubelet would act on and this stand-in does not: refused, never ignored. */
const NOT_HANDLED = ['envFrom', 'workingDir', 'lifecycle', 'volumeDevices', 'stdin', 'tty'] as const;
const NOT_HANDLED_SECURITY = ['runAsGroup', 'runAsNonRoot', 'procMount', 'seLinuxOptions', 'appArmorProfile', 'windowsOptions'] as const;
const MEMORY_UNITS: Record<string, number> = { '': 1, Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, k: 1e3, M: 1e6, G: 1e9 };

/**
 * `annotations`: the pod template's, for the AppArmor profile of each container
 * (container.apparmor.security.beta.kubernetes.io/<name>).
 */
export function containerSpecOf(pod: k8s.V1PodSpec, container: k8s.V1Container, environment: PodEnvironment, annotations: Record<string, string> = {}): ContainerSpec {
  for (const field of NOT_HANDLED) if (container[field] !== undefined) throw new Error(`container ${container.name}: ${field} is not handled here`);
  for (const field of NOT_HANDLED_SECURITY) if (container.securityContext?.[field] !== undefined) throw new Error(`container ${container.name}: securityContext.${field} is not handled here`);
  for (const m of container.volumeMounts ?? []) if (m.subPath || m.subPathExpr) throw new Error(`container ${container.name}: the subPath of ${m.mountPath} is not handled here`);
  const apparmor = annotations[`container.apparmor.security.beta.kubernetes.io/${container.name}`];
  if (apparmor && apparmor !== 'unconfined' && apparmor !== 'runtime/default') throw new Error(`container ${container.name}: AppArmor profile ${apparmor} is not handled here`);
  const env = environmentOf(container, environment);
  const expand = (s: string) => s.replace(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (whole, name: string) => env[name] ?? whole);
  const security = container.securityContext ?? {};
  const seccomp = security.seccompProfile?.type;
  if (seccomp && seccomp !== 'RuntimeDefault' && seccomp !== 'Unconfined') throw new Error(`container ${container.name}: seccompProfile ${seccomp} is not handled here`);
  return {
    name: container.name,
    image: environment.image ?? container.image ?? '',
    command: (container.command ?? []).map(expand),
    args: (container.args ?? []).map(expand),
    env,
    mounts: [...(container.volumeMounts ?? []).map((m) => mountOf(pod, container, m, environment)), ...(environment.extraMounts ?? [])],
    ...memoryLimit(container),
    securityContext: {
      ...(apparmor ? { apparmor: apparmor === 'unconfined' ? 'Unconfined' : 'RuntimeDefault' } : {}),
      ...(security.capabilities ? { capabilities: { add: security.capabilities.add ?? [], drop: security.capabilities.drop ?? [] } } : {}),
      privileged: security.privileged ?? false,
      readonlyRootfs: security.readOnlyRootFilesystem ?? false,
      ...(security.runAsUser !== undefined ? { runAsUser: security.runAsUser } : {}),
      noNewPrivs: security.allowPrivilegeEscalation === false,
      // kubelet's default (SeccompDefault off) is unconfined.
      seccomp: seccomp === 'RuntimeDefault' ? 'RuntimeDefault' : 'Unconfined',
    },
  };
}

function memoryLimit(container: k8s.V1Container): { memoryLimitBytes?: number } {
  const limit = container.resources?.limits?.memory;
  if (limit === undefined) return {};
  const m = /^(\d+)(Ki|Mi|Gi|k|M|G)?$/.exec(String(limit));
  if (!m) throw new Error(`container ${container.name}: memory limit ${String(limit)} is not handled here`);
  return { memoryLimitBytes: Number(m[1]) * MEMORY_UNITS[m[2] ?? '']! };
}

function environmentOf(container: k8s.V1Container, environment: PodEnvironment): Record<string, string> {
  const env: Record<string, string> = {};
  for (const e of container.env ?? []) {
    if (e.value !== undefined) env[e.name] = e.value;
    else if (e.valueFrom?.fieldRef) {
      const value = environment.fields[e.valueFrom.fieldRef.fieldPath];
      if (value === undefined) throw new Error(`container ${container.name}: env ${e.name} refers to ${e.valueFrom.fieldRef.fieldPath}, which is not given`);
      env[e.name] = value;
    } else if (e.valueFrom?.configMapKeyRef) {
      const { name = '', key, optional } = e.valueFrom.configMapKeyRef;
      const value = environment.configMaps[name]?.[key];
      if (value === undefined && !optional) throw new Error(`container ${container.name}: env ${e.name}: no key ${key} in the ConfigMap ${name}`);
      if (value !== undefined) env[e.name] = value;
    } else throw new Error(`container ${container.name}: env ${e.name} has a source not handled here`);
  }
  return env;
}

function mountOf(pod: k8s.V1PodSpec, container: k8s.V1Container, mount: k8s.V1VolumeMount, environment: PodEnvironment): ContainerMount {
  const volume = (pod.volumes ?? []).find((v) => v.name === mount.name);
  if (!volume) throw new Error(`container ${container.name}: mount ${mount.mountPath} names no volume ${mount.name}`);
  const propagation: ContainerMount['propagation'] = mount.mountPropagation === 'HostToContainer' || mount.mountPropagation === 'Bidirectional' ? mount.mountPropagation : undefined;
  if (mount.mountPropagation && mount.mountPropagation !== 'None' && !propagation) throw new Error(`container ${container.name}: mountPropagation ${mount.mountPropagation} is not handled here`);
  const base = { containerPath: mount.mountPath, readonly: mount.readOnly ?? false, ...(propagation ? { propagation } : {}) };
  if (volume.hostPath) {
    const path = environment.hostPath(volume.hostPath.path);
    // What kubelet does for the types the manifests use; the others must already be there.
    if (volume.hostPath.type === 'DirectoryOrCreate') mkdirSync(path, { recursive: true });
    else if (volume.hostPath.type === 'FileOrCreate' && !existsSync(path)) {
      mkdirSync(dirname(path), { recursive: true });
      writeFileSync(path, '');
    } else if (!existsSync(path)) throw new Error(`volume ${volume.name}: hostPath ${path} (${volume.hostPath.type ?? 'no type'}) does not exist`);
    return { ...base, hostPath: path };
  }
  if (volume.configMap) {
    const { name = '', items, optional } = volume.configMap;
    const data = environment.configMaps[name];
    if (!data && !optional) throw new Error(`volume ${volume.name}: no ConfigMap ${name}`);
    const dir = join(environment.volumeDir, volume.name);
    mkdirSync(dir, { recursive: true });
    const files = items ?? Object.keys(data ?? {}).map((key) => ({ key, path: key }));
    for (const item of data ? files : []) {
      const text = data![item.key];
      if (text === undefined) throw new Error(`volume ${volume.name}: no key ${item.key} in the ConfigMap ${name}`);
      writeFileSync(join(dir, item.path), text);
    }
    return { ...base, hostPath: dir };
  }
  throw new Error(`volume ${volume.name}: only hostPath and configMap volumes are handled here`);
}
