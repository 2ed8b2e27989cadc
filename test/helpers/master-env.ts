/** The variables every test master needs: its database, its own Redis key prefix, and the API on a free local port. */
export function masterTestEnv(databaseUrl: string, redis: { url: string; prefix: string }): Record<string, string> {
  return { DATABASE_URL: databaseUrl, REDIS_URL: redis.url, REDIS_KEY_PREFIX: redis.prefix, API_HOST: '127.0.0.1', API_PORT: '0' };
}
