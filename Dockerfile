# syntax=docker/dockerfile:1
# Magpie server image: a build stage compiles the workspaces (TypeScript -> dist, the web
# client with Vite) and native modules; the runtime stage holds only production
# dependencies and compiled code, runs as the unprivileged `node` user, and checks /api/live.
#   docker build -t magpie .
#   docker run -p 8080:8080 -v magpie-data:/data magpie

ARG NODE_IMAGE=node:20-bookworm-slim

FROM ${NODE_IMAGE} AS build
# better-sqlite3 builds from source when its prebuilt binary cannot be downloaded.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# Manifests first, so the dependency layer is cached until they change.
COPY package.json package-lock.json ./
COPY packages/protocol/package.json packages/protocol/
COPY packages/sdk/package.json packages/sdk/
COPY packages/server/package.json packages/server/
COPY packages/web/package.json packages/web/
RUN npm ci --ignore-scripts \
 && npm rebuild better-sqlite3 bufferutil utf-8-validate sharp esbuild
COPY tsconfig.json LICENSE ./
COPY scripts ./scripts
COPY packages ./packages
RUN npm run build \
 && npm prune --omit=dev --ignore-scripts

FROM ${NODE_IMAGE} AS runtime
# The server's launch settings, as packages/server/launch.json has them (test/launch.test.ts
# checks they agree; its node flags, none today, would go in NODE_OPTIONS): glibc's two malloc
# arenas instead of 8 per core, big blocks (scrypt's 16 MiB) always mmapped and returned when
# freed (docs/operations.md, "Memory").
ENV NODE_ENV=production \
    MALLOC_ARENA_MAX=2 \
    MALLOC_MMAP_THRESHOLD_=1048576 \
    MAGPIE_HOST=0.0.0.0 \
    MAGPIE_PORT=8080 \
    MAGPIE_DATA_DIR=/data
WORKDIR /app
COPY --from=build /src/LICENSE ./
COPY --from=build /src/package.json ./
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/packages/protocol/package.json packages/protocol/
COPY --from=build /src/packages/protocol/dist packages/protocol/dist
COPY --from=build /src/packages/sdk/package.json packages/sdk/
COPY --from=build /src/packages/sdk/dist packages/sdk/dist
COPY --from=build /src/packages/server/package.json packages/server/
COPY --from=build /src/packages/server/dist packages/server/dist
COPY --from=build /src/packages/web/package.json packages/web/
COPY --from=build /src/packages/web/dist packages/web/dist
RUN mkdir -p /data && chown node:node /data
USER node
VOLUME ["/data"]
EXPOSE 8080
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.MAGPIE_PORT||8080)+'/api/live').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
CMD ["node", "packages/server/dist/main.js"]
