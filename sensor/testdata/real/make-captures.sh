#!/usr/bin/env bash
# make-captures.sh: record real client handshakes (Go crypto/tls with
# post-quantum key shares, quic-go, Chromium over TCP and QUIC, curl,
# openssl s_client, dig) between two network namespaces, one pcap per
# scenario, then derive expected.json from the pcaps with tshark.
#
#   sudo sensor/testdata/real/make-captures.sh            # all scenarios, into this directory
#   sudo sensor/testdata/real/make-captures.sh quic-go    # only the named ones, into a kept
#                                                         # work directory (unless OUT is set)
#
# Needs root (namespaces, tcpdump), Go, and Debian packages it installs when
# missing. Traffic stays between the namespaces phc-client (10.99.0.1,
# fd99::1) and phc-server (10.99.0.2, fd99::2); neither has a default route.
# Everything it sets up is removed on exit, failure included.
# Environment: OUT=dir (default: this script's directory), KEEP_WORK=1.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../../.." && pwd)
OUT_SET=${OUT:+1}
OUT=${OUT:-$HERE}
NSC=phc-client NSS=phc-server
VC=phc-c VS=phc-s
C4=10.99.0.1 S4=10.99.0.2 C6=fd99::1 S6=fd99::2
PKGS=(tcpdump tshark curl openssl chromium ethtool iproute2 iputils-ping dnsmasq-base bind9-dnsutils)

log() { printf '== %s\n' "$*" >&2; }
die() { printf 'make-captures: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root (sudo $0)"
export PATH="$PATH:/usr/local/go/bin:/usr/sbin:/sbin"
command -v go >/dev/null || die "go not found (Go 1.26 expected in /usr/local/go)"

# --- packages -------------------------------------------------------------
missing=()
for p in "${PKGS[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
	log "installing ${missing[*]}"
	apt-get update -q
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
fi

WORK=$(mktemp -d /tmp/phc-captures.XXXXXX)
chmod 755 "$WORK"
SERVER_PID= TCPDUMP_PID=

cleanup() {
	set +e
	# Only what is still running: each is cleared once stopped and reaped.
	for p in $SERVER_PID $TCPDUMP_PID; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
	ip netns del "$NSC" 2>/dev/null
	ip netns del "$NSS" 2>/dev/null
	if [ -n "${KEEP_WORK:-}" ]; then log "work directory kept: $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- the tool -------------------------------------------------------------
log "building tools/realcap"
(cd "$ROOT/tools/realcap" && CGO_ENABLED=0 go build -trimpath -o "$WORK/realcap" .)
RC=$WORK/realcap

# --- namespaces -----------------------------------------------------------
ip netns del "$NSC" 2>/dev/null || true
ip netns del "$NSS" 2>/dev/null || true
ip netns add "$NSC"
ip netns add "$NSS"
for ns in "$NSC" "$NSS"; do
	ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0 \
		net.ipv6.conf.default.router_solicitations=0 net.ipv4.tcp_no_metrics_save=1
	ip -n "$ns" link set lo up
done
ip link add "$VC" netns "$NSC" type veth peer name "$VS" netns "$NSS"
for ns_dev in "$NSC:$VC" "$NSS:$VS"; do
	ns=${ns_dev%%:*} dev=${ns_dev#*:}
	# No offloads: tcpdump must see the segments and datagrams that go on
	# the wire (not GSO super-packets), with their final checksums.
	ip netns exec "$ns" ethtool -K "$dev" tx off rx off tso off gso off gro off >/dev/null 2>&1 || true
	ip netns exec "$ns" sysctl -qw "net.ipv6.conf.$dev.accept_dad=0" "net.ipv6.conf.$dev.router_solicitations=0"
done
ip -n "$NSC" addr add "$C4/24" dev "$VC"
ip -n "$NSS" addr add "$S4/24" dev "$VS"
ip -n "$NSC" link set "$VC" up
ip -n "$NSS" link set "$VS" up

set_mtu() {
	ip -n "$NSC" link set "$VC" mtu "$1"
	ip -n "$NSS" link set "$VS" mtu "$1"
	local have6
	have6=$(ip -n "$NSC" -6 addr show dev "$VC")
	if [ "$1" -ge 1280 ] && [[ $have6 != *"$C6/"* ]]; then
		# Below 1280 the kernel drops IPv6 from the link; put it back, and
		# let the MLD reports that follow pass before anything is captured.
		ip netns exec "$NSC" sysctl -qw "net.ipv6.conf.$VC.accept_dad=0"
		ip netns exec "$NSS" sysctl -qw "net.ipv6.conf.$VS.accept_dad=0"
		ip -n "$NSC" -6 addr add "$C6/64" dev "$VC" nodad
		ip -n "$NSS" -6 addr add "$S6/64" dev "$VS" nodad
		sleep 3
	fi
	ip -n "$NSC" route flush cache 2>/dev/null || true
}
set_mtu 1500
ip netns exec "$NSC" ping -c1 -W2 "$S4" >/dev/null || die "no IPv4 between the namespaces"
ip netns exec "$NSC" ping -6 -c1 -W2 "$S6" >/dev/null || die "no IPv6 between the namespaces"

# --- versions -------------------------------------------------------------
QUICGO=$(cd "$ROOT/tools/realcap" && go list -m -f "{{.Version}}" github.com/quic-go/quic-go)
{
	echo "go=$(go version | awk '{print $3}')"
	echo "quic-go=$QUICGO"
	echo "tshark=$(tshark --version 2>/dev/null | head -1)"
	echo "tcpdump=$(tcpdump --version 2>&1 | head -1)"
	echo "libpcap=$(tcpdump --version 2>&1 | sed -n 2p)"
	echo "chromium=$(chromium --version 2>/dev/null | head -1)"
	echo "curl=$(curl --version | head -1)"
	echo "openssl=$(openssl version)"
	echo "dnsmasq=$(dnsmasq --version | head -1)"
	echo "dig=$(dig -v 2>&1 | head -1)"
	echo "kernel=$(uname -sr)"
	echo "os=Debian $(cat /etc/debian_version)"
	echo "generated=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
} >"$WORK/versions.txt"
cat "$WORK/versions.txt" >&2

# --- one capture ----------------------------------------------------------
start_server() { # realcap server flags...
	ip netns exec "$NSS" env QUIC_GO_DISABLE_GSO=true QUIC_GO_DISABLE_RECEIVE_BUFFER_WARNING=true \
		"$RC" server -spki-out "$WORK/spki" "$@" >>"$WORK/server.log" 2>&1 &
	SERVER_PID=$!
	wait_port tcp 8443
}
start_dnsmasq() {
	ip netns exec "$NSS" dnsmasq --keep-in-foreground --conf-file=/dev/null --no-resolv --no-hosts \
		--bind-interfaces --listen-address="$S4" --listen-address="$S6" --user=root --group=root \
		--pid-file= --log-queries --log-facility=- \
		--address=/dns.phonehome.example/"$S4" --address=/dns.phonehome.example/"$S6" \
		--txt-record=txt.dns.phonehome.example,"realcap test record: over TCP and UDP" \
		>>"$WORK/server.log" 2>&1 &
	SERVER_PID=$!
	wait_port udp 53
}
wait_port() { # proto port
	local i
	for i in $(seq 50); do
		if [ -n "$(ip netns exec "$NSS" ss -Hln --"$1" "sport = :$2")" ]; then return 0; fi
		sleep 0.1
	done
	die "server did not listen on $1/$2 (see $WORK/server.log)"
}
stop_server() {
	kill "$SERVER_PID" 2>/dev/null || true
	wait "$SERVER_PID" 2>/dev/null || true
	SERVER_PID=
}

start_tcpdump() { # file
	: >"$WORK/tcpdump.log"
	ip netns exec "$NSC" tcpdump -i "$VC" -s 0 -U --immediate-mode -n -Z root -w "$1" >"$WORK/tcpdump.log" 2>&1 &
	TCPDUMP_PID=$!
	local i
	for i in $(seq 50); do
		grep -q 'listening on' "$WORK/tcpdump.log" && { sleep 0.2; return 0; }
		sleep 0.1
	done
	die "tcpdump did not start: $(cat "$WORK/tcpdump.log")"
}
stop_tcpdump() {
	sleep 0.5 # let the last packets (FIN, RST, CONNECTION_CLOSE) in
	kill -INT "$TCPDUMP_PID" 2>/dev/null || true
	wait "$TCPDUMP_PID" 2>/dev/null || true
	TCPDUMP_PID=
	sed -n '/packets captured/p' "$WORK/tcpdump.log" >&2
}

# client CMD: runs CMD (a bash command line) in the client namespace.
# A failing client is logged, not fatal: the checks on the pcap decide.
client() {
	log "client: $1"
	local rc=0
	ip netns exec "$NSC" env PATH="$WORK:$PATH" SPKI="$WORK/spki" TMPDIR="$WORK" QUIC_GO_DISABLE_GSO=true \
		bash -c "$1" >>"$WORK/client.log" 2>&1 || rc=$?
	[ "$rc" = 0 ] || log "  (exit status $rc; end of the client's output below)"
	tail -n 5 "$WORK/client.log" | sed 's/^/   | /' >&2
	: >"$WORK/client.log"
}

: >"$WORK/manifest.tsv"
# record FILE CHECKS MADE_BY NOTES
record() { printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" >>"$WORK/manifest.tsv"; }

WANT=("$@")
if [ ${#WANT[@]} -gt 0 ] && [ -z "${OUT_SET:-}" ]; then
	# A subset run leaves the committed pcaps and expected.json alone.
	OUT=$WORK/out
	KEEP_WORK=1
	mkdir -p "$OUT"
	log "subset run: pcaps and expected.json go to $OUT"
fi
mkdir -p "$OUT"
want() { # scenario name: is it selected?
	[ ${#WANT[@]} -eq 0 ] && return 0
	local w
	for w in "${WANT[@]}"; do [ "$w" = "$1" ] && return 0; done
	return 1
}

# scenario NAME MTU SERVER_KIND(realcap|realcap-retry|dnsmasq) CHECKS NOTES CLIENT_CMD...
# Some properties depend on timing (see README.md). A scenario whose pcap
# fails its CHECKS, or the checks in PREFER (set for one call), is recorded
# again, up to 8 times; after that, CHECKS must pass (the final run of
# realcap expect enforces them), PREFER need not.
scenario() {
	local name=$1 mtu=$2 kind=$3 checks=$4 notes=$5 prefer=${PREFER:-}
	shift 5
	want "$name" || return 0
	local attempt c made
	for attempt in 1 2 3 4 5 6 7 8; do
		log "scenario $name (MTU $mtu), attempt $attempt"
		set_mtu "$mtu"
		local server_cmd
		case $kind in
		realcap) start_server -addr :8443 -http :8080; server_cmd="realcap server -addr :8443 -http :8080" ;;
		realcap-retry) start_server -addr :8443 -http "" -retry; server_cmd="realcap server -addr :8443 -retry" ;;
		dnsmasq) start_dnsmasq; server_cmd="dnsmasq (see make-captures.sh start_dnsmasq)" ;;
		esac
		start_tcpdump "$WORK/$name.pcap"
		made="MTU $mtu; server: $server_cmd; client:"
		for c in "$@"; do
			client "$c"
			made="$made $c;"
		done
		stop_tcpdump
		stop_server
		printf '%s\t%s\t-\t-\n' "$name.pcap" "$checks${prefer:+;$prefer}" >"$WORK/one.tsv"
		if "$RC" expect -dir "$WORK" -manifest "$WORK/one.tsv" -o /dev/null; then
			break
		fi
		log "  $name.pcap does not pass its checks (attempt $attempt of 8)"
	done
	cp "$WORK/$name.pcap" "$OUT/$name.pcap"
	chmod 644 "$OUT/$name.pcap"
	record "$name.pcap" "$checks" "${made%;}" "$notes"
}

# Chromium: headless, its own throw-away profile, no background traffic.
CHROME_FLAGS='--headless --no-sandbox --disable-gpu --no-first-run --disable-background-networking --disable-component-update --disable-sync --disable-default-apps --disable-breakpad --metrics-recording-only --no-pings --ignore-certificate-errors --host-resolver-rules="MAP chrome.phonehome.example 10.99.0.2" --dump-dom'
PAD=$(printf 'a%.0s' $(seq 360))

# --- scenarios ------------------------------------------------------------
scenario go-tls-pq 1500 realcap "tls>=1;tls_segments>=2" \
	"Go crypto/tls client with its default configuration (no ALPN): the ClientHello carries an X25519MLKEM768 key share and does not fit one 1448-byte segment." \
	"realcap client -mode tls -sni go-pq.phonehome.example -addr 10.99.0.2:8443"

scenario go-tls-pq-mtu600 600 realcap "tls>=1;tls_segments>=3" \
	"Same Go client with ALPN h2,http/1.1, MTU 600 (MSS 548 with timestamps): the ClientHello is cut in several segments." \
	"realcap client -mode tls -sni go-pq-mtu600.phonehome.example -addr 10.99.0.2:8443 -alpn h2,http/1.1"

scenario go-tls-pq-mtu400 400 realcap "tls>=1;tls_segments>=4" \
	"Same Go client with ALPN h2,http/1.1, MTU 400 (MSS 348 with timestamps): the ClientHello is cut in five segments." \
	"realcap client -mode tls -sni go-pq-mtu400.phonehome.example -addr 10.99.0.2:8443 -alpn h2,http/1.1"

PREFER="hello_dcids>=2" scenario quic-go 1500 realcap "quic>=1;quic_packets>=2" \
	"quic-go HTTP/3 client (ALPN h3) against the quic-go server: the post-quantum ClientHello is split over two Initial packets. The script prefers a recording in which the server's first Initial arrives between them, so that the second already carries the DCID the server chose while the Initial keys still come from the first DCID; quic_clienthello_dcids tells whether this one is such a recording (two DCIDs) or not (one)." \
	"realcap client -mode h3 -sni quic-go.phonehome.example -addr 10.99.0.2:8443"

scenario quic-go-retry 1500 realcap-retry "quic>=1;retry>=1;client_initials>=3" \
	"quic-go client; the server answers every Initial without a token with a Retry. The client acts on the first Retry and ignores any other, then sends the whole ClientHello again in new Initials that carry the token and the DCID chosen by the first Retry (Initial keys from that DCID). Initials of the first attempt that were already queued may leave after the Retry came back, with the old DCID, and draw a Retry of their own (quic_retry_packets). tshark reports one ClientHello, possibly reassembled from CRYPTO frames of both attempts (quic_clienthello_dcids). When there are two Retries, tshark 4.0 may take the keys of the server's later Initials from the wrong one and fail to decrypt them (server side only)." \
	"realcap client -mode h3 -sni quic-go-retry.phonehome.example -addr 10.99.0.2:8443"

scenario chromium-tls 1500 realcap "tls>=1;tls_segments>=2" \
	"Debian Chromium, headless, QUIC off: GREASE, ECH GREASE (0xfe0d), X25519MLKEM768; each ClientHello spans two TCP segments. Chromium opens a second connection 30 ms after the first, completes its handshake, never uses it and resets it, so there are two ClientHellos." \
	"timeout 30 chromium $CHROME_FLAGS --user-data-dir=\$(mktemp -d) --disable-quic https://chrome.phonehome.example:8443/"

scenario chromium-quic 1500 realcap "quic>=1;quic_packets>=2" \
	"Debian Chromium, headless, QUIC forced for chrome.phonehome.example:8443 (SPKI names the file in which the server wrote the SHA-256 hash of its certificate's public key: Chromium's QUIC ignores --ignore-certificate-errors but honours --ignore-certificate-errors-spki-list): the ClientHello is spread over two Initial packets, in CRYPTO frames that Chromium cuts up, reorders and mixes with PING and PADDING frames. The HTTP/3 request succeeds." \
	"timeout 30 chromium $CHROME_FLAGS --user-data-dir=\$(mktemp -d) --ignore-certificate-errors-spki-list=\$(cat \$SPKI) --enable-quic --origin-to-force-quic-on=chrome.phonehome.example:8443 https://chrome.phonehome.example:8443/"

scenario curl-http-split 300 realcap "http>=1;http_segments>=2" \
	"curl, plain HTTP, MTU 300 (MSS 248 with timestamps) and a ~400-byte request target: the request line fills the first segment, Host and User-Agent come in later ones." \
	"curl -sS --max-time 3 -o /dev/null --resolve curl.phonehome.example:8080:10.99.0.2 'http://curl.phonehome.example:8080/v1/check?client=realcap&pad=$PAD'"

scenario curl-tls 1500 realcap "tls>=1" \
	"curl with OpenSSL 3.0 over TLS (ALPN h2,http/1.1), no post-quantum group." \
	"curl -sS -k --max-time 3 -o /dev/null --resolve curl-tls.phonehome.example:8443:10.99.0.2 https://curl-tls.phonehome.example:8443/"

scenario openssl-sclient 1500 realcap "tls>=1" \
	"openssl s_client with its defaults (no ALPN)." \
	"openssl s_client -connect 10.99.0.2:8443 -servername openssl.phonehome.example </dev/null"

scenario http-ipv6-absolute 1500 realcap "http>=3" \
	"HTTP over IPv6: an origin-form request to a literal address (Host: [fd99::2]:8080), an absolute-form proxy request, and a CONNECT (authority-form) after which curl sends a TLS ClientHello for tunnel.phonehome.example through the tunnel on port 8080; the server reads it and closes, so that curl fails." \
	"curl -sS --max-time 3 -o /dev/null -g 'http://[fd99::2]:8080/x'" \
	"curl -sS --max-time 3 -o /dev/null -x 'http://[fd99::2]:8080' http://proxied.phonehome.example/" \
	"curl -sS --max-time 3 -o /dev/null -k -p -x 'http://[fd99::2]:8080' https://tunnel.phonehome.example/"

scenario dns-udp-tcp 1500 dnsmasq "dns>=4" \
	"dig against dnsmasq: A over UDP/IPv4, AAAA over TCP/IPv4, TXT over UDP/IPv6 and A over TCP/IPv6." \
	"dig +tries=1 +time=2 @10.99.0.2 a.dns.phonehome.example A" \
	"dig +tcp +tries=1 +time=2 @10.99.0.2 a.dns.phonehome.example AAAA" \
	"dig +tries=1 +time=2 @fd99::2 txt.dns.phonehome.example TXT" \
	"dig +tcp +tries=1 +time=2 @fd99::2 b.dns.phonehome.example A"

[ -s "$WORK/manifest.tsv" ] || die "no scenario matched: $*"

# --- expected.json --------------------------------------------------------
log "writing $OUT/expected.json"
"$RC" expect -dir "$OUT" -manifest "$WORK/manifest.tsv" -versions "$WORK/versions.txt" -o "$OUT/expected.json"
chmod 644 "$OUT/expected.json"
log "done"
