// Before any suite: remove labs left by an earlier run that was killed (their owner process is gone),
// and build the plugin and agent binaries the end-to-end suites run, as a runtime would run them.
import { removeStaleLabs } from '../hack/lab/lab.ts';
import { build, TARGETS } from '../hack/build/build.ts';
import { ip } from '../hack/lab/sh.ts';

export default async function setup(): Promise<void> {
  // The first `ip netns add` on a machine makes /run/netns a shared mount; several at once (parallel
  // suites on a fresh machine) can stack two mounts and hide each other's namespaces. Do it once, first.
  await ip(undefined, 'netns', 'add', 'eni-cni-setup');
  await ip(undefined, 'netns', 'del', 'eni-cni-setup');
  const removed = await removeStaleLabs();
  if (removed.length > 0) console.log(`removed stale labs: ${removed.join(', ')}`);
  await build(TARGETS.filter((t) => t.name !== 'empty-node'));
}
