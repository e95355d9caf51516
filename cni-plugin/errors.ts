// From the agent's reasons to the CNI spec's codes: exhaustive, so a new reason must be mapped to compile.
import { CniCode, CniError } from '../shared/cni.ts';
import type { AgentErrorCode, Response } from '../shared/protocol.ts';

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

/** Throws the CNI error for a refusal; returns the answer when it is a success. */
export function expectOk(answer: Response): Response {
  if (answer.ok) return answer;
  const error = answer.error ?? { code: 'internal' as const, message: 'the agent refused without saying why' };
  // A reason from a newer agent that this plugin does not know is an internal error, its message kept.
  const known = Object.hasOwn(CNI_CODE_OF, error.code) ? CNI_CODE_OF[error.code as AgentErrorCode] : CniCode.Internal;
  throw new CniError(known, error.message);
}
