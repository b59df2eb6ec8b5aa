# syntax=docker/dockerfile:1
# zkproxy image: one image for every subcommand (proxy, replica, register, status).
#   docker build -t zkproxy .
#   docker run --rm zkproxy status --zk zoo1:2181
# Three stages: the native ZooKeeper client (`zookeeper` on npm wraps the C client) is
# compiled where a compiler is, and only its result is copied into the slim runtime.

# ---- production dependencies, native client built here (python3, make, g++) ----
FROM node:20-bookworm AS deps
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund

# ---- build: all dependencies (TypeScript), then tsc → dist/ ----
FROM deps AS build
RUN npm ci --no-audit --no-fund
COPY . .
RUN npm run build

# ---- runtime: Node 20 slim, production dependencies only, no compiler ----
# Same Debian release (bookworm) and Node major as the stages above, so the native module
# copied from `deps` links against the same glibc and libstdc++ and the same Node ABI.
FROM node:20-bookworm-slim AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/dist/src ./dist/src
COPY public ./public
COPY package.json ./
USER node
# 9000 public listener, 9901 admin (health, metrics, dashboard), 4000 bundled replica.
EXPOSE 9000 9901 4000
ENTRYPOINT ["node","dist/src/cli/main.js"]
CMD ["--help"]
