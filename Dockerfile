# syntax=docker/dockerfile:1
# zkproxy image: one image for every subcommand (proxy, replica, register, status).
#   docker build -t zkproxy .
#   docker run --rm zkproxy status --zk zoo1:2181
# Two stages: the native ZooKeeper client (`zookeeper` on npm wraps the C client) is compiled
# once, where a compiler is, with every other dependency; dev dependencies are then pruned and
# only the result is copied into the slim runtime.

# ---- build: all dependencies (the native client compiled here), tsc → dist/, then prune ----
FROM node:20-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY . .
# prune removes the dev dependencies (TypeScript, vitest, …) and keeps the compiled client.
RUN npm run build \
 && npm prune --omit=dev --no-audit --no-fund

# ---- runtime: Node 20 slim, production dependencies only, no compiler ----
# Same Debian release (bookworm) and Node major as the build stage, so the native module
# copied from it links against the same glibc and libstdc++ and the same Node ABI.
FROM node:20-bookworm-slim AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist/src ./dist/src
COPY public ./public
COPY package.json ./
USER node
# 9000 public listener, 9901 admin (health, metrics, dashboard), 4000 bundled replica.
EXPOSE 9000 9901 4000
ENTRYPOINT ["node","dist/src/cli/main.js"]
CMD ["--help"]
