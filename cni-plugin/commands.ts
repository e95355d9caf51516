// The CNI verbs. Each parses what it needs, asks the agent, and returns what to print (or nothing).
import { CNI_VERSION, CniCode, CniError, formatResult, SUPPORTED_VERSIONS } from '../shared/cni.ts';
import { askAgent } from './agent-client.ts';
import { parseEnv, type CniEnv, type NetConf } from './config.ts';
import { expectOk } from './errors.ts';
import { pendingDelDir, pendingDelFile } from '../shared/protocol.ts';

/** Quick answers: DEL, CHECK, GC and STATUS do not wait for the cloud. */
const QUICK_TIMEOUT_MS = 10_000;

export async function cmdAdd(conf: NetConf, env: NodeJS.ProcessEnv): Promise<object> {
  const cni = parseEnv(env, ['CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME']);
  const answer = expectOk(
    await askAgent(conf.agentSocket, { op: 'add', containerId: cni.containerId, netns: cni.netns, ifName: cni.ifName, pod: podOf(cni) }, conf.addTimeoutMs),
  );
  const a = answer.attachment;
  if (!a) throw new CniError(CniCode.Internal, `the agent answered ADD of ${cni.containerId} without an attachment`);
  return formatResult(
    {
      interfaces: [{ name: a.hostIf }, { name: cni.ifName, mac: a.mac, sandbox: cni.netns }],
      ips: [{ address: `${a.address}/32`, gateway: a.gateway, interface: 1 }],
      routes: [{ dst: '0.0.0.0/0', gw: a.gateway }],
      dns: {},
    },
    conf.cniVersion,
  );
}

/**
 * DEL always succeeds when it can: a failing DEL leaves a pod stuck Terminating. If the agent cannot be
 * reached, the plugin removes the host end of the pod's veth itself (which removes the pod end too) and
 * leaves a note that the agent reads when it is back, to free the address.
 */
export async function cmdDel(conf: NetConf, env: NodeJS.ProcessEnv): Promise<void> {
  const cni = parseEnv(env, ['CNI_CONTAINERID']);
  try {
    expectOk(await askAgent(conf.agentSocket, { op: 'del', containerId: cni.containerId, ifName: cni.ifName, netns: cni.netns }, QUICK_TIMEOUT_MS));
  } catch (err) {
    if (!(err instanceof CniError) || err.code !== CniCode.TryAgainLater) throw err;
    await tearDownWithoutAgent(conf, cni);
  }
}

export async function cmdCheck(conf: NetConf, env: NodeJS.ProcessEnv): Promise<void> {
  const cni = parseEnv(env, ['CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME']);
  if (!conf.prevResult) throw new CniError(CniCode.InvalidConfig, `CHECK of ${cni.containerId} needs prevResult in the network configuration`);
  const address = conf.prevResult.ips?.[0]?.address?.split('/')[0];
  expectOk(await askAgent(conf.agentSocket, { op: 'check', containerId: cni.containerId, ifName: cni.ifName, netns: cni.netns, address }, QUICK_TIMEOUT_MS));
}

export async function cmdGc(conf: NetConf): Promise<void> {
  if (!conf.validAttachments) throw new CniError(CniCode.InvalidConfig, 'GC needs "cni.dev/valid-attachments" in the network configuration');
  expectOk(await askAgent(conf.agentSocket, { op: 'gc', valid: conf.validAttachments }, QUICK_TIMEOUT_MS));
}

export async function cmdStatus(conf: NetConf): Promise<void> {
  let answer;
  try {
    answer = expectOk(await askAgent(conf.agentSocket, { op: 'status' }, QUICK_TIMEOUT_MS));
  } catch (err) {
    throw new CniError(CniCode.NotAvailable, (err as Error).message);
  }
  if (answer.ready !== true) throw new CniError(CniCode.NotAvailable, `the agent at ${conf.agentSocket} cannot serve ADDs yet`);
}

export function cmdVersion(): object {
  return { cniVersion: CNI_VERSION, supportedVersions: SUPPORTED_VERSIONS };
}

function podOf(cni: CniEnv) {
  const { K8S_POD_NAMESPACE: namespace, K8S_POD_NAME: name, K8S_POD_UID: uid } = cni.args;
  return namespace && name ? { namespace, name, ...(uid ? { uid } : {}) } : undefined;
}

/**
 * The rare path: its modules load only when the agent cannot be reached, so ADD does not pay for them.
 * process.getBuiltinModule works in the standalone executable, where dynamic import() does not.
 */
async function tearDownWithoutAgent(conf: NetConf, cni: CniEnv): Promise<void> {
  const { spawnSync } = process.getBuiltinModule('node:child_process');
  const { mkdirSync, renameSync, writeFileSync } = process.getBuiltinModule('node:fs');
  for (const iface of conf.prevResult?.interfaces ?? []) {
    // The host end is the interface without a sandbox; deleting it deletes its peer in the pod.
    if (!iface.sandbox && /^[\w.-]{1,15}$/.test(iface.name)) spawnSync('ip', ['link', 'del', iface.name], { stdio: 'ignore' });
  }
  mkdirSync(pendingDelDir(conf.agentSocket), { recursive: true });
  // Written whole, then renamed, so that the agent never reads half a note.
  const note = pendingDelFile(conf.agentSocket, cni.containerId, cni.ifName);
  writeFileSync(`${note}.tmp`, JSON.stringify({ containerId: cni.containerId, ifName: cni.ifName, at: Date.now() }));
  renameSync(`${note}.tmp`, note);
}
