import { execFile } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseGoDuration } from '../../src/config/app-config';
import { CLEANUP_BUDGET_MS } from '../../src/shared/transport/graceful-shutdown';
import { useToolchainPath, which } from '../support/toolchain';

/**
 * The Kubernetes base in deploy/, checked by tools/k8s-validate (built by scripts/setup.sh):
 * every manifest the kustomization lists decoded strictly into Kubernetes' own API types
 * (k8s.io/api), then the decoded objects checked against the README and the service's
 * behaviour: probes, port, volumes, settings, shutdown grace, etcd members.
 */

const ROOT = resolve(__dirname, '..', '..');
const DEPLOY = join(ROOT, 'deploy');
const UNKNOWN_FIELD_FIXTURE = join(__dirname, 'fixtures', 'k8s-unknown-field');

interface Decoded {
  file: string;
  kind: string;
  name: string;
  object: Record<string, unknown>;
}

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function validate(dir: string): Promise<Run> {
  return new Promise((done) => {
    execFile('k8s-validate', [dir], { maxBuffer: 16 * 1024 ** 2 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
      done({ code, stdout, stderr });
    });
  });
}

// Loose views of the decoded objects: only what the checks read.
interface Probe {
  httpGet?: { path?: string; port?: string | number };
}
interface Container {
  name: string;
  ports?: { name?: string; containerPort: number }[];
  env?: { name: string; value?: string }[];
  envFrom?: { configMapRef?: { name: string }; secretRef?: { name: string } }[];
  livenessProbe?: Probe;
  readinessProbe?: Probe;
  startupProbe?: Probe;
  securityContext?: { readOnlyRootFilesystem?: boolean; allowPrivilegeEscalation?: boolean };
  volumeMounts?: { name: string; mountPath: string; readOnly?: boolean }[];
}
interface PodSpec {
  serviceAccountName?: string;
  terminationGracePeriodSeconds?: number;
  securityContext?: { runAsNonRoot?: boolean; runAsUser?: number };
  containers: Container[];
  volumes?: {
    name: string;
    persistentVolumeClaim?: { claimName: string };
    emptyDir?: object;
  }[];
}

let objects: Decoded[];
let scratch: string;

const one = (kind: string, name: string): Record<string, unknown> => {
  const found = objects.find((o) => o.kind === kind && o.name === name);
  if (!found) throw new Error(`no ${kind} ${name} in deploy/`);
  return found.object;
};
const deployment = (): { spec: { template: { metadata: { labels: object }; spec: PodSpec } } } =>
  one('Deployment', 'chall-manager') as never;
const pod = (): PodSpec => deployment().spec.template.spec;
const container = (): Container => pod().containers.find((c) => c.name === 'chall-manager')!;
const settings = (): Record<string, string> =>
  (one('ConfigMap', 'chall-manager') as { data: Record<string, string> }).data;

/** Variable names of the README's Configuration table (first column). */
function readmeSettings(readme: string): Set<string> {
  const section = readme.slice(readme.indexOf('\n## Configuration\n'));
  const table = section.slice(0, section.indexOf('\n## ', 1));
  const names = new Set<string>();
  for (const line of table.split('\n')) {
    const first = /^\|([^|]+)\|/.exec(line)?.[1] ?? '';
    for (const m of first.matchAll(/`([A-Z][A-Z0-9_]*)`/g)) names.add(m[1]!);
  }
  return names;
}

beforeAll(async () => {
  useToolchainPath();
  if (which('k8s-validate') === undefined) {
    throw new Error('k8s-validate is missing: run `bash scripts/setup.sh` (tools/k8s-validate)');
  }
  scratch = mkdtempSync(join(tmpdir(), 'cm-deploy-'));
  const run = await validate(DEPLOY);
  if (run.code !== 0) throw new Error(`deploy/ does not validate:\n${run.stderr}`);
  objects = JSON.parse(run.stdout) as Decoded[];
});

afterAll(() => {
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

describe('deploy/ against the Kubernetes API types', () => {
  it('should decode every manifest the kustomization lists strictly into its k8s.io/api type', () => {
    expect(objects.map((o) => `${o.kind}/${o.name}`).sort()).toEqual(
      [
        'ConfigMap/chall-manager',
        'ConfigMap/chall-manager-otel',
        'Deployment/chall-manager',
        'Namespace/chall-manager',
        'PersistentVolumeClaim/chall-manager-data',
        'PodDisruptionBudget/chall-manager',
        'PodDisruptionBudget/etcd',
        'Role/chall-manager-scenarios',
        'RoleBinding/chall-manager-scenarios',
        'Secret/chall-manager',
        'Service/chall-manager',
        'Service/etcd',
        'ServiceAccount/chall-manager',
        'StatefulSet/etcd',
      ].sort(),
    );
    // The kustomization's namespace reaches every namespaced object.
    for (const o of objects.filter((x) => x.kind !== 'Namespace')) {
      expect((o.object.metadata as { namespace?: string }).namespace, o.name).toBe('chall-manager');
    }
  });

  it('should refuse a manifest with an unknown field (fixture), naming the field', async () => {
    const run = await validate(UNKNOWN_FIELD_FIXTURE);
    expect(run.code).not.toBe(0);
    expect(run.stderr).toContain('deployment.yaml');
    expect(run.stderr).toContain('unknown field "replica"');
  });

  it.each([
    [
      'a value of the wrong type',
      (dir: string) => edit(dir, 'deployment.yaml', 'containerPort: 8080', 'containerPort: "8080"'),
      'cannot unmarshal string',
    ],
    [
      'an unknown field of the kustomization',
      (dir: string) => edit(dir, 'kustomization.yaml', 'resources:', 'resourcez: []\nresources:'),
      'unknown field "resourcez"',
    ],
    [
      'a manifest the kustomization does not list',
      (dir: string) => writeFileSync(join(dir, 'extra.yaml'), 'apiVersion: v1\nkind: ConfigMap\n'),
      'not listed in kustomization.yaml resources: extra.yaml',
    ],
    [
      'a misspelt probe field deep in the pod template',
      (dir: string) => edit(dir, 'deployment.yaml', 'periodSeconds: 5', 'periodSecond: 5'),
      'unknown field "periodSecond"',
    ],
  ])('should refuse deploy/ with %s', async (_what, mutate, message) => {
    const dir = mkdtempSync(join(scratch, 'base-'));
    cpSync(DEPLOY, dir, { recursive: true });
    mutate(dir);
    const run = await validate(dir);
    expect(run.code).not.toBe(0);
    expect(run.stderr).toContain(message);
  });
});

function edit(dir: string, file: string, from: string, to: string): void {
  const path = join(dir, file);
  const text = readFileSync(path, 'utf8');
  expect(text).toContain(from);
  writeFileSync(path, text.replace(from, to));
}

describe('deploy/ against the README and the service', () => {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');

  it('should probe /livez (liveness, start-up) and /readyz (readiness) on the API port', () => {
    const c = container();
    expect(c.livenessProbe?.httpGet).toEqual({ path: '/livez', port: 'api' });
    expect(c.startupProbe?.httpGet).toEqual({ path: '/livez', port: 'api' });
    expect(c.readinessProbe?.httpGet).toEqual({ path: '/readyz', port: 'api' });
    expect(readme).toContain('| `GET /livez`');
    expect(readme).toContain('| `GET /readyz`');
    // The named port is PORT, and the Service's one port (gRPC and REST) leads to it.
    const port = c.ports?.find((p) => p.name === 'api')?.containerPort;
    expect(port).toBe(8080);
    expect(c.env?.find((e) => e.name === 'PORT')?.value).toBe(String(port));
    const service = one('Service', 'chall-manager') as {
      spec: { ports: { port: number; targetPort: string }[]; selector: object };
    };
    expect(service.spec.ports).toEqual([
      expect.objectContaining({ port: 8080, targetPort: 'api' }),
    ]);
    expect(deployment().spec.template.metadata.labels).toMatchObject(service.spec.selector);
  });

  it('should set only variables the README documents, from objects the base defines', () => {
    const documented = readmeSettings(readme);
    expect(documented).toContain('SHUTDOWN_GRACE');
    const c = container();
    const fromObjects: string[] = [];
    for (const source of c.envFrom ?? []) {
      if (source.configMapRef) {
        const data = (one('ConfigMap', source.configMapRef.name) as { data?: object }).data;
        fromObjects.push(...Object.keys(data ?? {}));
      }
      if (source.secretRef) {
        const data = (one('Secret', source.secretRef.name) as { stringData?: object }).stringData;
        fromObjects.push(...Object.keys(data ?? {}));
      }
    }
    const direct = (c.env ?? []).map((e) => e.name);
    // HOME and TMPDIR are the process's own (where Pulumi and Go write); OTEL_* are the
    // standard variables the Observability section documents.
    for (const name of [...fromObjects, ...direct]) {
      if (name === 'HOME' || name === 'TMPDIR') continue;
      if (name.startsWith('OTEL_')) expect(readme, name).toContain(`\`${name}\``);
      else expect(documented, name).toContain(name);
    }
    expect(fromObjects).toContain('PULUMI_CONFIG_PASSPHRASE');
  });

  it('should mount DIR on the RWX claim and CACHE, /tmp and HOME writable on a read-only root, as non-root', () => {
    const p = pod();
    const c = container();
    const env = {
      ...settings(),
      ...Object.fromEntries((c.env ?? []).map((e) => [e.name, e.value])),
    };
    const volumeAt = (path: string | undefined) => {
      const mount = c.volumeMounts?.find((m) => m.mountPath === path);
      expect(mount, `a volume at ${path}`).toBeDefined();
      expect(mount?.readOnly ?? false).toBe(false);
      return p.volumes?.find((v) => v.name === mount?.name);
    };
    const data = volumeAt(env.DIR);
    const claim = one('PersistentVolumeClaim', data!.persistentVolumeClaim!.claimName) as {
      spec: { accessModes: string[] };
    };
    expect(claim.spec.accessModes).toEqual(['ReadWriteMany']);
    expect(volumeAt(env.CACHE)?.emptyDir).toBeDefined();
    expect(volumeAt('/tmp')?.emptyDir).toBeDefined();
    expect(env.TMPDIR).toBe('/tmp');
    expect(volumeAt(env.HOME)?.emptyDir).toBeDefined();
    expect(c.securityContext).toMatchObject({
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
    });
    expect(p.securityContext?.runAsNonRoot).toBe(true);
    expect(p.securityContext?.runAsUser).toBeGreaterThan(0);
  });

  it('should give pods SHUTDOWN_GRACE + IAC_CANCEL_GRACE + the clean-up budget to stop', () => {
    const s = settings();
    const needed =
      parseGoDuration(s.SHUTDOWN_GRACE!)! +
      parseGoDuration(s.IAC_CANCEL_GRACE!)! +
      CLEANUP_BUDGET_MS;
    expect(pod().terminationGracePeriodSeconds).toBe(needed / 1000);
  });

  it('should point ETCD_ENDPOINT at every member of the etcd StatefulSet', () => {
    const etcd = one('StatefulSet', 'etcd') as { spec: { replicas: number; serviceName: string } };
    expect(etcd.spec.replicas).toBe(3);
    const members = Array.from(
      { length: etcd.spec.replicas },
      (_, i) => `etcd-${i}.${etcd.spec.serviceName}:2379`,
    );
    expect(settings().ETCD_ENDPOINT!.split(',')).toEqual(members);
  });

  it('should cover the replicas with a PodDisruptionBudget and bind the Role to their ServiceAccount', () => {
    const pdb = one('PodDisruptionBudget', 'chall-manager') as {
      spec: { selector: { matchLabels: object } };
    };
    expect(deployment().spec.template.metadata.labels).toMatchObject(pdb.spec.selector.matchLabels);
    const binding = one('RoleBinding', 'chall-manager-scenarios') as {
      roleRef: { kind: string; name: string };
      subjects: { kind: string; name: string }[];
    };
    expect(binding.roleRef).toMatchObject({ kind: 'Role', name: 'chall-manager-scenarios' });
    expect(binding.subjects).toEqual([
      expect.objectContaining({ kind: 'ServiceAccount', name: pod().serviceAccountName }),
    ]);
    one('ServiceAccount', pod().serviceAccountName!);
  });

  it('should run the image as built: its user, port, HOME and the DIR and CACHE volumes', () => {
    const dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
    // The runtime stages' instructions (from `slim` on), line continuations joined.
    const runtime = dockerfile.slice(dockerfile.indexOf(' AS slim')).replace(/\\\n\s*/g, ' ');
    const env = new Map(
      [...runtime.matchAll(/^ENV (.*)$/gm)].flatMap((m) =>
        [...m[1]!.matchAll(/(\w+)=(\S+)/g)].map((kv) => [kv[1]!, kv[2]!] as const),
      ),
    );
    const p = pod();
    const c = container();
    expect(/^USER (\d+):(\d+)$/m.exec(runtime)?.slice(1).map(Number)).toEqual([
      p.securityContext?.runAsUser,
      p.securityContext?.runAsUser,
    ]);
    expect(/^EXPOSE (\d+)$/m.exec(runtime)?.[1]).toBe(env.get('PORT'));
    expect(c.ports?.find((port) => port.name === 'api')?.containerPort).toBe(
      Number(env.get('PORT')),
    );
    expect(/^VOLUME \[(.*)\]$/m.exec(runtime)?.[1]).toBe(
      [env.get('DIR'), env.get('CACHE')].map((v) => JSON.stringify(v)).join(', '),
    );
    const mounts = (c.volumeMounts ?? []).map((m) => m.mountPath);
    expect(mounts).toEqual(
      expect.arrayContaining([env.get('DIR'), env.get('CACHE'), env.get('HOME')]),
    );
    expect(c.env?.find((e) => e.name === 'HOME')?.value).toBe(env.get('HOME'));
  });
});
