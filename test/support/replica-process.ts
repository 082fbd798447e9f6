import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { freePort } from './services';

const ROOT = resolve(__dirname, '..', '..');

function newestMtime(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir)) {
    const path = join(dir, entry);
    const st = statSync(path);
    newest = Math.max(newest, st.isDirectory() ? newestMtime(path) : st.mtimeMs);
  }
  return newest;
}

/** Runs `npm run build` when `dist/main.js` is missing or older than a file of `src/`. */
export async function buildServiceIfStale(root = ROOT): Promise<void> {
  const main = join(root, 'dist', 'main.js');
  if (existsSync(main) && statSync(main).mtimeMs >= newestMtime(join(root, 'src'))) return;
  await new Promise<void>((done, fail) => {
    execFile('npm', ['run', '--silent', 'build'], { cwd: root }, (err, stdout, stderr) => {
      if (err) fail(new Error(`npm run build failed: ${stdout}${stderr}`, { cause: err }));
      else done();
    });
  });
}

/** One service process (a replica): the built service (`node dist/main.js`) in a process group of its own. */
export interface Replica {
  name: string;
  child: ChildProcess;
  /** http://127.0.0.1:<port> */
  base: string;
  /** 127.0.0.1:<port> */
  address: string;
  /** The last 20 000 characters it wrote (stdout and stderr), for failure messages. */
  output(): string;
  running(): boolean;
  /** SIGKILL to the whole group (the service, its Pulumi CLIs and programs): `kill -9`. */
  crash(): Promise<void>;
  /** SIGTERM, then SIGKILL to the group after `graceMs`; waits for the exit. */
  stop(graceMs?: number): Promise<void>;
}

export interface ReplicaOptions {
  name: string;
  /** Shared DIR. */
  dir: string;
  /** CACHE of this replica. */
  cache: string;
  env?: Record<string, string>;
  bootTimeoutMs?: number;
  /** Repository root (default: found from this file; compiled benches pass the cwd). */
  root?: string;
  /** Node's own flags before `dist/main.js` (benchmarks pass `npm start`'s). */
  nodeFlags?: string[];
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((r) => child.once('exit', () => r()));
}

/**
 * Starts a replica on a free port with OCI_INSECURE, the given DIR, CACHE and extra env, and
 * waits (bounded) until its /healthcheck answers 200.
 */
export async function startReplica(opts: ReplicaOptions): Promise<Replica> {
  const port = await freePort();
  const root = opts.root ?? ROOT;
  const args = [...(opts.nodeFlags ?? []), join(root, 'dist', 'main.js')];
  const child = spawn(process.execPath, args, {
    cwd: root,
    env: {
      ...process.env,
      PORT: String(port),
      DIR: opts.dir,
      CACHE: opts.cache,
      OCI_INSECURE: 'true',
      IAC_TIMEOUT: '4m',
      LOG_LEVEL: process.env.CM_TEST_LOG_LEVEL ?? 'warn',
      ...opts.env,
    },
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  for (const stream of [child.stdout, child.stderr]) {
    stream?.setEncoding('utf8');
    stream?.on('data', (d: string) => (out = (out + d).slice(-20_000)));
  }
  const signalGroup = (signal: NodeJS.Signals): void => {
    try {
      if (child.pid !== undefined) process.kill(-child.pid, signal);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ESRCH') throw e;
    }
  };
  const running = (): boolean => child.exitCode === null && child.signalCode === null;
  const base = `http://127.0.0.1:${port}`;
  const replica: Replica = {
    name: opts.name,
    child,
    base,
    address: `127.0.0.1:${port}`,
    output: () => out,
    running,
    crash: async () => {
      signalGroup('SIGKILL');
      await exited(child);
    },
    stop: async (graceMs = 10_000) => {
      if (running()) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => signalGroup('SIGKILL'), graceMs);
        await exited(child);
        clearTimeout(timer);
      }
      // Pulumi CLIs or programs it left behind.
      signalGroup('SIGKILL');
    },
  };
  await awaitHealthy({
    what: `replica ${opts.name}`,
    base,
    running,
    output: () => out,
    giveUp: () => replica.crash(),
    timeoutMs: opts.bootTimeoutMs ?? 60_000,
  });
  return replica;
}

/**
 * Polls `<base>/healthcheck` until it answers 200. Fails if the process exits meanwhile, or (after
 * `giveUp`) when `timeoutMs` has passed. A loop of its own, not vi.waitFor: the benchmarks start
 * replicas outside vitest.
 */
export async function awaitHealthy(opts: {
  what: string;
  base: string;
  running: () => boolean;
  output: () => string;
  giveUp: () => Promise<void>;
  timeoutMs: number;
}): Promise<void> {
  const deadline = Date.now() + opts.timeoutMs;
  for (;;) {
    if (!opts.running()) throw new Error(`${opts.what} exited at boot: ${opts.output()}`);
    const up = await fetch(`${opts.base}/healthcheck`, {
      signal: AbortSignal.timeout(2_000),
    }).then(
      (r) => r.ok,
      () => false,
    );
    if (up) return;
    if (Date.now() > deadline) {
      await opts.giveUp();
      throw new Error(`${opts.what} did not answer /healthcheck in time: ${opts.output()}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * SIGKILLs every process whose environment has `name=value` (Linux /proc), this one excepted.
 * Pulumi starts its language host and provider plugins in process groups of their own, so they
 * outlive a replica killed with its group; they inherit its environment (DIR, CACHE), which is
 * how the tests find the ones they caused.
 */
export function killProcessesWithEnv(name: string, value: string): number[] {
  const wanted = `${name}=${value}`;
  const killed: number[] = [];
  for (const entry of readdirSync('/proc')) {
    const pid = Number(entry);
    if (!Number.isInteger(pid) || pid === process.pid) continue;
    let environ: string;
    try {
      environ = readFileSync(`/proc/${pid}/environ`, 'utf8');
    } catch {
      continue; // gone meanwhile, or not ours to read
    }
    if (!environ.split('\0').includes(wanted)) continue;
    try {
      process.kill(pid, 'SIGKILL');
      killed.push(pid);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ESRCH') throw e;
    }
  }
  return killed;
}
