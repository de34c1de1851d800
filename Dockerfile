# Image for the bridge and the workers (compose.yaml). Not built on the project's own machines.
FROM node:20-bookworm-slim
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci
COPY core core
COPY bridge bridge
COPY workers workers
COPY openapi openapi
USER node
