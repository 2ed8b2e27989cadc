/** Packages shipping only ES modules: @fastify/static -> content-disposition, light-my-request (app.inject) -> cookie. */
const ESM_ONLY = ['content-disposition', 'cookie'];

/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>'],
  testMatch: ['**/*.test.ts'],
  // The fault suite and the image test have their own configs (jest.faults.config.js, jest.image.config.js).
  testPathIgnorePatterns: ['/node_modules/', '/dist/', '\\.fault\\.test\\.ts$', '\\.image\\.test\\.ts$'],
  transform: {
    '^.+\\.ts$': ['ts-jest', { diagnostics: false }],
    // ESM-only dependencies reached through CJS code (jest cannot require ESM): compiled to CJS for tests only.
    [`/node_modules/(${ESM_ONLY.join('|')})/.+\\.js$`]: ['ts-jest', { diagnostics: false, tsconfig: { allowJs: true, module: 'commonjs', target: 'ES2022' } }],
  },
  transformIgnorePatterns: [`/node_modules/(?!(${ESM_ONLY.join('|')})/)`],
  testTimeout: 60_000,
  // Integration tests start processes and talk to real services; two cores.
  maxWorkers: 2,
};
