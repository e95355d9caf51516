// `eni-cnictl doctor`: one pod's whole path, from its interface out to the cloud and its claims, each
// link compared with what the agent planned for it. Every finding says in plain words what was found and
// the command that shows it by hand; the first broken link is the answer.
import type { EipClaim } from './k8s/eip-claims.ts';
import type { VpcIp, VpcIpClaim } from './k8s/claims.ts';
import type { NetnsProblem } from './datapath/linux.ts';
import { MARK_CHAIN, MASQ_JUMPS } from './datapath/masq.ts';
import { POD_GATEWAY, RULE_PREF } from './datapath/plan.ts';
import { ipIn } from './datapath/probe.ts';
import type { Probe } from './datapath/probe.ts';
import type { Allocation, PoolEni } from './pool/store.ts';
import type { CloudEniFact } from './supply/supply.ts';

export interface Finding {
  /** which link of the path: "pod interface", "host route", ... */
  check: string;
  ok: boolean;
  says: string;
  /** the command that shows this link by hand */
  command: string;
}

export interface Diagnosis {
  /** the pod as asked for, or as the agent knows it */
  pod: string;
  address?: string;
  eniId?: string;
  findings: Finding[];
  /** the first finding that is not ok */
  broken?: Finding;
}

export interface DoctorSources {
  allocations(): Allocation[];
  eni(eniId: string): PoolEni | undefined;
  probe: Probe;
  netnsProblem(netns: string): NetnsProblem | undefined;
  /** addresses exempted from masquerade (pods with an EIP) */
  exempted(): string[];
  cloudEni(eniId: string): Promise<CloudEniFact | undefined>;
  /** with an API server: the pod's claims, and the VpcIP of an address */
  claims?: {
    vpcIpClaim(namespace: string, name: string): Promise<VpcIpClaim | undefined>;
    vpcIp(address: string): Promise<VpcIp | undefined>;
    eipClaim(namespace: string, name: string): Promise<EipClaim | undefined>;
  };
  nodeName?: string | undefined;
}

const nameOf = (a: Allocation) => (a.pod ? `${a.pod.namespace}/${a.pod.name}` : `container ${a.containerId.slice(0, 12)}`);

/** The pods the agent holds an address for (reservations of absent pods left out). */
export function doctorTargets(sources: DoctorSources): string[] {
  return sources.allocations().filter((a) => !a.reserved).map((a) => a.pod ? `${a.pod.namespace}/${a.pod.name}` : a.containerId);
}

/** Finds the allocation `query` names: `namespace/name`, a name in `default`, an address or a container id. */
function find(sources: DoctorSources, query: string): Allocation | undefined {
  const pods = sources.allocations().filter((a) => !a.reserved);
  const [namespace, name] = query.includes('/') ? query.split('/', 2) : ['default', query];
  return (
    pods.find((a) => a.pod?.namespace === namespace && a.pod?.name === name) ??
    pods.find((a) => a.address === query) ??
    pods.find((a) => query.length >= 6 && a.containerId.startsWith(query))
  );
}

export async function diagnose(sources: DoctorSources, query: string): Promise<Diagnosis> {
  const a = find(sources, query);
  if (!a) {
    const [namespace, name] = query.includes('/') ? query.split('/', 2) : ['default', query];
    const reserved = sources.allocations().find((r) => r.reserved && r.claim?.namespace === namespace && r.claim?.name === name);
    const says = reserved
      ? `${query} has no pod on this node; its fixed address ${reserved.address} is reserved here for it (VpcIPClaim ${namespace}/${name})`
      : `the agent on this node holds no address for ${query} (is the pod on this node? did its ADD fail? see its events)`;
    const finding = { check: 'address', ok: false, says, command: 'eni-cnictl status' };
    return { pod: query, findings: [finding], broken: finding };
  }
  if (a.direct) {
    const findings = [...(await wholeEni(sources, a, a.direct)), ...(await claims(sources, a))];
    const broken = findings.find((f) => !f.ok);
    return { pod: nameOf(a), address: a.address, eniId: a.eniId, findings, ...(broken ? { broken } : {}) };
  }
  const findings = [...(await podSide(sources, a)), ...(await hostSide(sources, a)), ...(await eniSide(sources, a)), await masquerade(sources, a), await cloud(sources, a), ...(await claims(sources, a))];
  const broken = findings.find((f) => !f.ok);
  return { pod: nameOf(a), address: a.address, eniId: a.eniId, findings, ...(broken ? { broken } : {}) };
}

/** A whole-ENI pod: its ENI is its interface (found by MAC), addressed in its subnet, routed by the subnet's gateway; nothing of it is on the node. */
async function wholeEni(s: DoctorSources, a: Allocation, d: NonNullable<Allocation['direct']>): Promise<Finding[]> {
  const inPod = ipIn(a.netns).join(' ');
  const problem = s.netnsProblem(a.netns);
  const namespace = { check: 'pod namespace', ok: !problem, says: problem ? `CNI_NETNS ${problem.why}` : `${a.netns} is a network namespace`, command: `ls -l ${a.netns}` };
  if (problem) return [namespace];
  const link = await s.probe.link(a.ifName, a.netns);
  const cidr = `${a.address}/${d.prefix}`;
  const iface = !link
    ? { ok: false, says: `there is no ${a.ifName} in the pod's namespace: ${a.eniId} (${d.mac}) is not its interface` }
    : link.mac.toLowerCase() !== d.mac.toLowerCase()
      ? { ok: false, says: `${a.ifName} in the pod's namespace is not ${a.eniId}: its MAC is ${link.mac}, the ENI's ${d.mac}` }
      : !link.up
        ? { ok: false, says: `${a.ifName} (${a.eniId}) in the pod's namespace is down` }
        : !link.addresses.includes(cidr)
          ? { ok: false, says: `${a.ifName} (${a.eniId}) in the pod's namespace does not have ${cidr} (has ${link.addresses.join(', ') || 'no address'})` }
          : { ok: true, says: `${a.ifName} is ${a.eniId}, up with ${cidr}` };
  const routes = await s.probe.routes('main', a.netns);
  const viaGateway = routes.some((r) => r.dst === 'default' && r.gateway === d.gateway && r.dev === a.ifName);
  return [
    namespace,
    { check: 'pod interface', ...iface, command: `${inPod} address show dev ${a.ifName}` },
    {
      check: 'pod default route',
      ok: viaGateway,
      says: viaGateway ? `the pod's default route is via the subnet's gateway ${d.gateway} on ${a.ifName}` : `the pod has no default route via ${d.gateway} on ${a.ifName}`,
      command: `${inPod} route show`,
    },
  ];
}

async function podSide(s: DoctorSources, a: Allocation): Promise<Finding[]> {
  const inPod = ipIn(a.netns).join(' ');
  const problem = s.netnsProblem(a.netns);
  const namespace = { check: 'pod namespace', ok: !problem, says: problem ? `CNI_NETNS ${problem.why}` : `${a.netns} is a network namespace`, command: `ls -l ${a.netns}` };
  if (problem) return [namespace];
  const link = await s.probe.link(a.ifName, a.netns);
  const command = `${inPod} address show dev ${a.ifName}`;
  const iface = !link
    ? { ok: false, says: `there is no ${a.ifName} in the pod's namespace` }
    : !link.up
      ? { ok: false, says: `${a.ifName} in the pod's namespace is down` }
      : !link.addresses.includes(`${a.address}/32`)
        ? { ok: false, says: `${a.ifName} in the pod's namespace does not have ${a.address}/32 (has ${link.addresses.join(', ') || 'no address'})` }
        : { ok: true, says: `${a.ifName} is up with ${a.address}/32` };
  const routes = await s.probe.routes('main', a.netns);
  const viaGateway = routes.some((r) => r.dst === 'default' && r.gateway === POD_GATEWAY && r.dev === a.ifName);
  return [
    namespace,
    { check: 'pod interface', ...iface, command },
    {
      check: 'pod default route',
      ok: viaGateway,
      says: viaGateway ? `the pod's default route is via ${POD_GATEWAY} on ${a.ifName}` : `the pod has no default route via ${POD_GATEWAY} on ${a.ifName}`,
      command: `${inPod} route show`,
    },
  ];
}

async function hostSide(s: DoctorSources, a: Allocation): Promise<Finding[]> {
  const veth = await s.probe.link(a.hostIf);
  const routes = await s.probe.routes('main');
  const route = routes.find((r) => r.dst === a.address || r.dst === `${a.address}/32`);
  const rules = await s.probe.rules();
  const toPod = rules.some((r) => r.priority === RULE_PREF.toPod && (r.dst === a.address || r.dst === `${a.address}/32`) && r.table === 'main');
  const fromPod = rules.some((r) => r.priority === RULE_PREF.fromPod && (r.src === a.address || r.src === `${a.address}/32`) && r.table === String(a.table));
  return [
    {
      check: 'host interface',
      ok: veth?.up === true,
      says: !veth ? `the pod's host interface ${a.hostIf} is missing` : veth.up ? `${a.hostIf} is up` : `the pod's host interface ${a.hostIf} is down`,
      command: `ip link show dev ${a.hostIf}`,
    },
    {
      check: 'host route',
      ok: route?.dev === a.hostIf,
      says: !route ? `no route on the node sends ${a.address} to ${a.hostIf}` : route.dev === a.hostIf ? `${a.address} is routed to ${a.hostIf}` : `${a.address} is routed to ${route.dev ?? route.gateway}, not to the pod's ${a.hostIf}`,
      command: `ip route show ${a.address}`,
    },
    {
      check: 'rule to the pod',
      ok: toPod,
      says: toPod ? `pref ${RULE_PREF.toPod}: to ${a.address} lookup main` : `the rule "to ${a.address} lookup main" (pref ${RULE_PREF.toPod}) is missing: traffic to the pod may follow another table`,
      command: `ip rule show pref ${RULE_PREF.toPod}`,
    },
    {
      check: 'rule from the pod',
      ok: fromPod,
      says: fromPod ? `pref ${RULE_PREF.fromPod}: from ${a.address} lookup ${a.table}` : `the rule "from ${a.address} lookup ${a.table}" (pref ${RULE_PREF.fromPod}) is missing: the pod's traffic does not leave by its ENI ${a.eniId}`,
      command: `ip rule show from ${a.address}`,
    },
  ];
}

async function eniSide(s: DoctorSources, a: Allocation): Promise<Finding[]> {
  const eni = s.eni(a.eniId);
  if (!eni) return [{ check: 'ENI link', ok: false, says: `${a.address}'s ENI ${a.eniId} is not in this node's pool (detached, or not taken over yet)`, command: 'eni-cnictl status' }];
  const link = await s.probe.linkByMac(eni.mac);
  const linkFinding: Finding = {
    check: 'ENI link',
    ok: link?.up === true,
    says: !link ? `no link on the node has ${a.eniId}'s MAC ${eni.mac} (not attached to this instance?)` : link.up ? `${a.eniId} is ${link.name}, up` : `${a.eniId}'s link ${link.name} is down`,
    command: link ? `ip link show dev ${link.name}` : 'ip link show',
  };
  const routes = await s.probe.routes(String(a.table));
  const dev = link?.name ?? eni.ifName;
  const viaGateway = routes.some((r) => r.dst === 'default' && r.gateway === eni.gateway && r.dev === dev);
  return [
    linkFinding,
    {
      check: 'ENI table',
      ok: viaGateway,
      says: viaGateway ? `table ${a.table}: default via ${eni.gateway} dev ${dev}` : `table ${a.table} has no default route via ${eni.gateway} dev ${dev}: the pod's traffic has nowhere to go`,
      command: `ip route show table ${a.table}`,
    },
  ];
}

async function masquerade(s: DoctorSources, a: Allocation): Promise<Finding> {
  const chain = await s.probe.iptables('mangle', MARK_CHAIN);
  const command = `iptables -t mangle -S ${MARK_CHAIN}`;
  if (a.eip) {
    const exempt = s.exempted().includes(a.address) && chain.some((l) => l.includes(`-s ${a.address}/32`) && l.endsWith('-j RETURN'));
    return {
      check: 'EIP exemption',
      ok: exempt,
      says: exempt ? `${a.address} is exempt from masquerade: its traffic leaves with its EIP` : `${a.address} has an EIP but is not exempt from masquerade: its traffic leaves with the node's address`,
      command,
    };
  }
  const jump = MASQ_JUMPS[0]!;
  const jumps = (await s.probe.iptables(jump.table, jump.chain)).some((l) => l.includes(`-j ${MARK_CHAIN}`));
  const marks = chain.some((l) => l.includes('-j MARK'));
  return {
    check: 'masquerade',
    ok: jumps && marks,
    says: jumps && marks ? `traffic to outside the VPC is masqueraded by the node (${MARK_CHAIN})` : `the masquerade rules are not in place (${jumps ? `${MARK_CHAIN} marks nothing` : `no jump from ${jump.chain} to ${MARK_CHAIN}`}): the pod's traffic outside the VPC leaves with an address the internet cannot answer`,
    command: jumps ? command : `iptables -t ${jump.table} -S ${jump.chain}`,
  };
}

async function cloud(s: DoctorSources, a: Allocation): Promise<Finding> {
  let fact: CloudEniFact | undefined;
  try {
    fact = await s.cloudEni(a.eniId);
  } catch (err) {
    return { check: 'cloud', ok: false, says: `cannot ask the cloud about ${a.eniId}: ${(err as Error).message}`, command: `tccli vpc DescribeNetworkInterfaces --NetworkInterfaceIds '["${a.eniId}"]'` };
  }
  if (!fact) return { check: 'cloud', ok: false, says: `${a.eniId} is not attached to this node, by the cloud's word`, command: `tccli vpc DescribeNetworkInterfaces --NetworkInterfaceIds '["${a.eniId}"]'` };
  const there = fact.secondaryIps.includes(a.address);
  return {
    check: 'cloud',
    ok: there,
    says: there ? `${a.address} is on ${a.eniId} in ${fact.source}` : `${a.address} is not on ${a.eniId} in ${fact.source}: the VPC drops the pod's traffic`,
    command: fact.command,
  };
}

async function claims(s: DoctorSources, a: Allocation): Promise<Finding[]> {
  if (!s.claims || !a.pod) return [];
  const { namespace, name } = a.pod;
  const findings: Finding[] = [];
  const claim = await s.claims.vpcIpClaim(namespace, name).catch(() => undefined);
  if (claim) {
    const st = claim.status ?? {};
    const right = st.phase === 'Bound' && st.ip === a.address && (!s.nodeName || st.nodeName === s.nodeName);
    findings.push({
      check: 'VpcIPClaim',
      ok: right,
      says: right ? `claim ${namespace}/${name} is Bound to ${a.address} on ${st.nodeName}` : `claim ${namespace}/${name} says ${st.phase ?? 'nothing yet'}${st.ip ? ` ${st.ip}` : ''}${st.nodeName ? ` on ${st.nodeName}` : ''}, not Bound to ${a.address} on ${s.nodeName ?? 'this node'}${st.message ? `: ${st.message}` : ''}`,
      command: `kubectl -n ${namespace} get vipc ${name} -o yaml`,
    });
    if (claim.spec.deletePolicy === 'Never') {
      const vip = await s.claims.vpcIp(a.address).catch(() => undefined);
      const attached = vip?.status?.phase === 'Attached' && (!s.nodeName || vip.status.nodeName === s.nodeName);
      findings.push({
        check: 'VpcIP',
        ok: attached,
        says: attached ? `VpcIP ${a.address} is Attached on ${vip!.status!.nodeName}` : !vip ? `there is no VpcIP ${a.address}` : `VpcIP ${a.address} is ${vip.status?.phase ?? 'without status'}${vip.status?.nodeName ? ` on ${vip.status.nodeName}` : ''}${vip.status?.message ? `: ${vip.status.message}` : ''}`,
        command: `kubectl get vip ${a.address} -o yaml`,
      });
    }
  }
  if (a.eip) {
    const eip = await s.claims.eipClaim(namespace, name).catch(() => undefined);
    const bound = eip?.status?.phase === 'Bound' && eip.status.boundIP === a.address;
    findings.push({
      check: 'EIPClaim',
      ok: bound,
      says: bound ? `EIP ${eip!.status!.eipId} (${eip!.status!.publicIP}) is bound to ${a.address}` : !eip ? `the pod has an EIP but no EIPClaim ${namespace}/${name}` : `EIPClaim ${namespace}/${name} is ${eip.status?.phase ?? 'without status'}, not bound to ${a.address}${eip.status?.message ? `: ${eip.status.message}` : ''}`,
      command: `kubectl -n ${namespace} get eipc ${name} -o yaml`,
    });
  }
  return findings;
}
