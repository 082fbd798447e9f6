import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, dirname, isAbsolute, join } from 'node:path';

/** How a failed CLI run is told apart: the same texts the Automation API classifies by. */
export type PulumiFailure = 'stack-not-found' | 'stack-exists' | 'locked' | 'failed';

/** A `pulumi` run that failed (non-zero exit, or it could not start). */
export class PulumiCliError extends Error {
  constructor(
    readonly kind: PulumiFailure,
    readonly code: number,
    stdout: string,
    stderr: string,
  ) {
    super(`code: ${code}\n stdout: ${stdout}\n stderr: ${stderr}\n`);
    this.name = 'PulumiCliError';
  }
}

/** One engine event of the CLI's event log (the fields read here). */
export interface PulumiEvent {
  diagnosticEvent?: { severity?: string; message?: string };
  resOutputsEvent?: {
    metadata?: { type?: string; new?: { outputs?: Record<string, unknown> } | null };
  };
}

export interface PulumiRun {
  binary: string;
  args: string[];
  cwd: string;
  /**
   * The CLI's whole environment: the service's own, as the config filtered it (credentials
   * blanked), with the engine's variables on top.
   */
  env: Record<string, string>;
  /** Aborted, the CLI gets SIGINT: Pulumi's graceful cancel. */
  signal?: AbortSignal;
}

/**
 * Runs the Pulumi CLI the way the Automation API does (non-interactive, marked as automated, the
 * binary's own directory first on PATH for its language hosts and plugins), one launch per call:
 * the Automation API's `up` and `destroy` add launches (outputs twice, history) this engine does
 * without.
 */
export async function runPulumi(run: PulumiRun): Promise<string> {
  const env: Record<string, string> = { ...run.env, PULUMI_AUTOMATION_API: 'true' };
  if (isAbsolute(run.binary)) env.PATH = `${dirname(run.binary)}${delimiter}${run.env.PATH ?? ''}`;
  const args = run.args.includes('--non-interactive')
    ? run.args
    : [...run.args, '--non-interactive'];
  return new Promise<string>((resolve, reject) => {
    const child = spawn(run.binary, args, { cwd: run.cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    const cancel = (): void => {
      child.kill('SIGINT');
    };
    run.signal?.addEventListener('abort', cancel, { once: true });
    if (run.signal?.aborted) cancel();
    const finish = (code: number, startError?: Error): void => {
      run.signal?.removeEventListener('abort', cancel);
      const stdout = Buffer.concat(out).toString('utf8').trimEnd();
      const stderr = [Buffer.concat(err).toString('utf8').trimEnd(), startError?.message]
        .filter(Boolean)
        .join('\n');
      if (code === 0) resolve(stdout);
      else reject(new PulumiCliError(classify(`${stderr}\n${stdout}`), code, stdout, stderr));
    };
    child.once('error', (e) => finish(-2, e));
    child.once('close', (code, sig) => finish(code ?? (sig ? -1 : -2)));
  });
}

export const isFailure = (err: unknown, kind: PulumiFailure): boolean =>
  err instanceof PulumiCliError && err.kind === kind;

function classify(text: string): PulumiFailure {
  if (/no stack named.*found/.test(text)) return 'stack-not-found';
  if (/stack.*already exists/.test(text)) return 'stack-exists';
  if (
    text.includes('[409] Conflict: Another update is currently in progress.') ||
    text.includes('the stack is currently locked by')
  )
    return 'locked';
  return 'failed';
}

/**
 * Runs an engine operation (`up`, `preview`, `destroy`) with its event log written to a private
 * temporary file, and returns the events once the CLI is done (whether it failed or not): the
 * outputs and diagnostics are read from them instead of from more launches.
 */
export async function runWithEvents(
  run: PulumiRun,
  onEvents: (events: PulumiEvent[]) => void,
): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'cm-pulumi-events-'));
  const log = join(dir, 'events.jsonl');
  try {
    await runPulumi({
      ...run,
      // `auto.local` is what the Automation API records in the update's metadata, kept as it was.
      args: [...run.args, '--exec-kind', 'auto.local', '--event-log', log],
      // The event log is one of the CLI's debug flags.
      env: { ...run.env, PULUMI_DEBUG_COMMANDS: 'true' },
    }).finally(async () => onEvents(parseEvents(await readFile(log, 'utf8').catch(() => ''))));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function parseEvents(text: string): PulumiEvent[] {
  const events: PulumiEvent[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    try {
      events.push(JSON.parse(line) as PulumiEvent);
    } catch {
      // A line cut short by a killed CLI.
    }
  }
  return events;
}

/** Pulumi's marker of a secret value (in engine events the value itself is masked). */
export const SECRET_SIG = '4dabf18193072939515e22adb298388d';

/**
 * The stack's outputs as the last update left them, from its events; undefined when they are not
 * all there in clear (a secret output is masked in events: the caller asks `stack output`).
 */
export function outputsOfEvents(events: PulumiEvent[]): Record<string, unknown> | undefined {
  let outputs: Record<string, unknown> | undefined;
  for (const e of events) {
    const meta = e.resOutputsEvent?.metadata;
    if (meta?.type === 'pulumi:pulumi:Stack' && meta.new?.outputs) outputs = meta.new.outputs;
  }
  if (outputs === undefined || JSON.stringify(outputs).includes(SECRET_SIG)) return undefined;
  return outputs;
}

/**
 * Sets the plaintext config of a stack in its settings file (`Pulumi.<stack>.yaml`, which the CLI
 * reads on every run), as `config set-all --plaintext` would, without a launch: the `config` map is
 * replaced, the other entries (the secrets provider's salt) are kept. Written to a temporary file renamed into place: a crash leaves the
 * old file or the new one.
 */
export async function writeStackConfig(
  workDir: string,
  stack: string,
  config: Record<string, string>,
): Promise<void> {
  const file = join(workDir, `Pulumi.${stack}.yaml`);
  const kept: string[] = [];
  let inConfig = false;
  for (const line of (await readFile(file, 'utf8').catch(() => '')).split('\n')) {
    // Top-level keys start in the first column; the config map's entries are indented under it.
    if (/^[^\s#]/.test(line)) inConfig = /^config:/.test(line);
    if (!inConfig && line.trim() !== '') kept.push(line);
  }
  const entries = Object.entries(config).map(
    ([key, value]) => `  ${yamlString(key)}: ${yamlString(value)}`,
  );
  const tmp = join(workDir, `.Pulumi.${stack}.yaml.${randomBytes(4).toString('hex')}.tmp`);
  await writeFile(tmp, [...kept, 'config:', ...entries, ''].join('\n'), { mode: 0o600 });
  await rename(tmp, file);
}

/**
 * A YAML double-quoted scalar: JSON's escapes are YAML's, and everything past printable ASCII is
 * escaped too (YAML takes some of it, U+2028 say, for line breaks, and wants astral characters as
 * one `\U` escape rather than JSON's surrogate pairs).
 */
function yamlString(value: string): string {
  return JSON.stringify(value).replace(/[^\x20-\x7e]/gu, (c) => {
    const code = c.codePointAt(0)!;
    return code > 0xffff
      ? `\\U${code.toString(16).padStart(8, '0')}`
      : `\\u${code.toString(16).padStart(4, '0')}`;
  });
}
