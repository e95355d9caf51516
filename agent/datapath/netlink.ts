// The one executor of the datapath: plan.ts's objects applied, removed and read back over netlink, in the
// agent's own process. The agent's namespace has a socket of its own; a pod's gets one opened inside it (a
// socket stays in the namespace it was made in; Node has no setns, so the native addon, native/netns.c,
// gives one). A pod's side of its ADD goes as one batch answered on a worker thread (applyIn), while the
// main thread does the node's side.
// The two requests the kernel carries out slowly inside sendmsg() (deleting a veth, moving a link between
// namespaces: 20-30 ms) are waited for on a worker thread of the addon's, so no other pod waits with them.
import { closeSync, openSync } from 'node:fs';
import type * as Netlink from 'netlink';
import { constants } from 'node:os';
import pLimit from 'p-limit';
import { loadNative } from './native/load.ts';
import { describe, type NetObject, type Veth } from './plan.ts';

const AF_INET = 2;
/** A rule's table above 255 goes in its FRA_TABLE attribute; the header then says RT_TABLE_COMPAT. */
const COMPAT_TABLE = 252;
/** rtm_flags' RTNH_F_ONLINK, which the package has no name for. */
const ONLINK = 4;
/**
 * No request waits longer than this: an answer the kernel dropped (a receive buffer overrun in a burst) must
 * fail the pod's ADD or DEL, not hold its lock forever.
 */
const REQUEST_TIMEOUT_MS = 10_000;
const WITHIN = { timeout: REQUEST_TIMEOUT_MS };
/**
 * At most this many requests wait for their answers on one socket. The kernel queues every answer on the
 * socket until the agent reads it, and past the receive buffer (212 KB by default: about 100 link answers,
 * 300 acknowledgements) it drops them and flags the socket, on which the netlink package aborts the whole
 * process. A burst of pods (a node filling, kubelet retrying after a restart) sends that many at once.
 */
const IN_FLIGHT = 32;
/** Slow requests (a veth's deletion, a link's move: 20-30 ms each) on worker threads at once, at most. */
const SLOW_AT_ONCE = 2;
const FR_ACT_TO_TBL = 1;
const RTN_UNICAST = 1;
const NLM_F_REQUEST = 1;
const NLM_F_ACK = 4;
const RTM_NEWLINK = 16;
const RTM_DELLINK = 17;
/** What a teardown finds already gone: fine. */
const GONE = /\b(ENOENT|ESRCH|ENODEV|EADDRNOTAVAIL)\b/;

const ipv4 = (address: string) => Buffer.from(address.split('.').map(Number));
const ipText = (b: Buffer | undefined) => (b && b.length === 4 ? [...b].join('.') : '0.0.0.0');
const macBytes = (mac: string) => Buffer.from(mac.replace(/:/g, ''), 'hex');
const macText = (b: Buffer | undefined) => (b ? [...b].map((x) => x.toString(16).padStart(2, '0')).join(':') : '');

interface Native {
  setns(fd: number): void;
  socket(): number;
  indexOf(name: string): number;
  request(fd: number, messages: Buffer): Promise<number[]>;
}

export interface LinkInfo {
  index: number;
  name: string;
  mac: string;
  up: boolean;
}

export type Kind = NetObject['kind'];

/** One namespace's netlink socket: the agent's own, or a pod's for the length of a `NetlinkDatapath.in`. */
export class Namespace {
  /** the dump under way, if any: the kernel refuses a second on the same socket (EBUSY) */
  private dumping: Promise<unknown> = Promise.resolve();
  /** the requests waiting for their answers (IN_FLIGHT) */
  private readonly inFlight = pLimit(IN_FLIGHT);
  /**
   * Every request's options. The socket's own port is given, since the package would otherwise ask the
   * kernel for it (getsockname) on every request.
   */
  private readonly options: { timeout: number; localPort: number };

  constructor(
    private readonly nl: typeof Netlink,
    readonly socket: Netlink.RtNetlinkSocket,
    /** the namespace, in messages: "the node", or the pod's netns path */
    readonly where: string,
    /** the index of a link of this namespace by its name, 0 when there is none */
    private readonly indexOf: (name: string) => number,
    /**
     * Where dumps go, when requests may be under way meanwhile (the agent's namespace, where pods come and go
     * at once): the package reads a dump's parts as one stream, which another request's answer would cut.
     */
    private readonly dumps: Netlink.RtNetlinkSocket = socket,
  ) {
    // The package reports a socket's own failures (ENOBUFS) as an 'error' event: unheard, it would end the
    // agent. The requests in flight then time out and fail (WITHIN), each naming its pod.
    for (const s of new Set([socket, dumps])) s.socket.on('error', (err: Error) => process.stderr.write(`eni-agent: netlink socket in ${where}: ${err.message}\n`));
    this.options = { ...WITHIN, localPort: socket.socket.address().port };
  }

  close(): void {
    this.socket.socket.close();
    if (this.dumps !== this.socket) this.dumps.socket.close();
  }

  /** Every link of the namespace. */
  links(): Promise<LinkInfo[]> {
    return this.dump((s) => s.getLinks(undefined, undefined, WITHIN)).then((all) =>
      all.map((l) => ({ index: l.data.index ?? 0, name: l.attrs.ifname ?? '', mac: macText(l.attrs.address), up: l.data.flags?.up === true })),
    );
  }

  async linkByMac(mac: string): Promise<LinkInfo | undefined> {
    const want = mac.toLowerCase();
    return (await this.links()).find((l) => l.mac === want);
  }

  /**
   * The objects of `kinds` the kernel has here, as plan.ts writes them (only what a plan could say: unicast
   * routes, rules that only look up a table from or to one address), and the links they are on.
   */
  async read(kinds: readonly Kind[]): Promise<{ objects: NetObject[]; links: LinkInfo[] }> {
    const links = await this.links();
    const name = new Map(links.map((l) => [l.index, l.name]));
    const objects: NetObject[] = [];
    if (kinds.includes('up')) for (const l of links) if (l.up) objects.push({ kind: 'up', dev: l.name });
    if (kinds.includes('address')) {
      for (const a of await this.dump((s) => s.getAddresses({ family: AF_INET }, undefined, WITHIN))) {
        objects.push({ kind: 'address', dev: name.get(a.data.index ?? 0) ?? '', local: ipText(a.attrs.local ?? a.attrs.address), prefix: a.data.prefixlen ?? 0 });
      }
    }
    if (kinds.includes('route')) {
      for (const r of await this.dump((s) => s.getRoutes({ family: AF_INET }, undefined, WITHIN))) {
        if (r.data.type !== RTN_UNICAST && r.data.type !== 'UNICAST') continue;
        const via = r.attrs.gateway ? ipText(r.attrs.gateway) : undefined;
        const onlink = ((r.data.flags?.__unknown ?? 0) & ONLINK) !== 0;
        objects.push({ kind: 'route', table: r.attrs.table ?? r.data.table ?? 0, dst: ipText(r.attrs.dst), prefix: r.data.dstLen ?? 0, dev: name.get(r.attrs.oif ?? 0) ?? '', ...(via ? { via } : {}), ...(onlink ? { onlink } : {}) });
      }
    }
    if (kinds.includes('rule')) {
      for (const r of await this.dump((s) => s.getRules({ family: AF_INET }, undefined, WITHIN))) {
        const plain = r.attrs.fwmark === undefined && !r.attrs.iifname && !r.attrs.oifname && !r.data.flags?.invert && !r.data.tos && r.attrs.ipProto === undefined && (r.data.action === FR_ACT_TO_TBL || r.data.action === 'toTbl');
        const lens = [r.data.srcLen ?? 0, r.data.dstLen ?? 0];
        if (!plain || lens.some((n) => n !== 0 && n !== 32)) continue;
        objects.push({
          kind: 'rule',
          priority: r.attrs.priority ?? 0,
          table: r.attrs.table ?? r.data.table ?? 0,
          ...(r.data.srcLen ? { src: ipText(r.attrs.src) } : {}),
          ...(r.data.dstLen ? { dst: ipText(r.attrs.dst) } : {}),
        });
      }
    }
    if (kinds.includes('neigh')) {
      for (const n of await this.dump((s) => s.getNeighbors({ family: AF_INET }, undefined, WITHIN))) {
        if (n.attrs.lladdr) objects.push({ kind: 'neigh', dev: name.get(n.data.ifindex ?? 0) ?? '', ip: ipText(n.attrs.dst), mac: macText(n.attrs.lladdr) });
      }
    }
    return { objects, links };
  }

  /**
   * Makes `objects` so, in order: sent together, the kernel carries out one socket's requests in order, so
   * each finds the ones before it done (the default route its gateway's route), and the first failure is
   * the one reported. What is there already as planned is fine (routes, addresses and neighbours are
   * replaced; an identical rule is there already).
   */
  async apply(objects: readonly NetObject[], about: string): Promise<void> {
    const index = this.indexes(objects);
    const missing = [...new Set(objects.flatMap((o) => (o.kind !== 'rule' && !index.has(o.dev) ? [o.dev] : [])))];
    if (missing.length > 0) throw new Error(`finding ${missing.join(', ')} in ${this.where} (${about}): not there`);
    // A rule cannot be replaced, only added again: one identical to it (EEXIST) is the one wanted.
    await Promise.all(objects.map((o) => this.step(`adding ${describe(o)}`, about, () => this.add(o, o.kind === 'rule' ? 0 : index.get(o.dev)!), (m) => /\bEEXIST\b/.test(m), o.kind === 'rule')));
  }

  /** Removes `objects`; what is gone already is fine (an object on a link that is gone went with it). */
  async remove(objects: readonly NetObject[], about: string): Promise<void> {
    const index = this.indexes(objects);
    const present = objects.filter((o) => o.kind === 'rule' || index.has(o.dev));
    await Promise.all(present.map((o) => this.step(`removing ${describe(o)}`, about, () => this.del(o, o.kind === 'rule' ? 0 : index.get(o.dev)!), (m) => GONE.test(m), true)));
  }

  /** Sets a link down (a whole ENI leaving, or about to move). */
  async down(link: LinkInfo, about: string): Promise<void> {
    await this.step(`setting ${link.name} down`, about, () => this.socket.setLink({ index: link.index, change: { up: true }, flags: {} }, undefined, this.options));
  }

  /** Sends one request on this namespace's socket (with its options), once fewer than IN_FLIGHT are waiting for answers. */
  request<T>(send: (socket: Netlink.RtNetlinkSocket, options: { timeout: number; localPort: number }) => Promise<T>): Promise<T> {
    return this.inFlight(() => send(this.socket, this.options));
  }

  /** Runs one request, its error naming what it was for; an error `fine` accepts is no error when `quiet`. */
  private async step(what: string, about: string, request: () => Promise<unknown>, fine: (message: string) => boolean = () => false, quiet = false): Promise<void> {
    try {
      await this.inFlight(request);
    } catch (err) {
      if (quiet && fine((err as Error).message)) return;
      throw new Error(`${what} in ${this.where} (${about}): ${(err as Error).message}`, { cause: err });
    }
  }

  /** The index of each link the objects are on, by name; a link not there is left out. */
  private indexes(objects: readonly NetObject[]): Map<string, number> {
    const found = new Map<string, number>();
    for (const o of objects) {
      if (o.kind === 'rule' || found.has(o.dev)) continue;
      let index: number;
      try {
        index = this.indexOf(o.dev);
      } catch (err) {
        throw new Error(`finding ${o.dev} in ${this.where}: ${(err as Error).message}`, { cause: err });
      }
      if (index) found.set(o.dev, index);
    }
    return found;
  }

  private add(o: NetObject, index: number): Promise<unknown> {
    const m = encode(this.nl, o, index, 'add');
    return this.socket.request(m.type, m.body, { ...this.options, flags: m.flags });
  }

  private del(o: NetObject, index: number): Promise<unknown> {
    const m = encode(this.nl, o, index, 'del');
    return this.socket.request(m.type, m.body, { ...this.options, flags: m.flags });
  }

  private dump<T>(request: (on: Netlink.RtNetlinkSocket) => Promise<T>): Promise<T> {
    const dump = this.dumping.then(() => request(this.dumps));
    this.dumping = dump.catch(() => undefined);
    return dump;
  }
}

/** One object's request: its message type, flags and body (the package's own encoding of it). */
function encode(nl: typeof Netlink, o: NetObject, index: number, op: 'add' | 'del'): { type: number; flags: number; body: Uint8Array[] } {
  const { rt } = nl;
  const T = rt.MessageType;
  const replace = nl.FlagsNew.CREATE | nl.FlagsNew.REPLACE;
  const body = new nl.AttrStream();
  const adding = op === 'add';
  switch (o.kind) {
    case 'up':
      rt.formatLinkMessage({ kind: 'link', data: { index, change: { up: true }, flags: adding ? { up: true } : {} }, attrs: {} }, body);
      return { type: T.SETLINK, flags: 0, body: body.bufs };
    case 'address':
      rt.formatAddressMessage({ kind: 'address', data: { family: AF_INET, prefixlen: o.prefix, index }, attrs: { local: ipv4(o.local), address: ipv4(o.local) } }, body);
      return adding ? { type: T.NEWADDR, flags: replace, body: body.bufs } : { type: T.DELADDR, flags: 0, body: body.bufs };
    case 'route': {
      const attrs = { ...(o.prefix ? { dst: ipv4(o.dst) } : {}), ...(o.via && adding ? { gateway: ipv4(o.via) } : {}), oif: index, ...(o.table > 255 ? { table: o.table } : {}) };
      if (adding) {
        rt.formatRouteMessage({ kind: 'route', data: routeHeader(o), attrs }, body);
        return { type: T.NEWROUTE, flags: replace, body: body.bufs };
      }
      // Without a protocol: the kernel deletes only routes of the protocol a delete names, and a wrong
      // route to mend away may be anyone's.
      const { protocol: _any, ...header } = routeHeader(o);
      rt.formatRouteMessage({ kind: 'route', data: { ...header, scope: 'NOWHERE' }, attrs }, body);
      return { type: T.DELROUTE, flags: 0, body: body.bufs };
    }
    case 'rule': {
      const [data, attrs] = ruleRequest(o);
      rt.formatRuleMessage({ kind: 'rule', data, attrs: attrs ?? {} }, body);
      return adding ? { type: T.NEWRULE, flags: nl.FlagsNew.CREATE | nl.FlagsNew.EXCL, body: body.bufs } : { type: T.DELRULE, flags: 0, body: body.bufs };
    }
    case 'neigh':
      rt.formatNeighborMessage({ kind: 'neighbor', data: adding ? { family: AF_INET, ifindex: index, state: { permanent: true } } : { family: AF_INET, ifindex: index }, attrs: adding ? { dst: ipv4(o.ip), lladdr: macBytes(o.mac) } : { dst: ipv4(o.ip) } }, body);
      return adding ? { type: T.NEWNEIGH, flags: replace, body: body.bufs } : { type: T.DELNEIGH, flags: 0, body: body.bufs };
  }
}

function routeHeader(o: Extract<NetObject, { kind: 'route' }>): Netlink.rt.Route {
  return {
    family: AF_INET,
    dstLen: o.prefix,
    table: o.table > 255 ? COMPAT_TABLE : o.table,
    protocol: 'BOOT',
    scope: o.via ? 'UNIVERSE' : 'LINK',
    type: 'UNICAST',
    ...(o.onlink ? { flags: { __unknown: ONLINK } } : {}),
  };
}

type RuleRequest = Parameters<Netlink.RtNetlinkSocket['newRule']>;
function ruleRequest(r: Extract<NetObject, { kind: 'rule' }>): [RuleRequest[0], RuleRequest[1]] {
  return [
    { family: AF_INET, table: r.table < 256 ? r.table : COMPAT_TABLE, action: 'toTbl', srcLen: r.src ? 32 : 0, dstLen: r.dst ? 32 : 0 },
    { priority: r.priority, ...(r.table ? { table: r.table } : {}), ...(r.src ? { src: ipv4(r.src) } : {}), ...(r.dst ? { dst: ipv4(r.dst) } : {}) },
  ];
}

export class NetlinkDatapath {
  private seq = 0;
  /**
   * The slow requests waiting on worker threads at once, at most (SLOW_AT_ONCE): libuv has four, and the
   * checkpoint's writes and pods' batches, which an ADD answers after, must find one free in a burst of DELs.
   */
  private readonly slow = pLimit(SLOW_AT_ONCE);

  private constructor(
    private readonly nl: typeof Netlink,
    private readonly native: Native,
    /** the agent's own namespace, to come back to */
    private readonly ownNetns: number,
    readonly node: Namespace,
  ) {}

  /** The netlink datapath, or why it cannot be had here (the addons missing, say). */
  static async load(): Promise<NetlinkDatapath | Error> {
    try {
      const native = loadNative('netns') as Native;
      const nl = await import('netlink');
      return new NetlinkDatapath(nl, native, openSync('/proc/thread-self/ns/net', 'r'), new Namespace(nl, nl.createRtNetlink(), 'the node', (name) => native.indexOf(name), nl.createRtNetlink()));
    } catch (err) {
      return err as Error;
    }
  }

  close(): void {
    this.node.close();
    closeSync(this.ownNetns);
  }

  /** Runs `work` with a socket in the network namespace at `path` (a pod's). */
  async in<T>(path: string, work: (pod: Namespace) => Promise<T>): Promise<T> {
    const fd = openSync(path, 'r');
    try {
      const pod = new Namespace(this.nl, this.inNetns(fd, () => this.nl.createRtNetlink()), path, (name) => this.inNetns(fd, () => this.native.indexOf(name)));
      try {
        return await work(pod);
      } finally {
        pod.close();
      }
    } finally {
      closeSync(fd);
    }
  }

  /** Creates the veth: its host end in the agent's namespace, `ifName` straight in the pod's at `netns`. */
  async createVeth(v: Veth, netns: string, about: string): Promise<void> {
    const { nl } = this;
    const podNetns = openSync(netns, 'r');
    try {
      const peer = Buffer.concat([nl.rt.formatLink({}), this.attrs(nl.ifla.formatLinkAttrs({ ifname: v.ifName, address: macBytes(v.podMac), netNsFd: podNetns }))]);
      const linkinfo = this.attrs(nl.ifla.formatInfo({ kind: 'veth', data: this.attrs(nl.ifla.formatVethInfo({ peer })) }));
      try {
        await this.node.request((s, options) => s.newLink({}, { ifname: v.hostIf, address: macBytes(v.hostMac), linkinfo }, { flags: nl.FlagsNew.CREATE | nl.FlagsNew.EXCL, ...options }));
      } catch (err) {
        throw new Error(`creating the veth ${v.hostIf} / ${v.ifName} into ${netns} (${about}): ${(err as Error).message}`, { cause: err });
      }
    } finally {
      closeSync(podNetns);
    }
  }

  /**
   * Applies `objects` in the namespace at `path` (a pod's) as one batch: a socket made there, every request
   * in one send, the kernel's answers waited for on a worker thread, while the main thread goes on with the
   * node's side of the same pod. As Namespace.apply: in order, and the first failure is the one reported.
   */
  async applyIn(path: string, objects: readonly NetObject[], about: string): Promise<void> {
    const devs = [...new Set(objects.flatMap((o) => (o.kind === 'rule' ? [] : [o.dev])))];
    const netns = openSync(path, 'r');
    let found: { indexes: number[]; socket: number };
    try {
      // The socket last: nothing is left open when a lookup fails.
      found = this.inNetns(netns, () => ({ indexes: devs.map((d) => this.native.indexOf(d)), socket: this.native.socket() }));
    } catch (err) {
      throw new Error(`opening a netlink socket in ${path} (${about}): ${(err as Error).message}`, { cause: err });
    } finally {
      closeSync(netns);
    }
    const { indexes, socket } = found;
    const index = new Map(devs.map((d, i) => [d, indexes[i]!]));
    const missing = devs.filter((d) => !index.get(d));
    if (missing.length > 0) {
      closeSync(socket);
      throw new Error(`finding ${missing.join(', ')} in ${path} (${about}): not there`);
    }
    const messages = objects.map((o) => {
      const m = encode(this.nl, o, o.kind === 'rule' ? 0 : index.get(o.dev)!, 'add');
      return this.message(m.type, m.flags, Buffer.concat(m.body));
    });
    let errnos: number[];
    try {
      errnos = await this.native.request(socket, Buffer.concat(messages));
    } catch (err) {
      // Refused before it was queued: the socket is still this side's to close.
      closeSync(socket);
      throw err;
    }
    // A rule cannot be replaced, only added again: one identical to it (EEXIST) is the one wanted.
    const failed = objects.findIndex((o, i) => errnos[i] !== 0 && !(o.kind === 'rule' && errnos[i] === constants.errno.EEXIST));
    if (failed >= 0) throw new Error(`adding ${describe(objects[failed]!)} in ${path} (${about}): ${errnoName(errnos[failed]!)}`);
  }

  /** Deletes a link of the agent's namespace, waited for off the main thread; false when there was none. */
  async deleteLink(name: string, about: string): Promise<boolean> {
    const errno = await this.slowRequest(undefined, RTM_DELLINK, { ifname: name });
    if (errno !== 0 && errno !== constants.errno.ENODEV) throw new Error(`deleting ${name} (${about}): ${errnoName(errno)}`);
    return errno === 0;
  }

  /**
   * Moves a link into the namespace at `to` (from the agent's), or from the pod namespace `from` back into
   * the agent's, named `as`; waited for off the main thread.
   */
  async moveLink(link: LinkInfo, move: { to: string } | { from: string }, as: string, about: string): Promise<void> {
    const target = 'to' in move ? openSync(move.to, 'r') : this.ownNetns;
    try {
      const errno = await this.slowRequest('from' in move ? move.from : undefined, RTM_NEWLINK, { netNsFd: target, ifname: as }, link.index);
      if (errno !== 0) throw new Error(`moving ${link.name} ${'to' in move ? `into ${move.to}` : `from ${move.from} back to the node`} as ${as} (${about}): ${errnoName(errno)}`);
    } finally {
      if ('to' in move) closeSync(target);
    }
  }

  /** One request on a socket of its own (made in the namespace at `netns`, or the agent's), answered on a worker thread. */
  private slowRequest(netns: string | undefined, type: number, attrs: Netlink.ifla.LinkAttrs, index = 0): Promise<number> {
    return this.slow(() => this.slowRequestNow(netns, type, attrs, index));
  }

  private async slowRequestNow(netns: string | undefined, type: number, attrs: Netlink.ifla.LinkAttrs, index: number): Promise<number> {
    const body = Buffer.concat([this.nl.rt.formatLink({ index }), this.attrs(this.nl.ifla.formatLinkAttrs(attrs))]);
    let fd: number;
    if (netns) {
      const ns = openSync(netns, 'r');
      try {
        fd = this.inNetns(ns, () => this.native.socket());
      } finally {
        closeSync(ns);
      }
    } else fd = this.native.socket();
    try {
      return (await this.native.request(fd, this.message(type, 0, body)))[0]!;
    } catch (err) {
      // Refused before it was queued: the socket is still this side's to close.
      closeSync(fd);
      throw err;
    }
  }

  /**
   * A whole netlink request for the addon's request(), asking for its acknowledgement, padded so that a
   * message after it begins on a 4-byte boundary (NLMSG_ALIGN), as the kernel reads them.
   */
  private message(type: number, flags: number, body: Buffer): Buffer {
    const message = Buffer.concat(this.nl.formatMessage({ type, flags: flags | NLM_F_REQUEST | NLM_F_ACK, seq: this.nextSeq(), port: 0, data: body }));
    return Buffer.concat([message, Buffer.alloc(-message.length & 3)]);
  }

  private nextSeq(): number {
    return (this.seq = (this.seq % 0x7fffffff) + 1);
  }

  /**
   * Runs `make` (a socket's creation) with the main thread in the namespace `netns` refers to: only for that
   * synchronous call, so nothing else runs meanwhile, and no thread is started there.
   */
  private inNetns<T>(netns: number, make: () => T): T {
    this.native.setns(netns);
    try {
      return make();
    } finally {
      try {
        this.native.setns(this.ownNetns);
      } catch (err) {
        // Left in a pod's namespace, every later step would act on the wrong node: stop here.
        process.stderr.write(`eni-agent: cannot return to its own network namespace: ${(err as Error).message}\n`);
        process.exit(70);
      }
    }
  }

  /** Attributes as the bytes a nested attribute carries. */
  private attrs(data: Netlink.StreamData): Buffer {
    const stream = new this.nl.AttrStream();
    stream.emit(data);
    return Buffer.concat(stream.bufs);
  }
}

function errnoName(errno: number): string {
  return Object.entries(constants.errno).find(([, n]) => n === errno)?.[0] ?? `errno ${errno}`;
}
