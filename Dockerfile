# The bosun operator image: `docker build -t IMG . && make deploy IMG=IMG`.
# Two stages so the image carries compiled JavaScript and production dependencies only: no
# TypeScript, no eslint, no tsx, no sources. There is no Docker engine in bosun's CI; the structure
# of this file is pinned by src/scaffold/dockerfile.test.ts instead of by a build.
ARG NODE_IMAGE=node:20-alpine

FROM ${NODE_IMAGE} AS build
WORKDIR /app
# The workspace manifests first, so the dependency layer is cached until one of them changes.
COPY package.json package-lock.json ./
COPY packages/bosun/package.json ./packages/bosun/
COPY operators/message/package.json ./operators/message/
COPY operators/application/package.json ./operators/application/
COPY operators/flightticket/package.json ./operators/flightticket/
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY packages/bosun/tsconfig.build.json ./packages/bosun/
COPY packages/bosun/src ./packages/bosun/src
COPY operators ./operators
# bosun first (the operators compile against its declarations), then the operators and their project module.
RUN npm run build

FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
COPY packages/bosun/package.json ./packages/bosun/
COPY operators/message/package.json ./operators/message/
COPY operators/application/package.json ./operators/application/
COPY operators/flightticket/package.json ./operators/flightticket/
# A fresh production install, not node_modules copied from the build stage, which holds dev dependencies.
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force
COPY packages/bosun/bin ./packages/bosun/bin
COPY --from=build /app/packages/bosun/dist ./packages/bosun/dist
COPY --from=build /app/dist ./dist
# The UID:GID distroless calls nonroot; numeric so `runAsNonRoot` can verify it without /etc/passwd.
USER 65532:65532
# 8080 serves /metrics, 8081 /healthz and /readyz (the Deployment's liveness and readiness probes).
EXPOSE 8080 8081
# For `docker run`; Kubernetes ignores HEALTHCHECK and uses the probes in config/manager/manager.yaml.
HEALTHCHECK --interval=20s --timeout=3s CMD ["node", "-e", "fetch('http://127.0.0.1:8081/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# The compiled project module: no TypeScript loader in the image.
# --max-semi-space-size: see OPERATOR_NODE_FLAGS in packages/bosun/src/tooling/image/operator.ts.
ENTRYPOINT ["node", "--max-semi-space-size=4", "packages/bosun/bin/bosun.js", "run", "--from", "dist/operators/index.js"]
