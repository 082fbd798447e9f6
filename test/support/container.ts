import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { resolve } from 'node:path';
import { awaitHealthy } from './replica-process';
import { freePort } from './services';

const ROOT = resolve(__dirname, '..', '..');

/** Runs a command to its end; rejects with its output when it fails. */
export function run(
  cmd: string,
  args: readonly string[],
  timeoutMs = 60_000,
): Promise<{ stdout: string; stderr: string }> {
  return new Promise((done, fail) => {
    execFile(
      cmd,
      args,
      { cwd: ROOT, encoding: 'utf8', timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 },
      (err, stdout, stderr) => {
        if (err)
          fail(new Error(`${cmd} ${args.join(' ')} failed: ${stdout}${stderr}`, { cause: err }));
        else done({ stdout, stderr });
      },
    );
  });
}

/** `bash scripts/image.sh build`: the README's one command, with the stand-in bases. */
export async function buildImage(target: 'full' | 'slim', tag: string): Promise<string> {
  const { stderr } = await run(
    'bash',
    ['scripts/image.sh', 'build', '--target', target, '--tag', tag],
    60 * 60_000,
  );
  return stderr.trim();
}

/** Size of a local image in bytes. */
export async function imageSize(tag: string): Promise<number> {
  const { stdout } = await run('podman', ['image', 'inspect', '--format', '{{.Size}}', tag]);
  return Number(stdout.trim());
}

/** A process of a container, seen from the host's /proc. */
export interface ContainerProcess {
  pid: number;
  /** Real, effective, saved and filesystem uids. */
  uids: number[];
  /** One-letter state (`Z`: a zombie nobody reaped). */
  state: string;
  cmdline: string;
}

/** The service in a container started with `scripts/image.sh run`. */
export interface Container {
  name: string;
  /** http://127.0.0.1:<port> (host network) */
  base: string;
  /** 127.0.0.1:<port> */
  address: string;
  /** `podman run` in the foreground: its exit code is the container's. */
  child: ChildProcess;
  /** The last 20 000 characters it wrote (stdout and stderr), for failure messages. */
  output(): string;
  /** Every process in the container's PID namespace, its init first. */
  processes(): Promise<ContainerProcess[]>;
  /** Sends a signal to the container's PID 1 (the init, which hands it to the service). */
  signal(signal: 'TERM' | 'KILL'): Promise<void>;
  /** Exit code of the container, waiting at most `withinMs`. */
  exitCode(withinMs: number): Promise<number | null>;
  /** Removes it whatever its state (idempotent). */
  remove(): Promise<void>;
}

export interface ContainerOptions {
  name: string;
  image: string;
  /** Host directories (writable by uid 65532) for DIR and CACHE. */
  data: string;
  cache: string;
  env?: Record<string, string>;
  /** Extra `podman run` options (volumes, tmpfs, …). */
  options?: readonly string[];
  bootTimeoutMs?: number;
}

function readProc(pid: number): ContainerProcess | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const uidLine = /^Uid:\s+(.*)$/m.exec(status)?.[1] ?? '';
    return {
      pid,
      // The command name in stat is parenthesised and may hold spaces: the state follows the last ')'.
      state: stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3),
      uids: uidLine.split(/\s+/).map(Number),
      cmdline: readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim(),
    };
  } catch {
    return undefined; // gone meanwhile
  }
}

/** The PID namespace of a host process, or undefined when it is gone. */
function pidNamespace(pid: number): string | undefined {
  try {
    return readlinkSync(`/proc/${pid}/ns/pid`);
  } catch {
    return undefined;
  }
}

/**
 * Starts the image with `bash scripts/image.sh run` (runc, host network, the ulimits these
 * machines allow) on a free port, and waits (bounded) until its /healthcheck answers 200.
 */
export async function startContainer(opts: ContainerOptions): Promise<Container> {
  const port = await freePort();
  const env = { PORT: String(port), OCI_INSECURE: 'true', LOG_LEVEL: 'warn', ...opts.env };
  const args = [
    'scripts/image.sh',
    'run',
    '--tag',
    opts.image,
    '--data',
    opts.data,
    '--cache',
    opts.cache,
    '--name',
    opts.name,
    ...Object.entries(env).flatMap(([k, v]) => ['-e', `${k}=${v}`]),
    ...(opts.options ?? []),
  ];
  const child = spawn('bash', args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  for (const stream of [child.stdout, child.stderr]) {
    stream.setEncoding('utf8');
    stream.on('data', (d: string) => (out = (out + d).slice(-20_000)));
  }
  const running = (): boolean => child.exitCode === null && child.signalCode === null;
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  const initPid = async (): Promise<number> => {
    const { stdout } = await run('podman', ['inspect', '--format', '{{.State.Pid}}', opts.name]);
    return Number(stdout.trim());
  };
  const base = `http://127.0.0.1:${port}`;
  const container: Container = {
    name: opts.name,
    base,
    address: `127.0.0.1:${port}`,
    child,
    output: () => out,
    processes: async () => {
      const init = await initPid();
      const ns = pidNamespace(init);
      if (ns === undefined) return [];
      const found: ContainerProcess[] = [];
      for (const entry of readdirSync('/proc')) {
        const pid = Number(entry);
        if (!Number.isInteger(pid) || pidNamespace(pid) !== ns) continue;
        const p = readProc(pid);
        if (p) found.push(p);
      }
      return found.sort((a, b) => (a.pid === init ? -1 : b.pid === init ? 1 : a.pid - b.pid));
    },
    signal: async (signal) => {
      await run('podman', ['kill', '--signal', signal, opts.name]);
    },
    exitCode: (withinMs) =>
      new Promise((done, fail) => {
        const timer = setTimeout(
          () => fail(new Error(`${opts.name} still running after ${withinMs} ms: ${out}`)),
          withinMs,
        );
        void exited.then((code) => {
          clearTimeout(timer);
          done(code);
        });
      }),
    remove: async () => {
      await run('podman', ['rm', '--force', '--ignore', opts.name]);
      if (running()) child.kill('SIGKILL');
    },
  };
  await awaitHealthy({
    what: `container ${opts.name}`,
    base,
    running,
    output: () => out,
    giveUp: () => container.remove(),
    timeoutMs: opts.bootTimeoutMs ?? 120_000,
  });
  return container;
}
