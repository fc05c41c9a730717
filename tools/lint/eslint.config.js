// ESLint over the TypeScript and JavaScript sources: the recommended JavaScript and typescript-eslint rules,
// syntax only so that it runs in seconds (tsc does the type checking). Layout is prettier's; the import
// layers are dependency-cruiser's (layers.cjs).
import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['**/node_modules/**', 'dist/**', 'bench/results/**', 'coverage/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  { languageOptions: { globals: globals.node } },
  // The status page's scripts run in the browser, beside the uPlot bundle they are served with.
  { files: ['src/api/status-page/**/*.js'], languageOptions: { globals: { ...globals.browser, uPlot: 'readonly' } } },
  // The composition root stays a list of short wiring steps: a function past this length is doing a use case's work.
  {
    files: ['src/runtime/**/*.ts'],
    rules: { 'max-lines-per-function': ['error', { max: 80, skipBlankLines: true, skipComments: true }] },
  },
  // Tests match printed tables and help texts, whose runs of spaces are written as they appear.
  { files: ['test/**/*.ts'], rules: { 'no-regex-spaces': 'off' } },
  {
    rules: {
      // A leading underscore names a value taken apart only to leave it out (`{ id: _id, ...rest }`).
      '@typescript-eslint/no-unused-vars': [
        'error',
        { varsIgnorePattern: '^_', argsIgnorePattern: '^_', ignoreRestSiblings: true },
      ],
    },
  },
);
