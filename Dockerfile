# syntax=docker/dockerfile:1
#
# One image for every Tickwatch role. The compose service's command picks the role:
#   node dist/worker/main.js     a worker (PAIR=...)             health: node dist/worker/health.js
#   node dist/master/main.js     the master (ingest, API)        health: node dist/fleet/http-probe.js http://127.0.0.1:8080/ready
#   node dist/master/migrate.js  one-shot database migrations
#   node dist/sim/main.js        the ticker simulator (demo)
#
# Stages: build (all dependencies, compiles TypeScript to dist/), test (build + the tools the test suite drives; used by
# docker-compose-tests.yml), prod-deps (production dependencies only), runtime (the default target: dist/ + prod deps,
# non-root).
#
# `npm run test:image` (test/image/README.md) builds the runtime target with podman and runs every role from it: as uid
# 1000, on a read-only root filesystem, with and without an init process, with and without a TTY, and checks that
# `stop` ends each with exit code 0 and that no test, bench or fault file is inside.

ARG NODE_VERSION=20

FROM node:${NODE_VERSION}-bookworm-slim AS base
# On every stage and the image: what a build left behind can be found by label (test/image/prepare.sh prunes ours).
LABEL org.opencontainers.image.title=tickwatch
WORKDIR /app
ENV NPM_CONFIG_UPDATE_NOTIFIER=false \
    NPM_CONFIG_FUND=false \
    NPM_CONFIG_AUDIT=false

# ---- build: compile with the dev toolchain ----
FROM base AS build
COPY package.json package-lock.json ./
RUN --mount=type=cache,target=/root/.npm npm ci
COPY . .
# tsc emits .js for every production .ts (tsconfig.build.json: the folders below, no *.test.ts; rootDir "."); the
# dashboard's static files, JSON and other assets are copied next to them so code that resolves files from __dirname
# finds them in dist/ too. Tests, the bench and the fault cases are never compiled here (a type error in a test cannot
# break the image); the deletions after are a guard.
RUN npm run build:image \
 && for dir in shared worker master sim cli migrations fleet; do \
      if [ -d "$dir" ]; then find "$dir" -type f ! -name '*.ts' ! -name '*.md' -exec cp --parents {} dist/ \; ; fi; \
    done \
 && rm -rf dist/test dist/bench dist/faults \
 && find dist \( -name '*.test.js' -o -name '*.test.js.map' \) -delete

# ---- test: the suite as CI runs it (docker compose -f docker-compose-tests.yml up --build --exit-code-from tests) ----
FROM build AS test
# redis-server: tests that start their own Redis; chromium: the dashboard's browser tests.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends redis-server chromium postgresql-client \
 && rm -rf /var/lib/apt/lists/* \
 && chown -R node:node /app
USER node
CMD ["npm", "test"]

# ---- prod-deps: production dependencies only ----
FROM base AS prod-deps
COPY package.json package-lock.json ./
# No install scripts: nothing in production needs one (tsx's esbuild binary only serves `npm run` from source).
RUN --mount=type=cache,target=/root/.npm npm ci --omit=dev --ignore-scripts

# ---- runtime: what runs in production ----
FROM base AS runtime
# API_HOST: in a container the master must listen on every interface to be reachable through a published port (a
# listen address beyond loopback: it then needs API_TOKEN or API_ALLOW_ANONYMOUS=true, see docker-compose.yml).
ENV NODE_ENV=production \
    NODE_OPTIONS=--enable-source-maps \
    API_HOST=0.0.0.0
# Owned by root, read-only for the service user: the app cannot rewrite its own code.
COPY --from=prod-deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
USER node:node
# API and dashboard (master), ticker simulator (demo).
EXPOSE 8080 8090
# No HEALTHCHECK here: it depends on the role, so each compose service declares its own (see the header above).
# Exec form, no shell, no init of our own: node is the process that gets SIGTERM and handles it (closes in reverse
# order, exits 0), as pid 1 in a Kubernetes pod or under compose's `init: true`. A command wrapped in `sh -c` would
# leave SIGTERM to a shell that ignores it, and `stop` would SIGKILL after the grace period (exit 137).
CMD ["node", "dist/master/main.js"]
