# phonehome — see README.md. `make run` and `make test` are the two commands
# a newcomer needs.

GO        ?= go
BIN       := bin/phonehome
DEMO      := sensor/testdata/demo.pcap
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)
LDFLAGS   := -s -w -X main.version=$(VERSION)
# Debian packages the tests need: PostgreSQL (inventory store tests), Chromium
# (report render test); later issues add Prometheus, Alertmanager, rsyslog. Installed only when missing.
DEB_PACKAGES ?= postgresql chromium fonts-liberation
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: all build run test deps vet lint fmt fuzz clean demo

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./sensor

# Run the sensor on built-in defaults over the capture shipped in the repo:
# alerts (ECS JSON lines) on stdout, the summary and host list on stderr.
run: build
	./$(BIN) run -r $(DEMO)

deps:
	@missing=""; for p in $(DEB_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $$missing; fi
	$(GO) mod download

vet:
	@out=$$(gofmt -l sensor rules geo metrics tools 2>/dev/null); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
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
