// The one error type of the emulator: a Tencent Cloud API error code and message, answered as
// {"Response": {"Error": {"Code", "Message"}, "RequestId"}}.

export class CloudError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'CloudError';
  }
}

/** Shorthand used by the action handlers: `throw fail('InvalidParameterValue', '...')`. */
export function fail(code: string, message: string): CloudError {
  return new CloudError(code, message);
}
