// The plugin's edge: picks the verb from CNI_COMMAND, runs it, prints the result or the spec's error
// JSON, and returns the exit code. Takes env, stdin and stdout as arguments so tests need no process.
import { CNI_VERSION, CniCode, CniError } from '../shared/cni.ts';
import { cmdAdd, cmdCheck, cmdDel, cmdGc, cmdStatus, cmdVersion } from './commands.ts';
import { parseNetConf } from './config.ts';

export interface Io {
  env: NodeJS.ProcessEnv;
  stdin: string;
  write(text: string): void;
}

export async function dispatch({ env, stdin, write }: Io): Promise<number> {
  const command = env.CNI_COMMAND;
  let version: string = CNI_VERSION;
  try {
    if (command === 'VERSION') {
      write(JSON.stringify(cmdVersion()));
      return 0;
    }
    const conf = parseNetConf(stdin);
    version = conf.cniVersion;
    switch (command) {
      case 'ADD':
        write(JSON.stringify(await cmdAdd(conf, env)));
        return 0;
      case 'DEL':
        await cmdDel(conf, env);
        return 0;
      case 'CHECK':
        await cmdCheck(conf, env);
        return 0;
      case 'GC':
        await cmdGc(conf);
        return 0;
      case 'STATUS':
        await cmdStatus(conf);
        return 0;
      default:
        throw new CniError(CniCode.InvalidEnvironment, `CNI_COMMAND "${command ?? ''}" is not one of ADD, DEL, CHECK, GC, STATUS, VERSION`);
    }
  } catch (err) {
    const error = err instanceof CniError ? err : new CniError(CniCode.Internal, (err as Error).message);
    write(JSON.stringify(error.toJSON(version)));
    return 1;
  }
}
