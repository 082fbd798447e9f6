// Small helpers shared by the benchmarks: timing, percentiles and memory.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export async function timed<T>(work: () => Promise<T>): Promise<[number, T]> {
  const start = process.hrtime.bigint();
  const result = await work();
  return [Number(process.hrtime.bigint() - start) / 1e6, result];
}

export function percentile(sortedMs: number[], p: number): number {
  if (sortedMs.length === 0) return NaN;
  const i = Math.min(sortedMs.length - 1, Math.ceil((p / 100) * sortedMs.length) - 1);
  return sortedMs[Math.max(0, i)]!;
}

export function summary(samples: number[]): string {
  const s = [...samples].sort((a, b) => a - b);
  const fmt = (v: number): string => (v < 10 ? v.toFixed(2) : v.toFixed(0));
  return `n=${s.length} p50=${fmt(percentile(s, 50))} ms p90=${fmt(percentile(s, 90))} ms p99=${fmt(percentile(s, 99))} ms max=${fmt(s[s.length - 1] ?? NaN)} ms`;
}

export function row(label: string, value: string): void {
  console.log(`${label.padEnd(48)} ${value}`);
}

/** Resident set size of a live process, from /proc (Linux only), in MiB. */
export function rssMiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = /^VmRSS:\s+(\d+) kB$/m.exec(status)?.[1];
  if (kib === undefined) throw new Error(`no VmRSS for process ${pid}`);
  return Number(kib) / 1024;
}

/**
 * RSS of a bare `node` idling for `settleMs`: the floor the service's idle RSS is read against,
 * measured in the same run on the same Node.
 */
export async function bareNodeRssMiB(settleMs: number): Promise<number> {
  const bare = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
  try {
    await new Promise((r) => setTimeout(r, settleMs));
    return rssMiB(bare.pid!);
  } finally {
    bare.kill('SIGTERM');
    await new Promise((r) => bare.once('exit', r));
  }
}

/**
 * The arguments `npm start` gives node (its flags, then `dist/main.js`): the benchmarks start the
 * service as operators do, so what they measure follows the start command.
 */
export function serviceNodeArgs(): string[] {
  const pkg = JSON.parse(readFileSync(join(__dirname, '..', 'package.json'), 'utf8')) as {
    scripts: { start: string };
  };
  const [node, ...args] = pkg.scripts.start.trim().split(/\s+/);
  if (node !== 'node' || args.at(-1) !== 'dist/main.js') {
    throw new Error(`unexpected start script: ${pkg.scripts.start}`);
  }
  return args;
}

/** Milliseconds from spawning `node -e "console.log(1)"` to its line: the floor of any start. */
export async function bareNodeStartMs(): Promise<number> {
  const start = process.hrtime.bigint();
  const bare = spawn(process.execPath, ['-e', 'console.log(1)'], {
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  await new Promise((r) => bare.stdout.once('data', r));
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  await new Promise((r) => bare.once('exit', r));
  return ms;
}

export function median(samples: number[]): number {
  return percentile(
    [...samples].sort((a, b) => a - b),
    50,
  );
}

/**
 * The floor of a listing's reads and encoding: `files` read with synchronous calls on one thread
 * (no thread-pool round trip per file, no validation), each JSON.parse'd, all JSON.stringify'd.
 */
export function readParseEncode(files: string[]): string {
  return JSON.stringify(files.map((file) => JSON.parse(readFileSync(file, 'utf8')) as unknown));
}
