// CPU profile of the service during pooled claims: where a claim's time goes in the process.
// Starts the built service with the inspector on a loopback port, seeds a pool through the state
// store (as bench/claims.bench.ts does), profiles only the REST claims (through the DevTools
// protocol: start-up is not in the profile), made by one client after the other or by several at
// once, and prints the self time by package (or source file of the service) and the heaviest
// functions. Run: npm run profile [-- <claims, default 500> [<clients, default 1>]]. The
// .cpuprofile file is written to the current directory's .local/ for Chrome DevTools or
// speedscope.
import { Logger } from '@nestjs/common';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FsStateStore } from '../src/adapters/state/fs-state-store.adapter';
import { startReplica } from '../test/support/replica-process';
import { freePort, startRegistry } from '../test/support/services';
import { useToolchainPath } from '../test/support/toolchain';
import { pushOutputsOnly } from './fixtures';
import { instanceRecord, seedInstances } from './seed';
import { row, summary, timed } from './stats';

const CHALLENGE = 'profile';
const json = { 'content-type': 'application/json' };

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}
interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
}

/** Where a frame's code lives: a package of node_modules, a file of the service, or node itself. */
function owner(url: string): string {
  if (url === '') return '(native, GC, idle)';
  const modules = url.lastIndexOf('node_modules/');
  if (modules >= 0) {
    const parts = url.slice(modules + 'node_modules/'.length).split('/');
    return parts[0]?.startsWith('@') ? `${parts[0]}/${parts[1]}` : (parts[0] ?? url);
  }
  if (url.startsWith('node:')) return url;
  const dist = url.lastIndexOf('/dist/');
  return dist >= 0 ? url.slice(dist + 1) : url;
}

function report(profile: CpuProfile, claims: number): void {
  const interval = (profile.endTime - profile.startTime) / 1000 / profile.samples.length;
  const hits = new Map<number, number>();
  for (const id of profile.samples) hits.set(id, (hits.get(id) ?? 0) + 1);
  const byOwner = new Map<string, number>();
  const byFunction = new Map<string, number>();
  let busy = 0;
  for (const node of profile.nodes) {
    const ms = (hits.get(node.id) ?? 0) * interval;
    if (ms === 0) continue;
    const { functionName, url, lineNumber } = node.callFrame;
    if (functionName === '(idle)' || functionName === '(program)') continue;
    busy += ms;
    const who = functionName === '(garbage collector)' ? '(garbage collector)' : owner(url);
    byOwner.set(who, (byOwner.get(who) ?? 0) + ms);
    const fn = `${functionName || '(anonymous)'} ${owner(url)}:${lineNumber + 1}`;
    byFunction.set(fn, (byFunction.get(fn) ?? 0) + ms);
  }
  const top = (m: Map<string, number>, n: number): [string, number][] =>
    [...m.entries()].sort((a, b) => b[1] - a[1]).slice(0, n);
  console.log(
    `busy (not idle) CPU time in the service: ${busy.toFixed(0)} ms, ${(busy / claims).toFixed(2)} ms per claim`,
  );
  console.log('self time by owner (ms per claim, share of busy time):');
  for (const [who, ms] of top(byOwner, 25))
    console.log(
      `  ${(ms / claims).toFixed(3).padStart(7)}  ${((100 * ms) / busy).toFixed(1).padStart(5)}%  ${who}`,
    );
  console.log('heaviest functions (self, ms per claim):');
  for (const [fn, ms] of top(byFunction, 25))
    console.log(`  ${(ms / claims).toFixed(3).padStart(7)}  ${fn}`);
}

/** A DevTools protocol session on the service's inspector (Node's global WebSocket). */
async function inspect(port: number): Promise<{
  send: (method: string, params?: object) => Promise<Record<string, unknown>>;
  close: () => void;
}> {
  const targets = (await (await fetch(`http://127.0.0.1:${port}/json/list`)).json()) as {
    webSocketDebuggerUrl: string;
  }[];
  const url = targets[0]?.webSocketDebuggerUrl;
  if (url === undefined) throw new Error('no inspector target');
  const socket = new WebSocket(url);
  await new Promise((resolve, reject) => {
    socket.addEventListener('open', resolve, { once: true });
    socket.addEventListener('error', reject, { once: true });
  });
  let next = 0;
  const pending = new Map<number, (result: Record<string, unknown>) => void>();
  socket.addEventListener('message', (message: MessageEvent) => {
    const { id, result } = JSON.parse(String(message.data)) as {
      id?: number;
      result?: Record<string, unknown>;
    };
    if (id !== undefined) pending.get(id)?.(result ?? {});
  });
  return {
    send: (method, params = {}) =>
      new Promise((resolve) => {
        const id = ++next;
        pending.set(id, resolve);
        socket.send(JSON.stringify({ id, method, params }));
      }),
    close: () => socket.close(),
  };
}

async function main(): Promise<void> {
  const claims = Number(process.argv[2] ?? 500);
  // Clients claiming at once: 1 shows a claim's own path, more shows where a rush spends its CPU.
  const clients = Math.max(1, Number(process.argv[3] ?? 1));
  useToolchainPath();
  Logger.overrideLogger(['error']);
  const registry = await startRegistry();
  const scratch = mkdtempSync(join(tmpdir(), 'cm-profile-'));
  try {
    const ref = await pushOutputsOnly(registry.endpoint, scratch, 'profile');
    const dir = join(scratch, 'data');
    const inspectorPort = await freePort();
    const store = new FsStateStore({ dir });
    await store.onModuleInit();
    const service = await startReplica({
      name: 'profiled',
      dir,
      cache: join(scratch, 'cache'),
      env: {
        JANITOR_TICKER: '0',
        LOG_LEVEL: 'error',
        NODE_OPTIONS: `--inspect=127.0.0.1:${inspectorPort}`,
      },
      root: process.cwd(),
    });
    const session = await inspect(inspectorPort);
    try {
      const create = await fetch(`${service.base}/api/v1/challenge`, {
        method: 'POST',
        headers: json,
        body: JSON.stringify({ id: CHALLENGE, scenario: ref, timeout: '600s' }),
      });
      if (create.status !== 200) throw new Error(`CreateChallenge: ${await create.text()}`);
      await seedInstances(store, claims + 20, () => instanceRecord(CHALLENGE));
      await session.send('Profiler.enable');
      await session.send('Profiler.setSamplingInterval', { interval: 100 });
      await session.send('Profiler.start');
      const samples: number[] = [];
      let next = 0;
      const client = async (): Promise<void> => {
        while (next < claims) {
          const i = next++;
          const [ms, status] = await timed(async () => {
            const res = await fetch(`${service.base}/api/v1/instance`, {
              method: 'POST',
              headers: json,
              body: JSON.stringify({ challengeId: CHALLENGE, sourceId: `p${i}` }),
            });
            await res.text();
            return res.status;
          });
          if (status !== 200) throw new Error(`CreateInstance answered ${status}`);
          samples.push(ms);
        }
      };
      await Promise.all(Array.from({ length: clients }, client));
      const { profile } = (await session.send('Profiler.stop')) as { profile: CpuProfile };
      row(`pooled claim, REST, ${clients} client(s) (profiled)`, summary(samples));
      mkdirSync('.local', { recursive: true });
      writeFileSync(join('.local', 'claims.cpuprofile'), JSON.stringify(profile));
      console.log('profile written to .local/claims.cpuprofile');
      report(profile, claims);
    } finally {
      session.close();
      await service.stop();
    }
  } finally {
    await registry.stop();
    rmSync(scratch, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
