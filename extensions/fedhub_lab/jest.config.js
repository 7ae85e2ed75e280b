// Unit tests of the lab's models and formatting (test/*.spec.ts); the lab itself is tested in
// headless Chromium by the Python suite.
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.test.json' }] }
};
