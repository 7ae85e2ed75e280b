// Unit tests of the lab's models, formatting and form (test/*.spec.ts); the lab itself is tested in
// headless Chromium by the Python suite. JupyterLab's and Lumino's packages ship as ES modules,
// so ts-jest compiles them too (the real translator, not a stand-in).
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  transform: { '^.+\\.(ts|tsx|js)$': ['ts-jest', { tsconfig: 'tsconfig.test.json' }] },
  transformIgnorePatterns: ['/node_modules/(?!(@jupyterlab|@lumino)/)']
};
