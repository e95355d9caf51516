// The CVM metadata service (http://metadata.tencentyun.com/latest/meta-data/), one view per instance.
// An instance is known by the address a request comes from (its primary private address, as on a real
// CVM), or, for callers on loopback, by a path prefix: /instances/<instance-id>/latest/meta-data/...
import type { IncomingMessage, ServerResponse } from 'node:http';
import { cidrContains, formatCidr, nthAddress, prefixMask, intToIp } from '../../shared/ip.ts';
import type { KeyStore } from './auth.ts';
import type { CloudModel, Instance } from './model.ts';

const PREFIX = '/latest/meta-data/';

export class MetadataHandler {
  constructor(
    private readonly model: CloudModel,
    private readonly keys: KeyStore,
  ) {}

  handle(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://metadata');
    let path = decodeURIComponent(url.pathname);
    let instance: Instance | undefined;
    const explicit = /^\/instances\/([^/]+)(\/.*)$/.exec(path);
    if (explicit) {
      instance = this.model.instances.get(explicit[1]!);
      path = explicit[2]!;
    } else {
      const from = (req.socket.remoteAddress ?? '').replace(/^::ffff:/, '');
      instance = [...this.model.instances.values()].find((i) => i.spec.privateIp === from);
    }
    if (!instance) return reply(res, 404, 'no instance is known at this address; loopback callers use /instances/<instance-id>/latest/meta-data/');
    if (req.method !== 'GET') return reply(res, 405, 'the metadata service answers GET only');
    if (!path.startsWith(PREFIX) && `${path}/` !== PREFIX) return reply(res, 404, `${path} is not a metadata path`);
    const answer = this.lookup(instance, path.slice(PREFIX.length).replace(/\/+$/, ''));
    if (answer === undefined) return reply(res, 404, `${path} is not a metadata path`);
    reply(res, 200, answer);
  }

  private lookup(instance: Instance, key: string): string | undefined {
    const { spec } = instance;
    const { model } = this;
    const primary = model.eni(instance.primaryEniId);
    const fixed: Record<string, string> = {
      '': ['instance-id', 'instance-name', 'uuid', 'mac', 'local-ipv4', 'public-ipv4', 'placement/', 'network/', 'cam/'].join('\n'),
      'instance-id': spec.id,
      'instance-name': spec.name,
      uuid: spec.id,
      mac: primary.mac,
      'local-ipv4': spec.privateIp,
      'public-ipv4': spec.publicIp ?? '',
      placement: 'region\nzone',
      'placement/region': model.world.region,
      'placement/zone': spec.zone,
      network: 'interfaces/',
      'network/interfaces': 'macs/',
      cam: 'security-credentials/',
      'cam/security-credentials': spec.role ?? '',
    };
    if (key in fixed) return fixed[key];
    if (spec.role && key === `cam/security-credentials/${spec.role}`) {
      return JSON.stringify({ ...this.keys.issueTemporary(), Code: 'Success' });
    }
    const enis = model.enisOf(spec.id).filter((e) => e.state === 'AVAILABLE');
    if (key === 'network/interfaces/macs') return enis.map((e) => `${e.mac}/`).join('\n');
    const m = /^network\/interfaces\/macs\/([0-9a-f:]{17})(?:\/(.*))?$/.exec(key);
    const eni = m && enis.find((e) => e.mac === m[1]);
    if (!m || !eni) return undefined;
    const subnet = model.subnet(eni.subnetId);
    const addresses = eni.ips.filter((ip) => ip.state === 'AVAILABLE');
    const perMac: Record<string, string> = {
      '': ['local-ipv4s/', 'primary-local-ipv4', 'vpc-id', 'subnet-id', 'vpc-cidr-block', 'subnet-cidr-block', 'eni-id'].join('\n'),
      'local-ipv4s': addresses.map((ip) => ip.address).join('\n'),
      'primary-local-ipv4': eni.ips.find((ip) => ip.primary)?.address ?? '',
      'vpc-id': model.world.vpc.id,
      'subnet-id': eni.subnetId,
      'vpc-cidr-block': formatCidr(model.vpcCidr),
      'subnet-cidr-block': formatCidr(subnet.cidr),
      'eni-id': eni.id,
    };
    const sub = m[2] ?? '';
    if (sub in perMac) return perMac[sub];
    const ipKey = /^local-ipv4s\/([\d.]+)(?:\/(gateway|netmask|public-ipv4))?$/.exec(sub);
    if (!ipKey || !addresses.some((ip) => ip.address === ipKey[1]) || !cidrContains(subnet.cidr, ipKey[1]!)) return undefined;
    const eip = [...model.eips.values()].find((e) => e.eniId === eni.id && e.privateIp === ipKey[1] && e.status === 'BIND');
    const perIp: Record<string, string> = {
      '': 'gateway\nnetmask\npublic-ipv4',
      gateway: nthAddress(subnet.cidr, 1),
      netmask: intToIp(prefixMask(subnet.cidr.prefix)),
      'public-ipv4': eip?.ip ?? '',
    };
    return perIp[ipKey[2] ?? ''];
  }
}

function reply(res: ServerResponse, status: number, text: string): void {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8' });
  res.end(text);
}
