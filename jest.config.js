/** Jest runs the TypeScript sources directly (ts-jest, ESM). Tests that need the built
 *  executables or native code use dist/ and build/Release, which `npm ci` produces. */
export default {
  preset: 'ts-jest/presets/default-esm',
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  extensionsToTreatAsEsm: ['.ts'],
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  transform: {
    '^.+\\.ts$': ['ts-jest', { useESM: true, tsconfig: 'tsconfig.test.json' }],
  },
  testTimeout: 120000,
  setupFiles: ['<rootDir>/test/helpers/setup-umask.js'],
};
