/** Small helpers shared by the benchmarks: timing and percentiles. */
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
