# One image for every service: docker build --build-arg SERVICE=ingest|attributor|sink|dispatcher .
# NODE_IMAGE: the official Node 20 image by default; where no registry is reachable,
# scripts/docker-images.sh builds a stand-in (docker-compose.local.yml passes it).
ARG NODE_IMAGE=node:20-bookworm-slim
FROM ${NODE_IMAGE}
ARG PNPM_VERSION=9.15.9
RUN npm install -g pnpm@${PNPM_VERSION}
WORKDIR /app
# Every package of the lockfile, from the lockfile alone: this layer stays cached until
# pnpm-lock.yaml changes, so a source change rebuilds in seconds.
COPY pnpm-lock.yaml pnpm-workspace.yaml .npmrc ./
RUN pnpm fetch
COPY package.json tsconfig.base.json ./
COPY packages packages
COPY services services
RUN pnpm install --frozen-lockfile --offline
# Last, so the four services share every layer above.
ARG SERVICE
ENV SERVICE=${SERVICE} NODE_ENV=production
# Internal packages point at their TypeScript sources; tsx runs them without a build step.
CMD ["sh", "-c", "exec node --import tsx services/${SERVICE}/src/server.ts"]
