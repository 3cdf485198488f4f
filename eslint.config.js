'use strict';
// `npm run lint` (scripts/lint.js): ESLint's recommended rules over the JavaScript sources,
// tests, examples, demo, scripts and benchmarks.
const js = require('@eslint/js');
const globals = require('globals');

module.exports = [
  {
    ignores: ['node_modules/', 'target/', 'npm/', 'artifacts/', 'native/', 'demo-data/', 'mutants.out*/'],
  },
  js.configs.recommended,
  {
    files: ['**/*.js'],
    languageOptions: { ecmaVersion: 2023, sourceType: 'commonjs', globals: globals.node },
  },
  {
    files: ['**/*.mjs'],
    languageOptions: { ecmaVersion: 2023, sourceType: 'module', globals: globals.node },
  },
  {
    rules: {
      // Unused leading parameters such as `(ctx, input)` and `catch (e)` show a callback's
      // shape, and `const { a, ...rest } = x` is how an object is copied without `a`.
      'no-unused-vars': ['error', { args: 'none', caughtErrors: 'none', ignoreRestSiblings: true }],
      // Orchestrations must be generator functions, even those that return without yielding.
      'require-yield': 'off',
      // Tests match the CLI's column-aligned output as it is printed, spaces included.
      'no-regex-spaces': 'off',
    },
  },
];
