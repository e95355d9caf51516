// From the agent's reasons to the CNI spec's codes: exhaustive, so a new reason must be mapped to compile.
// The plugin answers the runtime with them; the agent counts its answers by them (its metrics).
import { CniCode } from './cni.ts';
import type { AgentErrorCode } from './protocol.ts';

const CNI_CODE_OF: Record<AgentErrorCode, CniCode> = {
  'bad-request': CniCode.DecodingFailure,
  'unsupported-version': CniCode.IncompatibleVersion,
  'not-ready': CniCode.TryAgainLater,
  'no-address': CniCode.TryAgainLater,
  'unknown-container': CniCode.UnknownContainer,
  'unsupported-mode': CniCode.AgentRefused,
  'bad-netns': CniCode.InvalidEnvironment,
  datapath: CniCode.IoFailure,
  'bad-annotation': CniCode.AgentRefused,
  'fixed-ip-pending': CniCode.TryAgainLater,
  'fixed-ip-unavailable': CniCode.AgentRefused,
  'eip-pending': CniCode.TryAgainLater,
  'eip-failed': CniCode.AgentRefused,
  internal: CniCode.Internal,
};

/** The CNI code of a refusal; a reason this side does not know (a newer agent's) is an internal error. */
export function cniCodeOf(reason: string): CniCode {
  return Object.hasOwn(CNI_CODE_OF, reason) ? CNI_CODE_OF[reason as AgentErrorCode] : CniCode.Internal;
}
