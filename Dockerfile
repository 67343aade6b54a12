# syntax=docker/dockerfile:1
#
# The booking engine's binaries in one small image: bookingd (API, relay,
# projectors; flags and environment choose which run), bookingctl (the
# operator's tool) and notifier (an example consumer of the events).
#
#   docker build -t booking .
#   docker run --rm booking bookingctl --help
#
# The default command is bookingd; docker-compose.yml shows a whole stack.

FROM golang:1.26 AS build
WORKDIR /src
# Modules first, so that a change of the code alone reuses this layer.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# Static binaries: the final image has no C library to link against.
# bookingd embeds the IANA zone database (time/tzdata), so business hours
# do not depend on the image's zone files.
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/ \
        ./cmd/bookingd ./cmd/bookingctl ./cmd/notifier

FROM alpine:3.22
# ca-certificates for TLS to PostgreSQL and Redis; wget (busybox) serves the
# health checks of docker-compose.yml.
RUN apk add --no-cache ca-certificates \
    && addgroup -S -g 10001 booking \
    && adduser -S -D -H -u 10001 -G booking booking
COPY --from=build /out/ /usr/local/bin/
USER 10001:10001
ENV HTTP_ADDR=:8080
EXPOSE 8080
CMD ["bookingd"]
