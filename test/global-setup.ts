// Before any suite: remove labs left by an earlier run that was killed (their owner process is gone),
// and build the plugin and agent binaries the end-to-end suites run, as a runtime would run them.
import { removeStaleLabs } from '../hack/lab/lab.ts';
import { build, TARGETS } from '../hack/build/build.ts';

export default async function setup(): Promise<void> {
  const removed = await removeStaleLabs();
  if (removed.length > 0) console.log(`removed stale labs: ${removed.join(', ')}`);
  await build(TARGETS.filter((t) => t.name !== 'empty-node'));
}
