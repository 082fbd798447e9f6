// @ts-check
import { statSync } from 'node:fs';
import { dirname, relative, resolve, sep } from 'node:path';
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const SRC = resolve(import.meta.dirname, 'src');

/**
 * Import boundaries of the hexagon: for each folder under src/, the other folders its
 * files may import. Another folder is imported through its index.ts, except `shared` (the kernel:
 * any file) and `adapters` (only adapters.module, where the ports are bound); `deep` lists the
 * files past those entries a folder may import. A folder (or file) under src/ without a rule here
 * is a lint error. '' is the composition root: main.ts and app.module.ts.
 */
const boundaries = {
  '': {
    imports: [
      'adapters',
      'adoption',
      'challenge-store',
      'config',
      'flag-checker',
      'events',
      'health',
      'instance-manager',
      'janitor',
      'pooler',
      'shared',
      'telemetry',
    ],
    // Imported first: the thread pool is sized at its first use, before anything else runs.
    deep: ['adapters/state/owner-only', 'telemetry/preload', 'config/threadpool'],
  },
  shared: { imports: ['config'] },
  // The OCI defaults live with the registry client, and durations are parsed as the API does.
  config: {
    imports: ['adapters', 'shared'],
    deep: ['adapters/oci/http-oci-registry.options'],
  },
  // Imported by main.ts before anything it instruments: of config, only the OTEL_* reading.
  telemetry: { imports: ['config', 'shared'], deep: ['config/telemetry-env'] },
  adapters: { imports: ['config', 'shared'] },
  // A stand-alone registry client, without Nest.
  cli: { imports: ['adapters', 'shared'], deep: ['adapters/oci/*'] },
  health: { imports: ['adapters', 'shared'] },
  deployer: { imports: ['adapters', 'shared'] },
  pooler: { imports: ['adapters', 'config', 'deployer', 'shared'] },
  'challenge-store': { imports: ['adapters', 'deployer', 'pooler', 'shared'] },
  'challenge-store/transport': { imports: ['shared'] },
  'instance-manager': { imports: ['adapters', 'deployer', 'pooler', 'shared'] },
  'instance-manager/transport': { imports: ['shared'] },
  janitor: { imports: ['adapters', 'config', 'deployer', 'instance-manager', 'pooler', 'shared'] },
  adoption: { imports: ['adapters', 'deployer', 'shared'] },
  'flag-checker': { imports: ['adapters', 'config', 'shared'] },
  'flag-checker/transport': { imports: ['shared'] },
  events: { imports: ['adapters', 'config', 'shared'] },
  'events/transport': { imports: ['shared'] },
};

/** What other folders may import of a folder besides its index. */
const entries = { shared: ['*'], adapters: ['adapters.module'] };

const matches = (pattern, path) =>
  pattern === '*' ||
  (pattern.endsWith('/*') ? path.startsWith(pattern.slice(0, -1)) : pattern === path);

const isDirectory = (path) => statSync(path, { throwIfNoEntry: false })?.isDirectory() ?? false;

/** The rule of a file (path relative to src/, '/'-separated): the most specific one. */
function ruleOf(path) {
  const parts = path.split('/');
  if (parts.length === 1) return '';
  const sub = `${parts[0]}/${parts[1]}`;
  return parts.length > 2 && sub in boundaries ? sub : parts[0];
}

/** @type {import('eslint').Rule.RuleModule} */
const importBoundaries = {
  meta: { type: 'problem', schema: [] },
  create(context) {
    const path = relative(SRC, context.filename).split(sep).join('/');
    if (path.startsWith('..')) return {};
    const self = ruleOf(path);
    const own = self === '' ? undefined : path.split('/')[0];
    const rule = boundaries[self];
    if (rule === undefined) {
      return {
        Program: (node) =>
          context.report({
            node,
            message: `add the import rule of src/${self} to eslint.config.mjs`,
          }),
      };
    }
    const check = (node) => {
      const spec = node.source?.value;
      if (typeof spec !== 'string' || !spec.startsWith('.')) return;
      const resolved = resolve(dirname(context.filename), spec);
      const target = relative(SRC, resolved).split(sep).join('/');
      if (target.startsWith('..')) return;
      const [folder, ...rest] = target.split('/');
      if (folder === own) return;
      const report = (message) => context.report({ node: node.source, message });
      if (rest.length === 0 && !isDirectory(resolved)) {
        if (self !== '') report(`only the composition root imports src/${target}`);
        return;
      }
      if (!rule.imports.includes(folder)) {
        report(`src/${self || '(root)'} may not import src/${folder} (see eslint.config.mjs)`);
        return;
      }
      const inner = rest.join('/');
      const entry =
        inner === '' || inner === 'index' || (entries[folder] ?? []).some((e) => matches(e, inner));
      if (!entry && !(rule.deep ?? []).some((d) => matches(d, target)))
        report(`import src/${folder} through ${entries[folder]?.join(', ') ?? 'its index.ts'}`);
    };
    return {
      ImportDeclaration: check,
      ExportNamedDeclaration: check,
      ExportAllDeclaration: check,
      ImportExpression: check,
    };
  },
};

export default tseslint.config(
  {
    ignores: [
      '**/dist/**',
      'node_modules/**',
      'coverage/**',
      '.local/**',
      'examples/**',
      '**/*.js',
      '**/*.mjs',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/require-await': 'error',
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
      'no-restricted-syntax': [
        'error',
        {
          selector: "MemberExpression[object.name='process'][property.name='env']",
          message: 'read the environment only in src/config (use AppConfig)',
        },
      ],
    },
  },
  {
    files: ['src/config/**/*.ts', 'test/**/*.ts', 'bench/**/*.ts', '*.mts'],
    rules: { 'no-restricted-syntax': 'off' },
  },
  {
    // The scenario SDK runs in scenario processes, not in the service: it reads what
    // chall-manager sets there (CM_PROJECT).
    files: ['sdk/nodejs/src/**/*.ts'],
    ignores: ['**/*.spec.ts'],
    rules: { 'no-restricted-syntax': 'off' },
  },
  {
    files: ['**/*.spec.ts', '**/*.e2e-spec.ts'],
    rules: {
      'no-restricted-syntax': [
        'error',
        {
          selector: "CallExpression[callee.name='it'] > Literal:first-child[value=/^(?!should )/]",
          message: "test names start with 'should'",
        },
        {
          selector:
            "CallExpression[callee.object.name='it'][callee.property.name='each'] > Literal:first-child[value=/^(?!should )/]",
          message: "test names start with 'should'",
        },
      ],
    },
  },
  {
    files: ['src/**/*.ts'],
    plugins: { local: { rules: { 'import-boundaries': importBoundaries } } },
    rules: { 'local/import-boundaries': 'error' },
  },
  {
    files: ['src/shared/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: ['@grpc/*', 'etcd3', '@pulumi/*'], message: 'shared is library-free' },
          ],
        },
      ],
    },
  },
);
