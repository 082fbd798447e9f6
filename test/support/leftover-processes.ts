import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * Finding the processes an e2e run started and left running (Linux /proc).
 *
 * Two kinds are traced. Whatever the test processes start inherits their environment, so the
 * services, Pulumi CLIs, language hosts, programs and providers carry {@link RUN_MARKER}. The
 * resources scenarios start (the example's flag server) get an environment of their own and no
 * marker, but they run in the directory of the stack that created them, and every stack of the
 * suite lives in a scratch directory `cm-…` under the temporary directory the global set-up made
 * for the run (TMPDIR): a process whose working directory lies there, started after
 * `sinceTicks`, is one of the suite's. Another run on the same machine has a directory of its own.
 */

/** Environment variable whose value names one e2e run; inherited by every process it starts. */
export const RUN_MARKER = 'CM_E2E_RUN';

export interface LeftoverProcess {
  pid: number;
  args: string;
  cwd: string;
}

/**
 * Clock ticks since boot: the unit of process start times in /proc. Linux fixes it at 100 a
 * second for user space (USER_HZ), whatever the kernel's own tick.
 */
export function ticksNow(): number {
  return Math.floor(Number(readFileSync('/proc/uptime', 'utf8').split(' ')[0]) * 100);
}

/** Start time of a process in clock ticks since boot (field 22 of /proc/<pid>/stat). */
export function startTicks(pid: number | 'self' = 'self'): number | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name (field 2) may hold spaces and parentheses: count from its closing one.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(fields[19]);
}

function read(path: string): string | undefined {
  try {
    return readFileSync(path, 'latin1');
  } catch {
    return undefined; // gone meanwhile, a zombie, or not ours to read
  }
}

/** The process title vitest gives its worker watchdog. */
const VITEST_WATCHDOG = 'vitest-watchdog';

/** Processes of run `run` (or working in a scratch directory of the suite since `sinceTicks`). */
export function processesOfRun(
  run: string,
  sinceTicks: number,
  exclude: ReadonlySet<number>,
): LeftoverProcess[] {
  const marker = `${RUN_MARKER}=${run}`;
  const scratch = join(tmpdir(), 'cm-');
  const found: LeftoverProcess[] = [];
  for (const entry of readdirSync('/proc')) {
    const pid = Number(entry);
    if (!Number.isInteger(pid) || exclude.has(pid)) continue;
    const environ = read(`/proc/${pid}/environ`);
    if (environ === undefined || environ === '') continue;
    const cwd = cwdOf(pid);
    if (cwd === undefined) continue;
    const marked = environ.split('\0').includes(marker);
    const inScratch = cwd.startsWith(scratch) && (startTicks(pid) ?? 0) >= sinceTicks;
    if (!marked && !inScratch) continue;
    const args = (read(`/proc/${pid}/cmdline`) ?? '').replace(/[\s\0]+/g, ' ').trim();
    // Vitest's own watchdog (a child of the runner, which kills stuck workers once the runner is
    // gone) inherits the marker with the runner's environment; it is not ours to reap.
    if (args === VITEST_WATCHDOG) continue;
    found.push({ pid, args: args.length > 300 ? `${args.slice(0, 300)}…` : args, cwd });
  }
  return found;
}

/** The working directory of `pid`, or undefined once it has exited or is not ours to read. */
function cwdOf(pid: number): string | undefined {
  try {
    return readlinkSync(`/proc/${pid}/cwd`);
  } catch {
    return undefined;
  }
}

/** This process and its ancestors: the test runner itself carries the marker. */
export function selfAndAncestors(): Set<number> {
  const pids = new Set<number>();
  for (let pid = process.pid; pid > 1 && !pids.has(pid);) {
    pids.add(pid);
    const stat = read(`/proc/${pid}/stat`);
    if (stat === undefined) break;
    pid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  }
  return pids;
}

/**
 * Waits (bounded: processes being stopped take a moment to exit) until no process of the run is
 * left but the excluded ones; SIGKILLs and returns the ones still there at the end. A loop of its
 * own, not vi.waitFor: the global tear-down runs it outside any test file.
 */
export async function reapLeftovers(
  run: string,
  sinceTicks: number,
  exclude: ReadonlySet<number>,
  waitMs = 10_000,
): Promise<LeftoverProcess[]> {
  const deadline = Date.now() + waitMs;
  let left = processesOfRun(run, sinceTicks, exclude);
  while (left.length > 0 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 200));
    left = processesOfRun(run, sinceTicks, exclude);
  }
  for (const p of left) {
    try {
      process.kill(p.pid, 'SIGKILL');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ESRCH') throw e;
    }
  }
  return left;
}

/**
 * {@link reapLeftovers} for the run named in this process's environment, sparing this process
 * and its ancestors (the test runner carries the marker too); what was left, listed one a line,
 * or '' when nothing was.
 */
export async function leftoversOfThisRun(sinceTicks: number): Promise<string> {
  const run = process.env[RUN_MARKER];
  if (run === undefined) throw new Error(`${RUN_MARKER} is unset: the global set-up did not run`);
  const left = await reapLeftovers(run, sinceTicks, selfAndAncestors());
  return left.map((p) => `  pid ${p.pid} in ${p.cwd}: ${p.args}`).join('\n');
}
