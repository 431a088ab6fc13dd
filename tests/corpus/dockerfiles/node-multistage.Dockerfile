FROM node:20.11-alpine3.19 AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci
COPY . .
RUN npm run build

FROM nginx:1.27-alpine
COPY --from=build /src/dist /usr/share/nginx/html
RUN curl -fsSL https://example.com/install.sh | sh
ARG GITHUB_TOKEN
USER nginx
HEALTHCHECK CMD wget -q -O /dev/null http://127.0.0.1/ || exit 1
