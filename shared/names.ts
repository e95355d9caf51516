// The names a runtime hands over and the names derived from them, checked as the CNI spec's libcni
// checks them. Shared by the plugin (at the edge) and the agent (which trusts no client), so that a name
// that could inject a command, escape a directory or address another link never gets past either.
// Imported by the plugin on every pod's start-up: no dependencies, and node:crypto only when hashing.

/** The spec's rule for container ids (and network names): a letter or digit, then letters, digits, _ . - */
const CONTAINER_ID = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;
/** IFNAMSIZ less the terminating NUL */
export const MAX_IFNAME_LENGTH = 15;

/** Why `id` is not a valid CNI_CONTAINERID, or undefined when it is. */
export function containerIdProblem(id: string): string | undefined {
  if (id === '') return 'is empty';
  if (!CONTAINER_ID.test(id)) return 'must start with a letter or digit and hold only letters, digits, "_", "." and "-"';
  return undefined;
}

/** White space as Go's unicode.IsSpace sees it (libcni's rule), which is not quite JavaScript's \s. */
const SPACE = /[\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]/;
/** Allowed by the spec, but they would end or bend the `ip` commands that `eni-cnictl doctor` shows to run. */
const BATCH_SYNTAX = /[#"'\\]/;
const isControl = (c: string) => c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f;

/** Why `name` is not a valid CNI_IFNAME (libcni's rules, and the kernel's length in bytes), or undefined when it is. */
export function ifNameProblem(name: string): string | undefined {
  if (name === '') return 'is empty';
  // Buffer is there from Node's start; TextEncoder would be loaded for this alone (about 0.1 ms of every ADD).
  if (Buffer.byteLength(name, 'utf8') > MAX_IFNAME_LENGTH) return `is longer than ${MAX_IFNAME_LENGTH} bytes`;
  if (name === '.' || name === '..') return 'cannot be "." or ".."';
  if (/[/:]/.test(name) || SPACE.test(name)) return 'cannot hold "/", ":" or white space';
  if (BATCH_SYNTAX.test(name) || [...name].some(isControl)) return 'cannot hold "#", quotes, a backslash or control characters here';
  return undefined;
}

export const HOST_IF_PREFIX = 'eni';
/** Every host veth end this project names matches this, and nothing else it creates does. */
export const HOST_IF_PATTERN = /^eni[0-9a-f]{11}$/;

/** The host-side name of a pod's veth: stable for a container and interface, 14 characters. */
export function hostIfName(containerId: string, ifName: string): string {
  const { createHash } = process.getBuiltinModule('node:crypto');
  return `${HOST_IF_PREFIX}${createHash('sha1').update(`${containerId}/${ifName}`).digest('hex').slice(0, 11)}`;
}
