import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { freePort } from './services';

const ROOT = resolve(__dirname, '..', '..');
const MAIN = join(ROOT, 'dist', 'main.js');

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
export async function ensureBuilt(): Promise<void> {
  if (existsSync(MAIN) && statSync(MAIN).mtimeMs >= newestMtime(join(ROOT, 'src'))) return;
  await new Promise<void>((done, fail) => {
    execFile('npm', ['run', '--silent', 'build'], { cwd: ROOT }, (err, stdout, stderr) => {
      if (err) fail(new Error(`npm run build failed: ${stdout}${stderr}`, { cause: err }));
      else done();
    });
  });
}

/** The built service (`node dist/main.js`) as a child process of its own process group. */
export interface ServiceProcess {
  child: ChildProcess;
  /** http://127.0.0.1:<port> */
  base: string;
  /** 127.0.0.1:<port> */
  address: string;
  /** The last 20 000 characters the service wrote (stdout and stderr), for failure messages. */
  output(): string;
  /** SIGKILL to the whole process group (the service, its Pulumi CLIs and programs): a crash. */
  crash(): Promise<void>;
  /** SIGTERM, then waits for the exit. */
  stop(): Promise<void>;
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((r) => child.once('exit', () => r()));
}

/**
 * Starts `node dist/main.js` on a free port with OCI_INSECURE and the given DIR, CACHE and extra
 * env, and waits until /healthcheck answers (bounded).
 */
export async function startServiceProcess(opts: {
  dir: string;
  cache: string;
  env?: Record<string, string>;
  bootTimeoutMs?: number;
  /** The repository root (default: found from this file; compiled benches pass the cwd). */
  root?: string;
}): Promise<ServiceProcess> {
  const port = await freePort();
  const root = opts.root ?? ROOT;
  const child = spawn(process.execPath, [join(root, 'dist', 'main.js')], {
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
  let err = '';
  for (const stream of [child.stdout, child.stderr]) {
    stream?.setEncoding('utf8');
    stream?.on('data', (d: string) => (err = (err + d).slice(-20_000)));
  }
  const base = `http://127.0.0.1:${port}`;
  const signalGroup = (signal: NodeJS.Signals): void => {
    try {
      if (child.pid !== undefined) process.kill(-child.pid, signal);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ESRCH') throw e;
    }
  };
  const service: ServiceProcess = {
    child,
    base,
    address: `127.0.0.1:${port}`,
    output: () => err,
    crash: async () => {
      signalGroup('SIGKILL');
      await exited(child);
    },
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      await exited(child);
    },
  };
  const deadline = Date.now() + (opts.bootTimeoutMs ?? 60_000);
  for (;;) {
    if (child.exitCode !== null) throw new Error(`the service exited at boot: ${err}`);
    const up = await fetch(`${base}/healthcheck`).then(
      (r) => r.ok,
      () => false,
    );
    if (up) return service;
    if (Date.now() > deadline) {
      await service.crash();
      throw new Error(`the service did not answer /healthcheck in time: ${err}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}
