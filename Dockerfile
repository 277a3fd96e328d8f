# phonehome container image: the static, cgo-free binary (make build) on
# Debian slim with tcpdump, which the default build runs once at start to
# compile a --capture.filter expression. Checked by go test ./deploy.
#
#   docker build -t phonehome:dev --build-arg VERSION=$(git describe --tags --always) .
#
# Replay (no privileges; the image's user):
#   docker run --rm -v $PWD/sensor/testdata:/captures:ro phonehome:dev run -r /captures/demo.pcap
# Live capture, two ways:
# 1. As the image's user, through the file capabilities the final stage
#    sets on the binary (setcap cap_net_raw,cap_net_admin=ep, in a RUN of
#    that stage so the layer keeps the xattr); the container must be
#    allowed the two capabilities and must not set no-new-privileges
#    (which disables file capabilities):
#      docker run -d --network host --cap-drop ALL --cap-add NET_RAW --cap-add NET_ADMIN \
#        -v phonehome:/var/lib/phonehome phonehome:dev run -i eth1
# 2. Where file capabilities are not kept (some builders, no-new-privileges
#    policies): start as root with only what the sockets need and let the
#    sensor become the image's user once they are open (--run-as):
#      docker run -d --network host --user 0:0 --cap-drop ALL \
#        --cap-add NET_RAW --cap-add NET_ADMIN --cap-add SETUID --cap-add SETGID \
#        -v phonehome:/var/lib/phonehome phonehome:dev run -i eth1 --run-as phonehome
ARG GO_VERSION=1.26

FROM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=devel
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/phonehome ./sensor

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends tcpdump ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 phonehome \
 && useradd --system --uid 10001 --gid phonehome --home-dir /var/lib/phonehome --create-home --shell /usr/sbin/nologin phonehome \
 && mkdir -p /var/log/phonehome && chown phonehome:phonehome /var/log/phonehome
COPY --from=build /out/phonehome /usr/local/bin/phonehome
RUN apt-get update \
 && apt-get install -y --no-install-recommends libcap2-bin \
 && setcap cap_net_raw,cap_net_admin=ep /usr/local/bin/phonehome \
 && apt-get purge -y libcap2-bin && apt-get autoremove -y \
 && rm -rf /var/lib/apt/lists/*
USER 10001:10001
WORKDIR /var/lib/phonehome
VOLUME ["/var/lib/phonehome"]
EXPOSE 17466
ENTRYPOINT ["/usr/local/bin/phonehome"]
CMD ["run", "--help"]
