# One image per service: docker build --build-arg SERVICE=ingest|attributor|sink .
FROM node:20-bookworm-slim
RUN npm install -g pnpm@9.15.9
WORKDIR /app
COPY package.json pnpm-lock.yaml pnpm-workspace.yaml .npmrc tsconfig.base.json ./
COPY packages packages
COPY services services
RUN pnpm install --frozen-lockfile
ARG SERVICE
ENV SERVICE=${SERVICE} NODE_ENV=production
# Internal packages point at their TypeScript sources; tsx runs them without a build step.
CMD ["sh", "-c", "exec node --import tsx services/${SERVICE}/src/server.ts"]
