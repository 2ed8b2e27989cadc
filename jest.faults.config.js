/**
 * The fault suite (`npm run test:faults`): each file breaks one dependency of a running fleet (master, Redis, Postgres,
 * SMTP/webhook, ticker, API input) and asserts nothing is lost or crashes. Kept out of `npm test` (see jest.config.js)
 * because it deliberately waits through outages; files run one at a time, since each starts real processes and several
 * measure recovery times that a parallel neighbour would distort.
 */
/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>'],
  testMatch: ['**/*.fault.test.ts'],
  testPathIgnorePatterns: ['/node_modules/', '/dist/'],
  transform: { '^.+\\.ts$': ['ts-jest', { diagnostics: false }] },
  testTimeout: 180_000,
  maxWorkers: 1,
  // One figures line per case goes to stdout; keep jest from decorating it with console.log stack locations.
  verbose: true,
};
