// @ts-check
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/** Import boundaries of the hexagon (style §3): who may import whom. */
const contexts = ['challenge-store', 'instance-manager', 'pooler', 'janitor'];
const crossContext = (self) =>
  contexts
    .filter((c) => c !== self)
    .map((c) => ({
      group: [`../${c}/*`, `../../${c}/*`, `!../${c}/index`, `!../../${c}/index`],
      message: `import ${c} only through its index.ts`,
    }));

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'coverage/**', 'examples/**', '**/*.js', '**/*.mjs'] },
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
    files: ['src/shared/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['**/adapters/**', ...contexts.map((c) => `**/${c}/**`)],
              message: 'shared imports nothing from contexts or adapters',
            },
            { group: ['@grpc/*', 'etcd3', '@pulumi/*'], message: 'shared is library-free' },
          ],
        },
      ],
    },
  },
  {
    files: ['src/adapters/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: contexts.map((c) => `**/${c}/**`),
              message: 'adapters import only src/shared and libraries',
            },
          ],
        },
      ],
    },
  },
  ...contexts.map((c) => ({
    files: [`src/${c}/**/*.ts`],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            ...crossContext(c),
            {
              group: ['../adapters/*/**', '../../adapters/*/**'],
              message: 'contexts depend on ports; bind adapters in AdaptersModule',
            },
          ],
        },
      ],
    },
  })),
  ...contexts.map((c) => ({
    files: [`src/${c}/transport/**/*.ts`],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            ...crossContext(c),
            { group: ['**/adapters/**'], message: 'transports never import adapters' },
          ],
        },
      ],
    },
  })),
);
