// The agent's native addons (netns, netlink's own binary, and the plugin's agent-call that the agent puts
// beside its socket for the plugin): files beside the executable, in
// <bin>/../native/ (dist/native for `npm run build`, /opt/eni-cni/native in the image), or in dist/native
// of the working directory when the agent runs from source. Loaded from files, not from the executable's
// assets: an asset would have to be written out first, and the agent's container has a read-only root
// and a /dev/shm that forbids running code.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';

export type NativeName = 'netns' | 'netlink' | 'agent-call';

export function nativePaths(name: NativeName): string[] {
  return [join(dirname(process.execPath), '..', 'native', `${name}.node`), join(process.cwd(), 'dist', 'native', `${name}.node`)];
}

const loaded = new Map<NativeName, unknown>();

/** Loads the addon (once); throws naming every place it looked. */
export function loadNative(name: NativeName): unknown {
  if (loaded.has(name)) return loaded.get(name);
  const candidates = nativePaths(name);
  const file = candidates.find((f) => existsSync(f));
  if (!file) throw new Error(`the native addon ${name}.node is in none of ${candidates.join(', ')} (npm run build makes it)`);
  const module = { exports: {} };
  process.dlopen(module, file);
  loaded.set(name, module.exports);
  return module.exports;
}
