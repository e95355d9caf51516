// `npm run image`: the image the manifests run, eni-cni/agent:<package version>, built with buildah from
// scratch (no base image can be pulled here): the standalone executables of `npm run build`, and the few
// host tools the agent and the install step run (ip, nsenter, iptables, a busybox shell), each with the
// shared libraries `ldd` says it loads. Also written as an OCI archive (dist/image/), which containerd
// imports (`ctr -n k8s.io images import`). See hack/build/README.md.
import { existsSync, readFileSync, realpathSync } from 'node:fs';
import { chmod, copyFile, mkdir, readdir, rm, stat, symlink } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const VERSION = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
export const IMAGE = `eni-cni/agent:${VERSION}`;
export const ARCHIVE = join(ROOT, 'dist/image', `eni-cni-agent-${VERSION}.oci.tar`);

/** The programs of this repository, as the manifests call them. */
const PROGRAMS = ['eni-agent', 'eni-ipamd', 'eni-cni', 'eni-cnictl'];
/** Host tools, found on this machine's PATH and copied to the same place in the image. */
const TOOLS = ['ip', 'nsenter', 'iptables', 'iptables-restore', 'iptables-save'];
/** What the install step's /bin/sh script uses, from busybox. */
const APPLETS = ['sh', 'cp', 'chmod', 'mv', 'rm', 'mkdir', 'cat', 'ls', 'test', '[', 'echo', 'sleep'];

/** Copies a file to the same path under `rootfs`, following symlinks; a symlink is kept as one pointing at the copy. */
async function copyInto(rootfs: string, path: string): Promise<void> {
  const real = realpathSync(path);
  const target = join(rootfs, real);
  if (!existsSync(target)) {
    await mkdir(dirname(target), { recursive: true });
    await copyFile(real, target);
    await chmod(target, (await stat(real)).mode & 0o7777);
  }
  if (real !== path && !existsSync(join(rootfs, path))) {
    await mkdir(dirname(join(rootfs, path)), { recursive: true });
    await symlink(real, join(rootfs, path));
  }
}

/** The shared libraries an ELF file loads, the dynamic loader included (none for a static one). */
async function librariesOf(file: string): Promise<string[]> {
  const r = await execa('ldd', [file], { reject: false });
  if (r.exitCode !== 0) return []; // "not a dynamic executable"
  return [...r.stdout.matchAll(/(\/\S+) \(0x/g)].map((m) => m[1]!);
}

async function which(tool: string): Promise<string> {
  const r = await execa('sh', ['-c', `command -v ${tool}`], { reject: false });
  if (r.exitCode !== 0) throw new Error(`image: ${tool} is not on this machine's PATH (bash hack/setup-host.sh installs it)`);
  return r.stdout.trim();
}

async function main(): Promise<void> {
  const started = performance.now();
  for (const p of PROGRAMS) {
    if (!existsSync(join(ROOT, 'dist/bin', p))) throw new Error(`image: dist/bin/${p} is missing; run npm run build first`);
  }
  const rootfs = join(ROOT, 'dist/image/rootfs');
  await execa('rm', ['-rf', rootfs]); // (fs.rm has failed here with ENOTEMPTY on a tree of symlinks)
  const elves: string[] = [];
  for (const p of PROGRAMS) {
    const to = join(rootfs, 'opt/eni-cni/bin', p);
    await mkdir(dirname(to), { recursive: true });
    await copyFile(join(ROOT, 'dist/bin', p), to);
    await chmod(to, 0o755);
    elves.push(join(ROOT, 'dist/bin', p));
  }
  // The agent's native addons, where it looks for them: beside its bin dir (agent/datapath/native/load.ts).
  for (const addon of ['netns.node', 'netlink.node', 'agent-call.node']) {
    const from = join(ROOT, 'dist/native', addon);
    if (!existsSync(from)) throw new Error(`image: dist/native/${addon} is missing; run npm run build first`);
    await mkdir(join(rootfs, 'opt/eni-cni/native'), { recursive: true });
    await copyFile(from, join(rootfs, 'opt/eni-cni/native', addon));
    elves.push(from);
  }
  // portmap is chained after eni-cni; the install step brings it when a node has none.
  const portmap = ['/opt/cni/bin/portmap', '/usr/lib/cni/portmap'].find((p) => existsSync(p));
  if (portmap) {
    await copyFile(portmap, join(rootfs, 'opt/eni-cni/bin/portmap'));
    await chmod(join(rootfs, 'opt/eni-cni/bin/portmap'), 0o755);
  }
  for (const tool of TOOLS) {
    const path = await which(tool);
    await copyInto(rootfs, path);
    elves.push(realpathSync(path));
  }
  // iptables loads its match and target extensions at run time: the whole directory, and what they load.
  const xtables = ['/usr/lib/x86_64-linux-gnu/xtables', '/usr/lib/xtables', '/usr/lib64/xtables'].find((d) => existsSync(d));
  if (xtables) {
    for (const f of await readdir(xtables)) {
      await copyInto(rootfs, join(xtables, f));
      elves.push(join(xtables, f));
    }
  }
  await copyInto(rootfs, '/bin/busybox');
  for (const applet of APPLETS) await symlink('busybox', join(rootfs, 'bin', applet));
  for (const elf of elves) for (const lib of await librariesOf(elf)) await copyInto(rootfs, lib);
  // The agent and iptables write under /run (its lock, the socket); /var/run is the older name for it.
  for (const dir of ['run', 'tmp', 'etc/eni-cni', 'var']) await mkdir(join(rootfs, dir), { recursive: true });
  await symlink('../run', join(rootfs, 'var/run'));

  const container = (await execa('buildah', ['from', 'scratch'])).stdout.trim();
  try {
    await execa('buildah', ['copy', container, rootfs, '/']);
    await execa('buildah', [
      'config',
      '--entrypoint', '["/opt/eni-cni/bin/eni-agent"]',
      '--env', 'PATH=/opt/eni-cni/bin:/usr/sbin:/usr/bin:/sbin:/bin',
      '--label', `org.opencontainers.image.version=${VERSION}`,
      '--label', 'org.opencontainers.image.title=eni-cni',
      container,
    ]);
    await execa('buildah', ['commit', '--quiet', container, IMAGE]);
  } finally {
    await execa('buildah', ['rm', container], { reject: false });
  }
  await rm(ARCHIVE, { force: true });
  // Named in full in the archive: containerd's CRI looks the manifests' short eni-cni/agent:<version> up
  // as docker.io/eni-cni/agent:<version>, and `ctr images import` keeps the name it is given.
  await execa('buildah', ['push', '--quiet', IMAGE, `oci-archive:${ARCHIVE}:docker.io/${IMAGE}`]);
  const size = (await execa('buildah', ['images', '--format', '{{.Size}}', IMAGE])).stdout.trim();
  const archiveMb = (await stat(ARCHIVE)).size / 1e6;
  console.log(`image: ${IMAGE}, ${size} (${PROGRAMS.join(', ')}${portmap ? ', portmap' : ''}, ${TOOLS.join(', ')}, busybox)`);
  console.log(`image: ${ARCHIVE}, ${archiveMb.toFixed(1)} MB; import it with: ctr -n k8s.io images import ${ARCHIVE}`);
  console.log(`image: built in ${((performance.now() - started) / 1000).toFixed(1)} s`);
}

// Run as `npm run image`; imported (for IMAGE and ARCHIVE), it builds nothing.
if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((err: unknown) => {
    console.error((err as Error).message);
    process.exit(1);
  });
}
