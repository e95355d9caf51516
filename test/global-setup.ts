// Before any suite: remove labs left by an earlier run that was killed (their owner process is gone).
import { removeStaleLabs } from '../hack/lab/lab.ts';

export default async function setup(): Promise<void> {
  const removed = await removeStaleLabs();
  if (removed.length > 0) console.log(`removed stale labs: ${removed.join(', ')}`);
}
