import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, join } from 'node:path';

/** Where scripts/setup.sh puts the toolchain (same rule as scripts/toolchain-env.sh). */
export function toolchainBin(): string {
  const dir =
    process.env.CM_TOOLCHAIN_DIR ??
    join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'chall-manager-toolchain');
  return join(dir, 'bin');
}

/** Puts the toolchain first on PATH for this process and the processes it starts. */
export function useToolchainPath(): void {
  const bin = toolchainBin();
  const parts = (process.env.PATH ?? '').split(delimiter);
  if (!parts.includes(bin)) process.env.PATH = [bin, ...parts].join(delimiter);
  process.env.PULUMI_SKIP_UPDATE_CHECK = 'true';
}

/** Absolute path of `tool` on PATH, or undefined. */
export function which(tool: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    const candidate = join(dir, tool);
    if (dir && existsSync(candidate)) return candidate;
  }
  return undefined;
}

const REQUIRED = [
  'pulumi',
  'pulumi-language-nodejs',
  'pulumi-language-go',
  'pulumi-resource-pulumi-nodejs',
  'oras',
  'etcd',
  'docker-registry',
  'go',
] as const;

/** Fails (never skips) when a real part is missing, saying how to get it. */
export function assertToolchain(): void {
  const missing = REQUIRED.filter((t) => which(t) === undefined);
  if (missing.length > 0) {
    throw new Error(
      `missing tools for the e2e tests: ${missing.join(', ')}.\n` +
        `Run \`bash scripts/setup.sh\` (installs etcd and the registry from Debian, builds Pulumi and ORAS from Go modules).`,
    );
  }
}

export function toolVersion(tool: string, args: string[] = ['version']): string {
  return execFileSync(tool, args, { encoding: 'utf8' }).split('\n')[0]!.trim();
}
