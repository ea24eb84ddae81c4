# syntax=docker/dockerfile:1
# icalpush: Node 24 runs the TypeScript sources directly (type stripping); no build step.

FROM node:24-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# Production dependencies only; none of them needs an install script.
RUN npm ci --omit=dev --ignore-scripts && npm cache clean --force

FROM node:24-slim
ENV NODE_ENV=production \
    ICALPUSH_CONFIG=/config/proxy.yaml
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
COPY src ./src
COPY config ./config
RUN mkdir -p /data /config && chown node:node /data
USER node
# The durable store lives here: point `store:` at /data/icalpush.db and mount a volume.
VOLUME ["/data"]
EXPOSE 8080
# Probes liveness on the port the example container config listens on (0.0.0.0:8080).
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:8080/_icalpush/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
ENTRYPOINT ["node", "src/main.ts"]
CMD ["serve"]
