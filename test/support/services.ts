import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { X509Certificate, randomUUID, sign } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync, openSync, closeSync, readFileSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A process started for the tests, with its scratch directory. */
export interface RunningService {
  /** host:port */
  endpoint: string;
  stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() =>
        typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port')),
      );
    });
  });
}

/**
 * Polls `probe` until it answers true. A loop of its own, not vi.waitFor: the global set-up and
 * the benchmarks start these services outside any test file, where vitest's `vi` cannot run.
 */
async function waitFor(
  what: string,
  probe: () => Promise<boolean>,
  logFile: string,
  timeoutMs = 30_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await probe().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(
    `${what} did not become ready in ${timeoutMs} ms; its log:\n${readFileSync(logFile, 'utf8').slice(-3000)}`,
  );
}

function startProcess(
  cmd: string,
  args: string[],
  dir: string,
): { child: ChildProcess; log: string } {
  const log = join(dir, 'service.log');
  const fd = openSync(log, 'a');
  const child = spawn(cmd, args, { stdio: ['ignore', fd, fd], detached: false });
  closeSync(fd);
  return { child, log };
}

function stopper(child: ChildProcess, dir: string): () => Promise<void> {
  return async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise<void>((r) => child.once('exit', () => r()));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(dir, { recursive: true, force: true });
  };
}

/** A single-member etcd that tests can kill and start again (same port, same data). */
export interface RestartableEtcd extends RunningService {
  /** SIGKILLs it (no graceful stop) and waits for the exit. */
  kill(): Promise<void>;
  /** Starts it again on its port and data dir, and waits until it is healthy. */
  restart(): Promise<void>;
}

/** A single-member etcd on 127.0.0.1 with a temporary data dir; `extraArgs` go to etcd. */
export async function startEtcd(extraArgs: readonly string[] = []): Promise<RestartableEtcd> {
  const dir = mkdtempSync(join(tmpdir(), 'cm-etcd-'));
  const [client, peer] = [await freePort(), await freePort()];
  const launch = (): { child: ChildProcess; log: string } =>
    startProcess(
      'etcd',
      [
        '--name',
        'test',
        '--data-dir',
        join(dir, 'data'),
        '--logger=zap',
        '--log-level=warn',
        '--listen-client-urls',
        `http://127.0.0.1:${client}`,
        '--advertise-client-urls',
        `http://127.0.0.1:${client}`,
        '--listen-peer-urls',
        `http://127.0.0.1:${peer}`,
        '--initial-advertise-peer-urls',
        `http://127.0.0.1:${peer}`,
        '--initial-cluster',
        `test=http://127.0.0.1:${peer}`,
        ...extraArgs,
      ],
      dir,
    );
  const healthy = async (): Promise<boolean> => {
    const res = await fetch(`http://127.0.0.1:${client}/health`, {
      signal: AbortSignal.timeout(1_000),
    });
    return res.ok && ((await res.json()) as { health?: string }).health === 'true';
  };
  let { child, log } = launch();
  await waitFor('etcd', healthy, log);
  const running = (): boolean => child.exitCode === null && child.signalCode === null;
  return {
    endpoint: `127.0.0.1:${client}`,
    stop: async () => stopper(child, dir)(),
    async kill() {
      if (!running()) return;
      const exited = new Promise<void>((r) => child.once('exit', () => r()));
      child.kill('SIGKILL');
      await exited;
    },
    async restart() {
      if (!running()) ({ child, log } = launch());
      await waitFor('etcd', healthy, log);
    },
  };
}

export interface RegistryOptions {
  /** htpasswd file content (bcrypt entries) to require basic auth. */
  htpasswd?: string;
}

/** CNCF distribution (Debian's docker-registry) on 127.0.0.1 with temporary storage. */
export async function startRegistry(opts: RegistryOptions = {}): Promise<RunningService> {
  const dir = mkdtempSync(join(tmpdir(), 'cm-registry-'));
  const port = await freePort();
  const auth = opts.htpasswd
    ? `auth:\n  htpasswd:\n    realm: test-realm\n    path: ${join(dir, 'htpasswd')}\n`
    : '';
  if (opts.htpasswd) writeFileSync(join(dir, 'htpasswd'), opts.htpasswd);
  writeFileSync(
    join(dir, 'config.yml'),
    `version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: ${join(dir, 'data')}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:${port}\n  secret: test-secret\n${auth}`,
  );
  const { child, log } = startProcess('docker-registry', ['serve', join(dir, 'config.yml')], dir);
  await waitFor(
    'registry',
    async () => {
      const res = await fetch(`http://127.0.0.1:${port}/v2/`);
      return res.status === 200 || res.status === 401;
    },
    log,
  );
  return { endpoint: `127.0.0.1:${port}`, stop: stopper(child, dir) };
}

export interface TokenAuthRegistryOptions {
  /** The only credentials the token server accepts (Basic auth on the token request). */
  username: string;
  password: string;
}

/** A registry behind the bearer-token flow, with the token server that issues its tokens. */
export interface TokenAuthRegistry extends RunningService {
  /** How many tokens the token server has issued. */
  tokensIssued(): number;
}

/**
 * CNCF distribution with `auth.token`, plus a Node token server on another loopback port that
 * signs RS256 JWTs with a throw-away self-signed certificate (sent as `x5c`, trusted through
 * `rootcertbundle`). Good credentials get every action they ask for; anything else gets 401.
 */
export async function startTokenAuthRegistry(
  opts: TokenAuthRegistryOptions,
): Promise<TokenAuthRegistry> {
  const dir = mkdtempSync(join(tmpdir(), 'cm-token-registry-'));
  const [port, tokenPort] = [await freePort(), await freePort()];
  const keyFile = join(dir, 'token.key');
  const certFile = join(dir, 'token.crt');
  execFileSync(
    'openssl',
    ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyFile, '-out', certFile].concat([
      '-days',
      '2',
      '-subj',
      '/CN=test-token-issuer',
    ]),
    { stdio: 'ignore' },
  );
  const key = readFileSync(keyFile);
  const x5c = new X509Certificate(readFileSync(certFile)).raw.toString('base64');
  const service = 'test-registry';
  const issuer = 'test-issuer';
  const expected = `Basic ${Buffer.from(`${opts.username}:${opts.password}`).toString('base64')}`;
  let issued = 0;

  const tokenServer = createHttpServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://token.local');
    if (url.pathname !== '/token' || req.headers.authorization !== expected) {
      res
        .writeHead(401, { 'Content-Type': 'application/json' })
        .end('{"details":"bad credentials"}');
      return;
    }
    const now = Math.floor(Date.now() / 1000);
    const access = url.searchParams.getAll('scope').map((scope) => {
      const [type, ...rest] = scope.split(':');
      const actions = rest.pop() ?? '';
      return { type, name: rest.join(':'), actions: actions.split(',').filter(Boolean) };
    });
    const b64 = (value: unknown): string =>
      Buffer.from(JSON.stringify(value)).toString('base64url');
    const unsigned = `${b64({ typ: 'JWT', alg: 'RS256', x5c: [x5c] })}.${b64({
      iss: issuer,
      sub: opts.username,
      aud: service,
      exp: now + 300,
      nbf: now - 10,
      iat: now,
      jti: randomUUID(),
      access,
    })}`;
    const token = `${unsigned}.${sign('sha256', Buffer.from(unsigned), key).toString('base64url')}`;
    issued++;
    res
      .writeHead(200, { 'Content-Type': 'application/json' })
      .end(JSON.stringify({ token, access_token: token, expires_in: 300 }));
  });
  await new Promise<void>((resolve) => tokenServer.listen(tokenPort, '127.0.0.1', resolve));

  writeFileSync(
    join(dir, 'config.yml'),
    `version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: ${join(dir, 'data')}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:${port}\n  secret: test-secret\n` +
      `auth:\n  token:\n    realm: http://127.0.0.1:${tokenPort}/token\n    service: ${service}\n    issuer: ${issuer}\n    rootcertbundle: ${certFile}\n`,
  );
  const { child, log } = startProcess('docker-registry', ['serve', join(dir, 'config.yml')], dir);
  const stopRegistry = stopper(child, dir);
  try {
    await waitFor(
      'token-auth registry',
      async () => (await fetch(`http://127.0.0.1:${port}/v2/`)).status === 401,
      log,
    );
  } catch (err) {
    tokenServer.close();
    await stopRegistry();
    throw err;
  }
  return {
    endpoint: `127.0.0.1:${port}`,
    tokensIssued: () => issued,
    stop: async () => {
      await new Promise<void>((resolve) => tokenServer.close(() => resolve()));
      await stopRegistry();
    },
  };
}

/** One member of {@link startEtcdCluster}'s cluster. */
export interface EtcdMember {
  name: string;
  /** host:port of its client URL. */
  endpoint: string;
  /** SIGKILLs it (no graceful leave) and waits for the exit. */
  kill(): Promise<void>;
  /** Starts it again on its data dir (`--initial-cluster-state existing`). */
  restart(): void;
  running(): boolean;
}

/** A 3-member etcd cluster on loopback, for failover and quorum-loss tests. */
export interface EtcdCluster {
  members: EtcdMember[];
  /** Every member's host:port. */
  endpoints: string[];
  /** The current leader, as the running members report it. */
  leader(): Promise<EtcdMember>;
  /** Waits until every running member reports healthy (the cluster has a leader). */
  waitHealthy(timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Three etcd members on free 127.0.0.1 ports with temporary data dirs (healthy in about 2.5 s
 * on these machines). Members can be killed and restarted to test leader and quorum loss.
 */
export async function startEtcdCluster(): Promise<EtcdCluster> {
  const dir = mkdtempSync(join(tmpdir(), 'cm-etcd-cluster-'));
  const specs: { name: string; client: number; peer: number; dir: string }[] = [];
  for (const name of ['m1', 'm2', 'm3']) {
    const memberDir = mkdtempSync(join(dir, `${name}-`));
    specs.push({ name, client: await freePort(), peer: await freePort(), dir: memberDir });
  }
  type Spec = (typeof specs)[number];
  const initialCluster = specs.map((s) => `${s.name}=http://127.0.0.1:${s.peer}`).join(',');
  const children = new Map<string, ChildProcess>();

  const launch = (spec: Spec, state: 'new' | 'existing'): void => {
    const { child } = startProcess(
      'etcd',
      [
        '--name',
        spec.name,
        '--data-dir',
        join(spec.dir, 'data'),
        '--logger=zap',
        '--log-level=warn',
        '--listen-client-urls',
        `http://127.0.0.1:${spec.client}`,
        '--advertise-client-urls',
        `http://127.0.0.1:${spec.client}`,
        '--listen-peer-urls',
        `http://127.0.0.1:${spec.peer}`,
        '--initial-advertise-peer-urls',
        `http://127.0.0.1:${spec.peer}`,
        '--initial-cluster',
        initialCluster,
        '--initial-cluster-token',
        'cm-test-cluster',
        '--initial-cluster-state',
        state,
      ],
      spec.dir,
    );
    children.set(spec.name, child);
  };
  const isRunning = (spec: Spec): boolean => {
    const child = children.get(spec.name);
    return child !== undefined && child.exitCode === null && child.signalCode === null;
  };
  const kill = async (spec: Spec): Promise<void> => {
    const child = children.get(spec.name);
    if (child === undefined || !isRunning(spec)) return;
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    child.kill('SIGKILL');
    await exited;
  };
  const healthy = async (spec: Spec): Promise<boolean> => {
    const res = await fetch(`http://127.0.0.1:${spec.client}/health`, {
      signal: AbortSignal.timeout(1_000),
    });
    return res.ok && ((await res.json()) as { health?: string }).health === 'true';
  };
  const waitHealthy = async (timeoutMs = 30_000): Promise<void> => {
    const running = specs.filter(isRunning);
    await waitFor(
      `etcd cluster members ${running.map((s) => s.name).join(', ')}`,
      async () => (await Promise.all(running.map(healthy))).every(Boolean),
      join((running[0] ?? specs[0]!).dir, 'service.log'),
      timeoutMs,
    );
  };
  const stop = async (): Promise<void> => {
    await Promise.all(specs.map(kill));
    rmSync(dir, { recursive: true, force: true });
  };

  for (const spec of specs) launch(spec, 'new');
  try {
    await waitHealthy();
  } catch (err) {
    await stop();
    throw err;
  }

  const members: EtcdMember[] = specs.map((spec) => ({
    name: spec.name,
    endpoint: `127.0.0.1:${spec.client}`,
    kill: () => kill(spec),
    restart: () => {
      if (!isRunning(spec)) launch(spec, 'existing');
    },
    running: () => isRunning(spec),
  }));
  return {
    members,
    endpoints: members.map((m) => m.endpoint),
    async leader() {
      // etcd 3.4's gRPC gateway; member ids are uint64 rendered as strings.
      const statuses = await Promise.all(
        specs.map(async (spec) => {
          if (!isRunning(spec)) return undefined;
          const res = await fetch(`http://127.0.0.1:${spec.client}/v3/maintenance/status`, {
            method: 'POST',
            body: '{}',
            signal: AbortSignal.timeout(1_000),
          }).catch(() => undefined);
          if (!res?.ok) return undefined;
          const body = (await res.json()) as { header: { member_id: string }; leader: string };
          return { memberId: body.header.member_id, leader: body.leader };
        }),
      );
      const leaderId = statuses.find((s) => s !== undefined && s.leader !== '0')?.leader;
      const index = statuses.findIndex((s) => s?.memberId === leaderId);
      const leader = members[index];
      if (leaderId === undefined || leader === undefined) {
        throw new Error('no running etcd member knows a leader');
      }
      return leader;
    },
    waitHealthy,
    stop,
  };
}
