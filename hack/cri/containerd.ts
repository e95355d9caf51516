// A private containerd (Debian's 1.6, with its CRI plugin) for one test or benchmark, so that CNI plugins
// are called the way kubelet's runtime calls them. Everything it makes lives under one temp dir named
// after the owning process, and stop() — or the next start, once that process is gone — takes it all away.
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { access, chmod, copyFile, mkdir, mkdtemp, open, readFile, readdir, rm, rmdir, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { childEnv, run } from '../lab/sh.ts';
import { CriClient, networkNamespaceOf, type CriClientOptions } from './cri-client.ts';

/** The sandbox ("pause") image every instance imports; built locally, so nothing is ever pulled. */
export const SANDBOX_IMAGE = 'eni-cni.local/pause:1';
const DIR_PREFIX = 'eni-cni-containerd-';
const K8S_NAMESPACE = 'k8s.io'; // containerd namespace of the CRI plugin
const REFERENCE_PLUGINS = '/usr/lib/cni';
const OCI_ARCHITECTURES: Record<string, string | undefined> = { x64: 'amd64', arm64: 'arm64' };

// What the harness runs, and the Debian package that brings it (hack/setup-host.sh installs them).
const NEEDED: Record<string, string> = {
  '/usr/bin/containerd': 'containerd',
  '/usr/bin/ctr': 'containerd',
  '/usr/bin/containerd-shim-runc-v2': 'containerd',
  '/usr/sbin/runc': 'runc',
  [`${REFERENCE_PLUGINS}/loopback`]: 'containernetworking-plugins',
  '/bin/busybox': 'busybox-static',
};

export interface ContainerdOptions {
  /** Where the CRI plugin finds CNI plugins; `loopback` is copied in when missing (and removed again). */
  cniBinDir: string;
  /** Where the CRI plugin reads the network config (the first file, in name order). */
  cniConfDir: string;
  /**
   * 'state' (default): pod netns are mounted under the instance's own state dir, private to it.
   * 'host': under /var/run/netns as on a kubelet node, where `ip netns` sees them (and other tests too).
   */
  netnsMountsUnder?: 'state' | 'host';
  /**
   * Run containerd inside this network namespace (a lab node, by name under /var/run/netns), so that its
   * pods and the plugins it runs are on that node. Only the network namespace is entered: containerd's
   * mounts (the pods' netns files) stay visible to the node's agent.
   */
  netns?: string;
  /** How long the CRI may take to answer after start. */
  startTimeoutMs?: number;
}

export interface Containerd {
  socket: string;
  /** The instance's temp dir: config.toml, containerd.log, root, state, pod logs. */
  dir: string;
  logFile: string;
  /** The cgroup under which the instance's clients put pod cgroups, removed on stop. */
  cgroupParent: string;
  /** Milliseconds each start-up step took. */
  timings: { imageBuild: number; containerdReady: number; imageImport: number };
  /** A CRI client whose pods keep their log dirs and cgroups inside the instance's; closed on stop. */
  client(options?: Omit<CriClientOptions, 'logRoot' | 'cgroupParent'>): CriClient;
  /** Stops and removes every sandbox (so plugins get their DEL), stops containerd, removes all it made. */
  stop(): Promise<void>;
}

export async function startContainerd(options: ContainerdOptions): Promise<Containerd> {
  await requireHostTools();
  await removeStaleInstances();
  const dir = await mkdtemp(join(tmpdir(), `${DIR_PREFIX}${process.pid}-`));
  const socket = join(dir, 'containerd.sock');
  const logFile = join(dir, 'containerd.log');
  const cgroupParent = `/${basename(dir)}`;
  const clients: CriClient[] = [];
  let daemon: ChildProcess | undefined;
  let copiedLoopback: string | undefined;
  let stopped: Promise<void> | undefined;

  const stop = (): Promise<void> =>
    (stopped ??= (async () => {
      const problems: string[] = [];
      const netns: string[] = [];
      if (daemon && running(daemon)) await removeAllSandboxes(socket, netns).catch((e: Error) => problems.push(e.message));
      for (const client of clients) client.close();
      if (daemon) await terminate(daemon);
      // The log goes with the dir: keep its end for the error while it is still there.
      const log = problems.length ? `\ncontainerd's log ended with:\n${await logTail(logFile)}` : '';
      await reclaim(dir, netns).catch((e: Error) => problems.push(e.message));
      if (copiedLoopback) await rm(copiedLoopback, { force: true });
      if (problems.length) throw new Error(`stopping containerd in ${dir}: ${problems.join('\n')}${log}`);
    })());

  try {
    let t = performance.now();
    const image = await buildSandboxImage(join(dir, 'image'));
    const imageBuild = performance.now() - t;

    const loopback = join(options.cniBinDir, 'loopback');
    if (!(await exists(loopback))) {
      // containerd brings up the pod's lo with the `loopback` plugin from the same bin dir.
      await copyFile(join(REFERENCE_PLUGINS, 'loopback'), loopback).catch((e: Error) => {
        throw new Error(`copying the loopback plugin into the CNI bin dir ${options.cniBinDir}: ${e.message}`);
      });
      copiedLoopback = loopback;
    }
    await writeFile(join(dir, 'config.toml'), configToml(dir, socket, options));

    t = performance.now();
    const log = await open(logFile, 'a');
    // setpriv's parent-death signal takes containerd down with this process (or the worker thread that
    // spawned it) even when stop() is never reached; what it leaves is reclaimed by the next start.
    const enter = options.netns ? ['nsenter', `--net=/var/run/netns/${options.netns}`] : [];
    daemon = spawn('setpriv', ['--pdeathsig', 'KILL', '--', ...enter, 'containerd', '--config', join(dir, 'config.toml')], {
      stdio: ['ignore', log.fd, log.fd],
      env: childEnv(),
    });
    let spawnError: Error | undefined;
    daemon.once('error', (e) => (spawnError = e));
    await log.close();
    const gone = (): string | undefined =>
      spawnError ? `could not be started: ${spawnError.message}` : running(daemon!) ? undefined : `exited (${daemon!.exitCode ?? daemon!.signalCode})`;
    await waitForCri(socket, gone, logFile, options.startTimeoutMs ?? 20_000);
    const containerdReady = performance.now() - t;

    t = performance.now();
    await run('ctr', ['-a', socket, '-n', K8S_NAMESPACE, 'images', 'import', image]);
    await waitForImage(socket, logFile);
    const imageImport = performance.now() - t;

    return {
      socket,
      dir,
      logFile,
      cgroupParent,
      timings: { imageBuild, containerdReady, imageImport },
      client(clientOptions = {}) {
        const client = new CriClient(socket, { ...clientOptions, logRoot: join(dir, 'pods'), cgroupParent });
        clients.push(client);
        return client;
      },
      stop,
    };
  } catch (error) {
    await stop().catch((e: Error) => {
      (error as Error).message += `\n(and cleaning up after it: ${e.message})`;
    });
    throw error;
  }
}

function configToml(dir: string, socket: string, options: ContainerdOptions): string {
  const q = (s: string): string => JSON.stringify(s); // a JSON string is a valid TOML basic string
  const cri = '[plugins."io.containerd.grpc.v1.cri"';
  return `version = 2
root = ${q(join(dir, 'root'))}
state = ${q(join(dir, 'state'))}
# Snapshotters this host cannot use only slow the start down.
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]

[grpc]
  address = ${q(socket)}

[plugins."io.containerd.internal.v1.opt"]
  path = ${q(join(dir, 'opt'))}

${cri}]
  sandbox_image = ${q(SANDBOX_IMAGE)}
  # In a container the runtime may not lower OOM scores below its own.
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = ${options.netnsMountsUnder !== 'host'}
  # Any free port, so that instances run side by side.
  stream_server_port = "0"

${cri}.containerd]
  snapshotter = "overlayfs"
  default_runtime_name = "runc"

${cri}.containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"

${cri}.containerd.runtimes.runc.options]
  # runc, not crun: cgroups here are hybrid (v1 controllers), which crun handles badly.
  BinaryName = "/usr/sbin/runc"
  # runc's state inside the instance, so that a crashed instance's containers can be found and deleted.
  Root = ${q(join(dir, 'runc'))}
  SystemdCgroup = false

${cri}.cni]
  bin_dir = ${q(options.cniBinDir)}
  conf_dir = ${q(options.cniConfDir)}
  max_conf_num = 1
`;
}

/** An image of busybox-static (every applet linked in /bin) with a `/pause` that sleeps forever, in `docker save` form for `ctr images import`. */
async function buildSandboxImage(dir: string): Promise<string> {
  const rootfs = join(dir, 'rootfs');
  await mkdir(join(rootfs, 'bin'), { recursive: true });
  await copyFile('/bin/busybox', join(rootfs, 'bin/busybox'));
  // Every applet by its name, so that a pod's `command: [sleep]` (or sh, wget, ping) runs as in a busybox image.
  for (const applet of (await run('/bin/busybox', ['--list'])).split('\n').filter((a) => a && a !== 'busybox')) {
    await symlink('busybox', join(rootfs, 'bin', applet));
  }
  // exec, so that the sandbox is one process; containerd stops it with SIGKILL, so no signal handling is needed.
  await writeFile(join(rootfs, 'pause'), '#!/bin/busybox sh\nexec /bin/busybox sleep inf\n');
  await chmod(join(rootfs, 'pause'), 0o755);
  // Fixed owner, order and times: the same image, and digest, on every run.
  const layer = join(dir, 'layer.tar');
  await run('tar', ['--sort=name', '--mtime=@0', '--owner=0', '--group=0', '--numeric-owner', '-C', rootfs, '-cf', layer, '.']);
  const diffId = `sha256:${createHash('sha256').update(await readFile(layer)).digest('hex')}`;
  const architecture = OCI_ARCHITECTURES[process.arch];
  if (!architecture) throw new Error(`sandbox image: no OCI architecture known for Node's ${process.arch}`);
  const config = { architecture, os: 'linux', config: { Entrypoint: ['/pause'], Env: ['PATH=/bin'] }, rootfs: { type: 'layers', diff_ids: [diffId] } };
  await writeFile(join(dir, 'config.json'), JSON.stringify(config));
  await writeFile(join(dir, 'manifest.json'), JSON.stringify([{ Config: 'config.json', RepoTags: [SANDBOX_IMAGE], Layers: ['layer.tar'] }]));
  const archive = join(dir, 'pause.tar');
  await run('tar', ['-C', dir, '-cf', archive, 'manifest.json', 'config.json', 'layer.tar']);
  return archive;
}

async function waitForCri(socket: string, gone: () => string | undefined, logFile: string, timeoutMs: number): Promise<void> {
  const client = new CriClient(socket, { timeoutMs: 1_000 });
  const deadline = Date.now() + timeoutMs;
  try {
    for (let lastError = 'no socket yet'; ; await sleep(10)) {
      const why = gone();
      if (why) throw new Error(`containerd ${why} before its CRI on ${socket} answered:\n${await logTail(logFile)}`);
      if (Date.now() > deadline) throw new Error(`containerd's CRI on ${socket} did not answer in ${timeoutMs} ms (${lastError}):\n${await logTail(logFile)}`);
      // The CRI plugin refuses calls until it has initialised; the socket alone does not say it is ready.
      if (await exists(socket)) {
        const ok = await client.version().then(
          () => true,
          (e: Error) => ((lastError = e.message), false),
        );
        if (ok) return;
      }
    }
  } finally {
    client.close();
  }
}

/** The CRI plugin learns of images that ctr imports from an event, a moment after the import returns. */
async function waitForImage(socket: string, logFile: string): Promise<void> {
  const client = new CriClient(socket, { timeoutMs: 5_000 });
  try {
    for (let i = 0; i < 500; i++, await sleep(10)) if (await client.hasImage(SANDBOX_IMAGE)) return;
    throw new Error(`the CRI plugin on ${socket} never saw the imported ${SANDBOX_IMAGE}:\n${await logTail(logFile)}`);
  } finally {
    client.close();
  }
}

/** Stops and removes every sandbox; their netns paths go into `netns`, for when a DEL fails and leaves one. */
async function removeAllSandboxes(socket: string, netns: string[]): Promise<void> {
  const client = new CriClient(socket, { timeoutMs: 30_000 });
  const failures: string[] = [];
  try {
    for (const sandbox of await client.listPodSandbox()) {
      const { netnsPath } = await client.podSandboxStatus(sandbox.id, { verbose: true }).catch(() => ({ netnsPath: undefined }));
      if (netnsPath) netns.push(netnsPath);
      await client
        .stopPodSandbox(sandbox.id)
        .then(() => client.removePodSandbox(sandbox.id))
        .catch((e: Error) => failures.push(e.message));
    }
  } finally {
    client.close();
  }
  if (failures.length) throw new Error(`removing leftover sandboxes: ${failures.join('; ')}`);
}

/** Takes away everything an instance made, whether or not its containerd is still there; `netns` are known pod netns. */
async function reclaim(dir: string, netns: string[] = []): Promise<void> {
  // The processes first: a crashed instance's containerd (if pdeathsig missed it) and its shims, which outlive it.
  for (const pid of await processesMentioning([join(dir, 'config.toml'), join(dir, 'containerd.sock')])) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  const runcRoot = join(dir, 'runc', K8S_NAMESPACE);
  const bundles = join(dir, 'state', 'io.containerd.runtime.v2.task', K8S_NAMESPACE);
  for (const id of await children(runcRoot)) {
    // A crashed instance's sandboxes: their bundles name their netns.
    const spec = await readFile(join(bundles, id, 'config.json'), 'utf8')
      .then((text) => JSON.parse(text) as unknown)
      .catch(() => undefined); // no bundle (or a half-written one): nothing to learn from it
    const path = networkNamespaceOf(spec);
    // A container joins its sandbox's netns through /proc/<pid>/ns/net: only a sandbox's own is a file to remove.
    if (path && !path.startsWith('/proc/')) netns.push(path);
    // Kills the sandbox's processes and removes its cgroups.
    await run('/usr/sbin/runc', ['--root', runcRoot, 'delete', '--force', id], { allowFailure: true });
  }
  for (const path of netns.filter((p) => !p.startsWith(`${dir}/`))) {
    // A host-mode netns, under /var/run/netns: unmount the bind mount that keeps it alive, then the file.
    // Once nothing holds the namespace, the kernel deletes it, and the host end of its veth with it.
    await run('umount', ['--lazy', path], { allowFailure: true });
    await rm(path, { force: true });
  }
  // Rootfs overlays, /dev/shm tmpfs, netns bind mounts: the newest first, detached so nothing holds them.
  const mounts = (await readFile('/proc/self/mountinfo', 'utf8')).split('\n').map((line) => unescapeMount(line.split(' ')[4] ?? ''));
  for (const mountPoint of mounts.filter((m) => m.startsWith(`${dir}/`)).reverse()) {
    await run('umount', ['--lazy', mountPoint], { allowFailure: true });
  }
  await removeCgroups(basename(dir));
  await rm(dir, { recursive: true, force: true });
}

/** Instances whose owning process is gone: killed test runs, crashed benchmarks. */
export async function removeStaleInstances(): Promise<void> {
  for (const name of await children(tmpdir())) {
    const owner = Number(/^eni-cni-containerd-(\d+)-/.exec(name)?.[1]);
    if (owner && owner !== process.pid && !alive(owner)) await reclaim(join(tmpdir(), name));
  }
}

/** The instance's cgroup in every hierarchy (v1 controllers and v2), children before parents. */
async function removeCgroups(name: string): Promise<void> {
  const removeTree = async (path: string): Promise<void> => {
    for (const child of await children(path)) await removeTree(join(path, child));
    await rmdir(path).catch((e: NodeJS.ErrnoException) => {
      if (e.code !== 'ENOENT') throw new Error(`removing cgroup ${path}: ${e.message}`);
    });
  };
  const roots = ['/sys/fs/cgroup', ...(await children('/sys/fs/cgroup')).map((h) => join('/sys/fs/cgroup', h))];
  for (const root of roots) await removeTree(join(root, name));
}

function running(child: ChildProcess): boolean {
  return child.pid !== undefined && child.exitCode === null && child.signalCode === null;
}

async function terminate(child: ChildProcess): Promise<void> {
  if (!running(child)) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
  await exited;
  clearTimeout(timer);
}

async function processesMentioning(paths: string[]): Promise<number[]> {
  const found: number[] = [];
  for (const entry of await children('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const argv = (await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '')).split('\0');
    if (argv.some((arg) => paths.includes(arg))) found.push(Number(entry));
  }
  return found;
}

async function requireHostTools(): Promise<void> {
  const missing = new Set<string>();
  for (const [path, pkg] of Object.entries(NEEDED)) if (!(await exists(path))) missing.add(pkg);
  if (missing.size) throw new Error(`the containerd harness needs the Debian packages ${[...missing].join(' ')} (run hack/setup-host.sh as root)`);
}

/** Directory names in a dir; none when it does not exist. */
async function children(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  return entries.filter((e) => e.isDirectory()).map((e) => e.name);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** mountinfo escapes space, tab, newline and backslash as octal. */
function unescapeMount(path: string): string {
  return path.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));
}

async function logTail(logFile: string, lines = 20): Promise<string> {
  const text = await readFile(logFile, 'utf8').catch(() => '');
  return text.trimEnd().split('\n').slice(-lines).join('\n');
}

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
