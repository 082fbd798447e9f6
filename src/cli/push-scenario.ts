import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DomainError } from '../shared/errors/domain-error';
import { OciReferenceMalformedError } from '../shared/errors/oci.errors';
import { HttpOciRegistry } from '../adapters/oci/http-oci-registry.adapter';
import {
  DEFAULT_OCI_LIMITS,
  DEFAULT_OCI_REQUEST_TIMEOUT_MS,
} from '../adapters/oci/http-oci-registry.options';

const USAGE =
  'usage: node dist/cli/push-scenario.js <directory> <reference> [--insecure] [--username U --password P]';

interface PushArgs {
  directory: string;
  reference: string;
  insecure: boolean;
  username?: string;
  password?: string;
}

/** Reads the command line only (never the environment), so what is pushed where is explicit. */
function parseArgs(argv: string[]): PushArgs {
  const positional: string[] = [];
  const args: Partial<PushArgs> = { insecure: false };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--insecure') args.insecure = true;
    else if (arg === '--username' || arg === '--password') {
      const value = argv[++i];
      if (value === undefined) throw new Error(`${arg} needs a value`);
      args[arg === '--username' ? 'username' : 'password'] = value;
    } else if (arg.startsWith('--')) throw new Error(`unknown option ${arg}`);
    else positional.push(arg);
  }
  if (positional.length !== 2) throw new Error('expected a directory and a reference');
  if ((args.username === undefined) !== (args.password === undefined)) {
    throw new Error('--username and --password go together');
  }
  return { ...args, directory: positional[0]!, reference: positional[1]! } as PushArgs;
}

/** `message: cause: cause…`, since fetch hides the socket error two causes deep. */
function causeChain(err: Error): string {
  const parts: string[] = [];
  for (let e: unknown = err; e instanceof Error && parts.length < 5; e = e.cause) {
    parts.push(e.message);
  }
  return parts.join(': ');
}

async function main(): Promise<number> {
  let args: PushArgs;
  try {
    args = parseArgs(process.argv.slice(2));
  } catch (err) {
    console.error(`${(err as Error).message}\n${USAGE}`);
    return 2;
  }
  // Pushing never reads the cache, but the adapter wants one; keep it out of the user's way.
  const cacheDir = mkdtempSync(join(tmpdir(), 'cm-push-'));
  try {
    const registry = new HttpOciRegistry({
      cacheDir,
      insecure: args.insecure,
      username: args.username,
      password: args.password,
      limits: { ...DEFAULT_OCI_LIMITS },
      requestTimeoutMs: DEFAULT_OCI_REQUEST_TIMEOUT_MS,
    });
    const digest = await registry.pushScenario(args.directory, args.reference);
    console.log(digest);
    return 0;
  } catch (err) {
    if (err instanceof OciReferenceMalformedError) console.error(`${err.message} ${err.problem}`);
    else if (err instanceof DomainError) console.error(causeChain(err));
    else console.error(err);
    return 1;
  } finally {
    rmSync(cacheDir, { recursive: true, force: true });
  }
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  },
);
