# phonehome — see README.md. `make run` and `make test` are the two commands
# a newcomer needs.

GO        ?= go
BIN       := bin/phonehome
DEMO      := sensor/testdata/demo.pcap
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)
LDFLAGS   := -s -w -X main.version=$(VERSION)
# Debian packages the tests need: PostgreSQL (inventory store tests), Chromium
# (report render test, live capture test); for live capture: libpcap-dev and
# gcc (build-pcap), tcpdump (filter expressions in the default build),
# iproute2, dnsmasq-base, bind9-dnsutils, curl, openssl, ethtool (live
# capture test in network namespaces), tcpreplay (bench-live); prometheus
# and prometheus-alertmanager (promtool rule tests, metrics lint, the
# end-to-end test in deploy/prometheus); systemd and logrotate
# (systemd-analyze verify, logrotate runs in go test ./deploy); rpm and
# groff-base (rpm -qpl on the package, groff -ww on the man page in
# go test ./deploy, make package); rsyslog and rsyslog-gnutls (the syslog
# output is tested against a real rsyslogd).
# Installed only when missing.
DEB_PACKAGES ?= postgresql chromium fonts-liberation libpcap-dev gcc tcpdump iproute2 dnsmasq-base bind9-dnsutils curl openssl ethtool tcpreplay prometheus prometheus-alertmanager systemd logrotate rpm groff-base sqlite3 man-db rsyslog rsyslog-gnutls
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: all build run test deps vet lint fmt fuzz clean demo bench

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./sensor

# The same with libpcap (--capture.method pcap; filter expressions compiled
# by libpcap): cgo, needs libpcap-dev. The default build stays pure Go.
build-pcap:
	CGO_ENABLED=1 $(GO) build -tags pcap -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)-pcap ./sensor

# Run the sensor on built-in defaults over the capture shipped in the repo:
# alerts (ECS JSON lines) on stdout, the summary and host list on stderr.
# The inventory goes to a fresh bin/demo.db, so that `make run` twice
# does not count the demo's contacts twice; then
# `./bin/phonehome report --storage.path bin/demo.db` shows the report.
run: build
	@rm -f bin/demo.db bin/demo.db-wal bin/demo.db-shm
	./$(BIN) run -r $(DEMO) --storage.path bin/demo.db

deps:
	@missing=""; for p in $(DEB_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $$missing; fi
	$(GO) mod download

vet:
	@out=$$(gofmt -l sensor rules geo metrics tools deploy 2>/dev/null); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

lint: vet
	$(GO) run $(STATICCHECK) ./...

test: deps lint
	$(GO) test -count=1 ./...

# Runs of every fuzz target in every package (go test allows one target
# per run); FUZZTIME=10m for a long campaign.
FUZZTIME ?= 20s
fuzz:
	@for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep ^Fuzz); do \
	    $(GO) test $$pkg -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) || exit 1; \
	  done; \
	done

# Regenerate the demo capture (see sensor/testdata/README.md).
demo:
	$(GO) run ./sensor/internal/testcap/gendemo -o $(DEMO)

clean:
	rm -rf bin

# Re-download the embedded default GeoIP country database (geo/data, see
# geo/data/README.md) from the npm registry and print the version now embedded.
# The npm "license" field says CC0-1.0; the data itself is CC BY 4.0 (NRO,
# geo/data/NRO_LICENSE). Update version, date and sha256 in geo/data/README.md.
GEO_NPM_PACKAGE := @ip-location-db/geo-whois-asn-country-mmdb
.PHONY: geo-refresh
geo-refresh:
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	(cd "$$tmp" && npm pack --silent "$(GEO_NPM_PACKAGE)" >/dev/null && tar -xzf ./*.tgz) && \
	cp "$$tmp/package/geo-whois-asn-country.mmdb" "$$tmp/package/NRO_LICENSE" geo/data/ && \
	(cd "$$tmp/package" && node -p "'$(GEO_NPM_PACKAGE)@' + require('./package.json').version") > geo/data/VERSION && \
	echo "embedded: $$(cat geo/data/VERSION) (npm license field: $$(cd "$$tmp/package" && node -p "require('./package.json').license"); data: CC BY 4.0, NRO)" && \
	sha256sum geo/data/geo-whois-asn-country.mmdb && ls -l geo/data/geo-whois-asn-country.mmdb

# The benchmark anyone can rerun (see README "Performance"): a generated
# 2 M-packet capture (cached in .cache/bench), phonehome with 1 and 2
# workers against the floor program, 5 alternating pairs; fails if the
# hosts and names found differ from the generator's truth. PROFILE=1 also
# writes CPU and heap profiles.
BENCH_PACKETS ?= 2000000
BENCH_PAIRS   ?= 5
bench:
	$(GO) run ./tools/benchrun -packets $(BENCH_PACKETS) -pairs $(BENCH_PAIRS) $(if $(PROFILE),-profile)

# Live capture benchmark (root): replays a generated capture
# (BENCH_LIVE_PACKETS, ../shared/bench/gen, cached in $TMPDIR) with tcpreplay
# --topspeed into one end of a veth pair while phonehome captures on the
# other with 1 and 2 workers; prints packets replayed/s, packets seen,
# kernel drops and the share of the truth's matching hosts found. Not a
# timed test. BENCH_LIVE_ARGS adds phonehome flags.
BENCH_LIVE_PACKETS ?= 1000000
.PHONY: build-pcap bench-live
bench-live:
	PHONEHOME_BENCH_LIVE=1 PHONEHOME_BENCH_PACKETS=$(BENCH_LIVE_PACKETS) PHONEHOME_BENCH_ARGS='$(BENCH_LIVE_ARGS)' \
	  $(GO) test ./sensor -run '^TestBenchLive$$' -count=1 -v -timeout 30m

# Metrics, HTTP, dashboard, rules (README "Metrics and HTTP").
.PHONY: dashboard checkrules checkmetrics e2e serve
# Regenerate the Grafana dashboard from deploy/grafana/gen (a test fails
# when the committed JSON differs from the generator's output).
dashboard:
	$(GO) run ./deploy/grafana/gen -o deploy/grafana/phonehome.json

# Prometheus rules and example configurations: promtool check and unit
# tests, amtool check (go test ./deploy/prometheus runs the same).
checkrules:
	promtool check rules deploy/prometheus/phonehome.rules.yml
	promtool test rules deploy/prometheus/phonehome.rules.test.yml
	promtool check config deploy/prometheus/prometheus.yml
	amtool check-config deploy/prometheus/alertmanager.yml

# promtool check metrics and client_golang's lint over the exposition.
checkmetrics:
	$(GO) test -count=1 -run 'TestLint|TestPromtoolCheckMetrics' ./metrics/

# The sensor replaying the demo capture, scraped by a real Prometheus with
# the rules, alerts into a real Alertmanager, every dashboard query checked.
e2e:
	$(GO) test -count=1 -run TestEndToEnd -v ./deploy/prometheus/

# Serve the demo replay for an hour on 127.0.0.1:17466 (metrics, /report,
# /api/v1/hosts), e.g. to point a local Prometheus and Grafana at it.
serve: build
	./$(BIN) run -r $(DEMO) --storage.path "" --removal.deadline 2018-10-01 --web.listen-address 127.0.0.1:17466 --web.hold 1h >/dev/null

# The deployment files (systemd, logrotate, Dockerfile, compose, Kubernetes):
# systemd-analyze, logrotate, promtool and amtool checks and strict
# decoding of the manifests. After editing deploy/prometheus/phonehome.rules.yml
# regenerate the PrometheusRule with `make prometheusrule`.
.PHONY: checkdeploy prometheusrule
checkdeploy:
	$(GO) test -count=1 ./deploy/...

prometheusrule:
	$(GO) test -count=1 ./deploy -run TestKubernetesPrometheusRule -update

# Packages (README "Deployment", docs/): bin/phonehome_<version>_amd64.deb
# and .rpm, built by nfpm (deploy/package/nfpm.yaml; `go run`, so nfpm stays
# out of go.mod): /usr/bin/phonehome, the systemd unit with
# ExecStart=/usr/bin/phonehome, /etc/default/phonehome and the logrotate
# snippet as configuration files, the man page (generated from the binary's
# --help-man by deploy/man/gen), maintainer scripts in deploy/package.
# The version is `git describe --tags --always` made Debian- and RPM-valid by
# deploy/package/version.sh (0.0.0~git<hash> before the first tag).
# PKG_OUT=DIR writes elsewhere (go test ./deploy does, with BIN=DIR/phonehome).
NFPM        := github.com/goreleaser/nfpm/v2/cmd/nfpm@v2.45.2
PKG_OUT     ?= bin
PKG_VERSION ?= $(shell sh deploy/package/version.sh)
PKG_STAGE    = $(PKG_OUT)/package-stage
.PHONY: package man
package: build
	@case "$(PKG_VERSION)" in [0-9]*) ;; *) echo "bad PKG_VERSION '$(PKG_VERSION)'"; exit 1;; esac
	rm -rf $(PKG_STAGE) && mkdir -p $(PKG_STAGE)
	cp $(BIN) $(PKG_STAGE)/phonehome
	cp deploy/systemd/phonehome.env $(PKG_STAGE)/phonehome.env
	cp deploy/logrotate/phonehome $(PKG_STAGE)/phonehome.logrotate
	cp LICENSE deploy/package/postinstall.sh deploy/package/preremove.sh $(PKG_STAGE)/
	sed -e 's|/usr/local/bin/phonehome|/usr/bin/phonehome|g' \
	    -e 's|^Documentation=|Documentation=man:phonehome(1) |' \
	    deploy/systemd/phonehome.service > $(PKG_STAGE)/phonehome.service
	$(GO) run ./deploy/man/gen -bin $(BIN) -version $(PKG_VERSION) -o $(PKG_STAGE)/phonehome.1
	gzip -9n $(PKG_STAGE)/phonehome.1
	for p in deb rpm; do \
	  (cd $(PKG_STAGE) && PKG_VERSION=$(PKG_VERSION) $(GO) run $(NFPM) package \
	    --config $(CURDIR)/deploy/package/nfpm.yaml --packager $$p \
	    --target $(abspath $(PKG_OUT))/phonehome_$(PKG_VERSION)_amd64.$$p) || exit 1; \
	done

# Regenerate the committed man page (a test fails when it is out of date).
man: build
	$(GO) run ./deploy/man/gen -bin $(BIN) -o deploy/man/phonehome.1
