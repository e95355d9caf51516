// The CNI verbs. Each parses what it needs, asks the agent, and returns what to print (or nothing).
import { CNI_VERSION, CniCode, CniError, formatResult, SUPPORTED_VERSIONS } from '../shared/cni.ts';
import { askAgent } from './agent-client.ts';
import { parseEnv, requireValidNames, type CniEnv, type NetConf } from './config.ts';
import { expectOk } from './errors.ts';
import { hostIfName } from '../shared/names.ts';
import { pendingDelDir, pendingDelFile } from '../shared/protocol.ts';

/** Quick answers: DEL, CHECK, GC and STATUS do not wait for the cloud. */
const QUICK_TIMEOUT_MS = 10_000;

export async function cmdAdd(conf: NetConf, env: NodeJS.ProcessEnv): Promise<object> {
  const cni = parseEnv(env, ['CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME']);
  requireValidNames(cni);
  const answer = expectOk(
    await askAgent(conf.agentSocket, { op: 'add', containerId: cni.containerId, netns: cni.netns, ifName: cni.ifName, pod: podOf(cni) }, conf.addTimeoutMs),
  );
  const a = answer.attachment;
  if (!a) throw new CniError(CniCode.Internal, `the agent answered ADD of ${cni.containerId} without an attachment`);
  // A whole ENI is the pod's interface itself: no host end to name.
  const host = a.hostIf ? [{ name: a.hostIf }] : [];
  return formatResult(
    {
      interfaces: [...host, { name: cni.ifName, mac: a.mac, sandbox: cni.netns }],
      ips: [{ address: `${a.address}/${a.prefix ?? 32}`, gateway: a.gateway, interface: host.length }],
      routes: [{ dst: '0.0.0.0/0', gw: a.gateway }],
      dns: {},
    },
    conf.cniVersion,
  );
}

/**
 * DEL always succeeds when it can: a failing DEL leaves a pod stuck Terminating. A container id or
 * interface name the spec does not allow was never ADDed, so there is nothing to undo. If the agent cannot
 * be reached, the plugin removes the host end of the pod's veth itself (which removes the pod end too) and
 * leaves a note that the agent reads when it is back, to free the address.
 */
export async function cmdDel(conf: NetConf, env: NodeJS.ProcessEnv): Promise<void> {
  const cni = parseEnv(env, ['CNI_CONTAINERID']);
  if (cni.badName) return;
  try {
    expectOk(await askAgent(conf.agentSocket, { op: 'del', containerId: cni.containerId, ifName: cni.ifName, netns: cni.netns }, QUICK_TIMEOUT_MS));
  } catch (err) {
    if (!(err instanceof CniError) || err.code !== CniCode.TryAgainLater) throw err;
    await tearDownWithoutAgent(conf, cni);
  }
}

export async function cmdCheck(conf: NetConf, env: NodeJS.ProcessEnv): Promise<void> {
  const cni = parseEnv(env, ['CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME']);
  requireValidNames(cni);
  const address = prevAddress(conf.prevResult, cni.containerId);
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

/** The address of prevResult's first IP, checked: prevResult is the runtime's, and may be anything. */
function prevAddress(prev: unknown, containerId: string): string | undefined {
  const bad = (what: string) => new CniError(CniCode.InvalidConfig, `CHECK of ${containerId}: ${what}`);
  if (prev === undefined) throw bad('the network configuration has no prevResult');
  if (typeof prev !== 'object' || prev === null || Array.isArray(prev)) throw bad('"prevResult" must be an object');
  const ips = (prev as { ips?: unknown }).ips;
  if (ips === undefined) return undefined;
  if (!Array.isArray(ips)) throw bad('"prevResult.ips" must be a list');
  if (ips.length === 0) return undefined;
  const address = (ips[0] as { address?: unknown } | null)?.address;
  if (typeof address !== 'string') throw bad('"prevResult.ips[0].address" must be a string');
  return address.split('/')[0];
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
  const { existsSync, renameSync, writeFileSync } = process.getBuiltinModule('node:fs');
  // Only the link provably ours: the host end named for this very container and interface, and a veth
  // (deleting it deletes its peer in the pod). Not whatever prevResult names: that may be a node's link.
  const hostIf = hostIfName(cni.containerId, cni.ifName);
  const shown = spawnSync('ip', ['-j', '-d', 'link', 'show', 'dev', hostIf], { encoding: 'utf8' });
  if (shown.status === 0 && isVeth(shown.stdout)) spawnSync('ip', ['link', 'del', hostIf], { stdio: 'ignore' });
  else {
    // A whole-ENI pod (its ADD answered no host interface): the ENI's link goes back to the node before
    // its namespace does, named by its MAC, for the agent to find; only the link of the MAC that answer gave.
    const mac = wholeEniMac(conf.prevResult, cni.ifName);
    const inPod = (...args: string[]) => spawnSync('nsenter', [`--net=${cni.netns}`, 'ip', ...args], { encoding: 'utf8' });
    if (mac && cni.netns && inPod('-j', 'link', 'show', 'dev', cni.ifName).stdout?.toLowerCase().includes(`"address":"${mac}"`)) {
      inPod('link', 'set', 'dev', cni.ifName, 'down');
      inPod('link', 'set', 'dev', cni.ifName, 'netns', String(process.pid), 'name', `d${mac.replace(/:/g, '')}`);
    }
  }
  // The agent makes this directory when it starts: without it, no agent ever held an address here.
  if (!existsSync(pendingDelDir(conf.agentSocket))) return;
  // Written whole, then renamed, so that the agent never reads half a note.
  const note = pendingDelFile(conf.agentSocket, cni.containerId, cni.ifName);
  writeFileSync(`${note}.tmp`, JSON.stringify({ containerId: cni.containerId, ifName: cni.ifName, at: Date.now() }));
  renameSync(`${note}.tmp`, note);
}

/** The MAC of the pod interface `ifName` when prevResult is a whole-ENI pod's (every interface in the sandbox, none on the host). */
export function wholeEniMac(prevResult: unknown, ifName: string): string | undefined {
  const interfaces = (prevResult as { interfaces?: unknown } | undefined)?.interfaces;
  if (!Array.isArray(interfaces) || interfaces.length === 0) return undefined;
  const all = interfaces as Array<{ name?: unknown; mac?: unknown; sandbox?: unknown }>;
  if (all.some((i) => typeof i?.sandbox !== 'string' || i.sandbox === '')) return undefined;
  const mac = all.find((i) => i.name === ifName)?.mac;
  return typeof mac === 'string' && /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/i.test(mac) ? mac.toLowerCase() : undefined;
}

function isVeth(ipJson: string): boolean {
  try {
    return (JSON.parse(ipJson) as Array<{ linkinfo?: { info_kind?: string } }>)[0]?.linkinfo?.info_kind === 'veth';
  } catch {
    return false;
  }
}
