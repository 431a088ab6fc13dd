# syntax=docker/dockerfile:1
FROM debian:12-slim
RUN <<EOT
set -eux
apt-get update
apt-get install curl ca-certificates
EOT
COPY <<EOF /etc/app.conf
listen = 8080
EOF
USER 10001
CMD ["/usr/bin/curl", "--version"]
