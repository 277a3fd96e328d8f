package rules

import (
	"encoding/binary"
	"encoding/json"
	goparser "go/parser"
	"go/token"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func builtin(t testing.TB) *Set {
	t.Helper()
	s, err := Builtin()
	if err != nil {
		t.Fatalf("Builtin: %v", err)
	}
	return s
}

// hitIDs renders hits as "rule-id kind indicator" for comparisons.
func hitIDs(hits []Hit) []string {
	var out []string
	for _, h := range hits {
		out = append(out, h.Rule.ID+" "+h.Kind+" "+h.Indicator)
	}
	return out
}

func TestMatchNameBuiltin(t *testing.T) {
	s := builtin(t)
	tests := []struct {
		name string
		want string // "rule-id kind indicator", or "" for no hit
	}{
		// Updates.
		{"s00.upd.kaspersky.com", "kaspersky-update domain upd.kaspersky.com"},
		{"s19.upd.kaspersky.com", "kaspersky-update domain upd.kaspersky.com"},
		{"downloads.upd.kaspersky.com", "kaspersky-update domain upd.kaspersky.com"},
		{"p07.upd.kaspersky.com", "kaspersky-update domain upd.kaspersky.com"},
		{"upd.kaspersky.com", "kaspersky-update domain upd.kaspersky.com"},
		{"cm.k.kaspersky-labs.com", "kaspersky-update name cm.k.kaspersky-labs.com"},
		{"dnl-test.kaspersky-labs.com", "kaspersky-update name dnl-test.kaspersky-labs.com"},
		{"dnl-01.geo.kaspersky.com", "kaspersky-update-geo domain geo.kaspersky.com"},
		{"dnl-19.geo.kaspersky.com", "kaspersky-update-geo domain geo.kaspersky.com"},
		{"edge.geo.kaspersky.com", "kaspersky-update-geo domain geo.kaspersky.com"},
		{"downloads.kaspersky-labs.com", "kaspersky-update-legacy pattern downloads*.kaspersky-labs.com"},
		{"downloads2.kaspersky-labs.com", "kaspersky-update-legacy pattern downloads*.kaspersky-labs.com"},
		{"downloads9.kaspersky-labs.com", "kaspersky-update-legacy pattern downloads*.kaspersky-labs.com"},
		{"ds.kaspersky.com", "kaspersky-update-unverified name ds.kaspersky.com"},
		{"moebius.kaspersky-labs.com", "kaspersky-update-unverified name moebius.kaspersky-labs.com"},
		// KSN.
		{"dc1.ksn.kaspersky-labs.com", "kaspersky-ksn domain ksn.kaspersky-labs.com"},
		{"dc1-cert.ksn.kaspersky-labs.com", "kaspersky-ksn domain ksn.kaspersky-labs.com"},
		{"mdr.ksn.kaspersky-labs.com", "kaspersky-ksn domain ksn.kaspersky-labs.com"},
		{"ksn-url-geo.kaspersky-labs.com", "kaspersky-ksn pattern ksn-*.kaspersky-labs.com"},
		{"ksn-verdict-geo.kaspersky-labs.com", "kaspersky-ksn pattern ksn-*.kaspersky-labs.com"},
		{"ksn-stat-geo.kaspersky-labs.com", "kaspersky-ksn pattern ksn-*.kaspersky-labs.com"},
		{"ksn-crypto-wifiplus-geo.kaspersky-labs.com", "kaspersky-ksn pattern ksn-*.kaspersky-labs.com"},
		{"ksn-.kaspersky-labs.com", "kaspersky-ksn pattern ksn-*.kaspersky-labs.com"}, // '*' may match nothing
		{"dc1-file.geoksn.kaspersky.com", "kaspersky-ksn domain geoksn.kaspersky.com"},
		{"telemetry.kaspersky.com", "kaspersky-telemetry-unverified name telemetry.kaspersky.com"},
		// Activation.
		{"activation-v2.kaspersky.com", "kaspersky-activation domain activation-v2.kaspersky.com"},
		{"refresh-bkg.activation-v2.kaspersky.com", "kaspersky-activation domain activation-v2.kaspersky.com"},
		{"activation-v2.geo.kaspersky.com", "kaspersky-activation-geo domain activation-v2.geo.kaspersky.com"},
		// Certificates, time.
		{"touch.kaspersky.com", "kaspersky-time name touch.kaspersky.com"},
		{"crl.kaspersky.com", "kaspersky-crl name crl.kaspersky.com"},
		{"ocsp.kaspersky.com", "kaspersky-ocsp-unverified name ocsp.kaspersky.com"},
		// Management.
		{"eu.ksc.kaspersky.com", "kaspersky-ksc-cloud domain ksc.kaspersky.com"},
		// Portals.
		{"gc.kis.v2.scr.kaspersky-labs.com", "kaspersky-web-script domain kis.v2.scr.kaspersky-labs.com"},
		{"my.kaspersky.com", "kaspersky-portal name my.kaspersky.com"},
		{"usa.kaspersky.com", "kaspersky-portal name usa.kaspersky.com"},
		{"products.s.kaspersky-labs.com", "kaspersky-installers name products.s.kaspersky-labs.com"},
		{"aes.s.kaspersky-labs.com", "kaspersky-installers name aes.s.kaspersky-labs.com"},
		{"login.kaspersky.com", "kaspersky-portal-unverified name login.kaspersky.com"},
		// Brand: anything else under the brand suffixes, and sub-names of exact names.
		{"kaspersky.com", "kaspersky-brand domain kaspersky.com"},
		{"www.kaspersky.com", "kaspersky-brand domain kaspersky.com"},
		{"click.kaspersky.com", "kaspersky-brand domain kaspersky.com"},
		{"www.my.kaspersky.com", "kaspersky-brand domain kaspersky.com"},
		{"x.ds.kaspersky.com", "kaspersky-brand domain kaspersky.com"},
		{"a.ksn-url-geo.kaspersky-labs.com", "kaspersky-brand domain kaspersky-labs.com"},
		{"geo.kaspersky.com.kaspersky.com", "kaspersky-brand domain kaspersky.com"},
		{"support.kaspersky.cn", "kaspersky-brand-regional domain kaspersky.cn"},
		{"support.kaspersky.co.uk", "kaspersky-brand-regional domain kaspersky.co.uk"},
		{"encyclopedia.kaspersky.it", "kaspersky-brand-regional domain kaspersky.it"},
		{"kaspersky.ua", "kaspersky-brand-regional domain kaspersky.ua"},
		{"securelist.com", "kaspersky-research-sites domain securelist.com"},
		{"securelist.ru", "kaspersky-research-sites domain securelist.ru"},
		{"media.kasperskycontenthub.com", "kaspersky-research-sites domain kasperskycontenthub.com"},
		{"www.avp.ru", "kaspersky-legacy-domains domain avp.ru"},
		{"viruslist.ru", "kaspersky-legacy-domains domain viruslist.ru"},
		// Tolerated: one trailing dot.
		{"s01.upd.kaspersky.com.", "kaspersky-update domain upd.kaspersky.com"},
		// Look-alikes and unrelated names: never a hit.
		{"notkaspersky.com", ""},
		{"www.notkaspersky.com", ""},
		{"kaspersky.com.evil.net", ""},
		{"kaspersky.com.example", ""},
		{"ksn.kaspersky-labs.com.example", ""},
		{"mykaspersky-labs.com", ""},
		{"kasperskyupdate.com", ""},
		{"www.kasperskyupdate.com", ""},
		{"kasperskyupdates.com", ""},
		{"tfvanrafeseaavp.ru", ""},
		{"kaspersky-lab.org", ""},
		{"kaspersky-lab.com", ""},
		{"kaspersky-scan.com", ""},
		{"kasperskysecurity.club", ""},
		{"helpkaspersky.top", ""},
		{"kaspersky.xyz", ""},
		{"microsoft.kaspersky.xyz", ""},
		{"kaspersky-server554-info.win", ""},
		{"upd.kaspersky.com.evil.net", ""},
		{"kaspersky", ""},
		{"com", ""},
		{"ru", ""},
		{"", ""},
		{".", ""},
		{"www.google.com", ""},
		{"a.b.c.d.example.org", ""},
		{"sophos.com", ""},
		{"download.mcafee.com", ""},
		// Normalisation: ASCII case is ignored, one trailing dot removed.
		{"KASPERSKY.COM", "kaspersky-brand domain kaspersky.com"},
		{"S01.Upd.Kaspersky.Com.", "kaspersky-update domain upd.kaspersky.com"},
		{"KSN-URL-GEO.kaspersky-labs.com", "kaspersky-ksn pattern ksn-*.kaspersky-labs.com"},
		{"CM.K.Kaspersky-Labs.COM", "kaspersky-update name cm.k.kaspersky-labs.com"},
		{"s01.upd.kaspersky.com..", ""}, // only one trailing dot
		// Never decoded: escaped bytes (the sensor's \DDD), raw bytes of
		// 0x7f and above, control bytes and spaces match nothing.
		{`kaspersky\000.com`, ""},
		{`a\000.kaspersky.com`, ""},
		{`www\.kaspersky.com`, ""},
		{"a\x00.kaspersky.com", ""},
		{"kaspersky.com\x00", ""},
		{"www.kaspersky.com\xff", ""},
		{"\xc3\x28.kaspersky.com", ""}, // invalid UTF-8
		{"w\u00e9b.kaspersky.com", ""}, // valid UTF-8, still not a wire name
		{"www kaspersky.com", ""},
		{"www.kaspersky.com\x7f", ""},
	}
	for _, tt := range tests {
		got := hitIDs(s.MatchName(tt.name, nil))
		var want []string
		if tt.want != "" {
			want = []string{tt.want}
		}
		if !slices.Equal(got, want) {
			t.Errorf("MatchName(%q) = %q, want %q", tt.name, got, want)
		}
	}
}

func TestMatchAddrBuiltin(t *testing.T) {
	s := builtin(t)
	tests := []struct {
		addr string
		want string
	}{
		{"77.74.176.1", "kaspersky-network-as41983 cidr 77.74.176.0/21"},
		{"77.74.183.255", "kaspersky-network-as41983 cidr 77.74.176.0/21"},
		{"77.74.184.0", ""},
		{"93.159.224.10", "kaspersky-network-as41983 cidr 93.159.224.0/21"},
		{"93.159.226.10", "kaspersky-network-as200107 cidr 93.159.226.0/24"}, // longest prefix wins
		{"93.159.231.1", "kaspersky-network-as200107 cidr 93.159.230.0/23"},
		{"37.203.129.5", "kaspersky-network-as200107-announced cidr 37.203.128.0/23"},
		{"79.133.169.139", "kaspersky-network-as200107-announced cidr 79.133.168.0/22"},
		{"::ffff:77.74.176.1", "kaspersky-network-as41983 cidr 77.74.176.0/21"},
		{"2a03:2480:68::1", "kaspersky-network-as41983 cidr 2a03:2480::/33"},
		{"2a03:2480:68::1%eth0", "kaspersky-network-as41983 cidr 2a03:2480::/33"},
		{"2a03:2480:8021::53", "kaspersky-network-as200107 cidr 2a03:2480:8021::/48"},
		{"2a03:2480:8024::53", ""},
		{"8.8.8.8", ""}, // fallback resolvers are in no rule yet
		{"1.1.1.1", ""},
		{"2001:db8::1", ""},
		{"::", ""},
		{"0.0.0.0", ""},
	}
	for _, tt := range tests {
		got := hitIDs(s.MatchAddr(netip.MustParseAddr(tt.addr), nil))
		var want []string
		if tt.want != "" {
			want = []string{tt.want}
		}
		if !slices.Equal(got, want) {
			t.Errorf("MatchAddr(%s) = %q, want %q", tt.addr, got, want)
		}
	}
	if got := s.MatchAddr(netip.Addr{}, nil); len(got) != 0 {
		t.Errorf("MatchAddr(zero Addr) = %v, want none", got)
	}
}

func TestMatchPortBuiltin(t *testing.T) {
	s := builtin(t)
	tests := []struct {
		proto uint8
		port  uint16
		want  string
	}{
		{6, 13000, "kaspersky-ksc-agent-ports port 13000/tcp"},
		{6, 14000, "kaspersky-ksc-agent-ports port 14000/tcp"},
		{17, 15000, "kaspersky-ksc-agent-ports port 15000/udp"},
		{17, 15001, "kaspersky-ksc-agent-ports port 15001/udp"},
		{6, 13295, "kaspersky-ksc-agent-ports port 13295/tcp"},
		{6, 13291, "kaspersky-ksc-console-ports port 13291/tcp"},
		{6, 13299, "kaspersky-ksc-console-ports port 13299/tcp"},
		{6, 8060, "kaspersky-ksc-package-ports port 8060/tcp"},
		{6, 8061, "kaspersky-ksc-package-ports port 8061/tcp"},
		{6, 13111, "kaspersky-ksc-ksn-proxy-ports port 13111/tcp"},
		{17, 15111, "kaspersky-ksc-ksn-proxy-ports port 15111/udp"},
		{6, 17111, "kaspersky-ksc-ksn-proxy-ports port 17111/tcp"},
		{6, 23100, "kaspersky-ksc-cloud-console-ports port 23100-23199/tcp"},
		{6, 23199, "kaspersky-ksc-cloud-console-ports port 23100-23199/tcp"},
		{6, 23750, "kaspersky-ksc-cloud-console-ports port 23700-23799/tcp"},
		{6, 29299, "kaspersky-ksc-cloud-console-ports port 29200-29299/tcp"},
		{6, 27250, "kaspersky-ksc-cloud-activation-ports port 27200-27299/tcp"},
		{6, 23200, ""},
		{6, 8080, ""}, // deliberately left out
		{6, 443, ""},
		{17, 13000, ""}, // 13000 is TCP only
		{6, 15000, ""},
		{1, 13000, ""}, // ICMP has no ports
		{6, 0, ""},
		{6, 65535, ""},
	}
	for _, tt := range tests {
		got := hitIDs(s.MatchPort(tt.proto, tt.port, nil))
		var want []string
		if tt.want != "" {
			want = []string{tt.want}
		}
		if !slices.Equal(got, want) {
			t.Errorf("MatchPort(%d, %d) = %q, want %q", tt.proto, tt.port, got, want)
		}
	}
}

// loadExample returns the built-in profile plus testdata/valid-example.yaml.
func loadExample(t testing.TB) *Set {
	t.Helper()
	s, err := Load([]string{"testdata/valid-example.yaml"}, true)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return s
}

func TestOneHitPerProfile(t *testing.T) {
	s := loadExample(t)
	tests := []struct {
		in   string
		want []string
	}{
		// Both profiles claim kaspersky.com: one hit each, in profile order.
		{"www.kaspersky.com", []string{"kaspersky-brand domain kaspersky.com", "example-brand domain kaspersky.com"}},
		{"s1.upd.kaspersky.com", []string{"kaspersky-update domain upd.kaspersky.com", "example-brand domain kaspersky.com"}},
		// Exact name beats pattern beats domain; among patterns the longest fixed part wins.
		{"cdn.example.net", []string{"example-update name cdn.example.net"}},
		{"mirror1.example.org", []string{"example-update pattern mirror*.example.org"}},
		{"m1.example.org", []string{"example-update pattern m*.example.org"}},
		{"x.example.org", []string{"example-update pattern *.example.org"}},
		{"a.x.example.org", nil}, // a pattern covers one label only
		{"example.org", nil},
		{"a.upd.example.com", []string{"example-update domain upd.example.com"}},
		{"upd2.example.com", []string{"example-brand domain example.com"}},
	}
	for _, tt := range tests {
		if got := hitIDs(s.MatchName(tt.in, nil)); !slices.Equal(got, tt.want) {
			t.Errorf("MatchName(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	addrs := []struct {
		in   string
		want []string
	}{
		{"77.74.176.9", []string{"kaspersky-network-as41983 cidr 77.74.176.0/21", "example-net cidr 77.74.176.0/24"}},
		{"192.0.2.200", []string{"example-net cidr 192.0.2.128/25"}},
		{"192.0.2.1", []string{"example-net cidr 192.0.2.0/24"}},
		{"2001:db8::1", []string{"example-net cidr 2001:db8::/32"}},
	}
	for _, tt := range addrs {
		if got := hitIDs(s.MatchAddr(netip.MustParseAddr(tt.in), nil)); !slices.Equal(got, tt.want) {
			t.Errorf("MatchAddr(%s) = %q, want %q", tt.in, got, tt.want)
		}
	}
	ports := []struct {
		proto uint8
		port  uint16
		want  []string
	}{
		{6, 13000, []string{"kaspersky-ksc-agent-ports port 13000/tcp", "example-net port 13000/tcp"}},
		{6, 13005, []string{"example-net port 13000-13010/tcp"}},
		{17, 53, []string{"example-net port 53/udp"}},
	}
	for _, tt := range ports {
		if got := hitIDs(s.MatchPort(tt.proto, tt.port, nil)); !slices.Equal(got, tt.want) {
			t.Errorf("MatchPort(%d, %d) = %q, want %q", tt.proto, tt.port, got, tt.want)
		}
	}
}

// TestMatchAppends checks that Match* append after what dst already holds
// and do not deduplicate against it.
func TestMatchAppends(t *testing.T) {
	s := builtin(t)
	dst := s.MatchName("s1.upd.kaspersky.com", nil)
	dst = s.MatchAddr(netip.MustParseAddr("77.74.176.1"), dst)
	dst = s.MatchPort(6, 13000, dst)
	dst = s.MatchName("crl.kaspersky.com", dst)
	want := []string{
		"kaspersky-update domain upd.kaspersky.com",
		"kaspersky-network-as41983 cidr 77.74.176.0/21",
		"kaspersky-ksc-agent-ports port 13000/tcp",
		"kaspersky-crl name crl.kaspersky.com",
	}
	if got := hitIDs(dst); !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestZeroAllocs(t *testing.T) {
	s := loadExample(t)
	dst := make([]Hit, 0, 8)
	names := []string{"s01.upd.kaspersky.com", "ksn-url-geo.kaspersky-labs.com", "cm.k.kaspersky-labs.com",
		"www.kaspersky.com", "www.google.com", "a.b.c.d.example.org", "mirror7.example.org"}
	for _, n := range names {
		if a := testing.AllocsPerRun(100, func() { dst = s.MatchName(n, dst[:0]) }); a != 0 {
			t.Errorf("MatchName(%q): %v allocs, want 0", n, a)
		}
	}
	for _, a := range []string{"77.74.176.1", "2a03:2480:8021::53", "8.8.8.8", "2001:db8::1", "2a03:2480:68::1%eth0"} {
		addr := netip.MustParseAddr(a)
		if n := testing.AllocsPerRun(100, func() { dst = s.MatchAddr(addr, dst[:0]) }); n != 0 {
			t.Errorf("MatchAddr(%s): %v allocs, want 0", a, n)
		}
	}
	if n := testing.AllocsPerRun(100, func() { dst = s.MatchPort(6, 13000, dst[:0]) }); n != 0 {
		t.Errorf("MatchPort: %v allocs, want 0", n)
	}
}

func TestReason(t *testing.T) {
	r := &Rule{ID: "x"}
	tests := []struct {
		h    Hit
		want string
	}{
		{Hit{Rule: r, Kind: KindDomain, Indicator: "upd.kaspersky.com"}, `domain suffix "upd.kaspersky.com"`},
		{Hit{Rule: r, Kind: KindName, Indicator: "cm.k.kaspersky-labs.com"}, `exact name "cm.k.kaspersky-labs.com"`},
		{Hit{Rule: r, Kind: KindPattern, Indicator: "ksn-*.kaspersky-labs.com"}, `name pattern "ksn-*.kaspersky-labs.com"`},
		{Hit{Rule: r, Kind: KindCIDR, Indicator: "77.74.176.0/21"}, `address in 77.74.176.0/21`},
		{Hit{Rule: r, Kind: KindPort, Indicator: "13000/tcp"}, `port 13000/tcp`},
		{Hit{Rule: r, Kind: KindPort, Indicator: "27200-27299/tcp"}, `port in 27200-27299/tcp`},
	}
	for _, tt := range tests {
		if got := tt.h.Reason(); got != tt.want {
			t.Errorf("Reason(%v) = %s, want %s", tt.h, got, tt.want)
		}
	}
}

func TestSeverityText(t *testing.T) {
	for s := SeverityInfo; s <= SeverityCritical; s++ {
		b, err := s.MarshalText()
		if err != nil {
			t.Fatalf("%d.MarshalText: %v", s, err)
		}
		if string(b) != s.String() {
			t.Errorf("MarshalText = %s, String = %s", b, s)
		}
		var back Severity
		if err := back.UnmarshalText(b); err != nil || back != s {
			t.Errorf("UnmarshalText(%s) = %v, %v; want %v", b, back, err, s)
		}
	}
	if _, err := Severity(0).MarshalText(); err == nil {
		t.Error("MarshalText(0) succeeded, want error")
	}
	if got := Severity(9).String(); got != "Severity(9)" {
		t.Errorf("String(9) = %s", got)
	}
	var s Severity
	if err := s.UnmarshalText([]byte("High")); err == nil {
		t.Error(`UnmarshalText("High") succeeded, want error`)
	}
	b, err := json.Marshal(map[string]Severity{"s": SeverityHigh})
	if err != nil || string(b) != `{"s":"high"}` {
		t.Errorf("json = %s, %v", b, err)
	}
	if !SeverityInfo.Valid() || Severity(0).Valid() || SeverityLow >= SeverityHigh {
		t.Error("severity ordering or validity is wrong")
	}
}

func TestCategories(t *testing.T) {
	want := []Category{"update", "ksn-telemetry", "activation", "certificate", "management", "portal", "brand", "network", "fallback-dns", "country"}
	if got := Categories(); !slices.Equal(got, want) {
		t.Errorf("Categories() = %q, want %q", got, want)
	}
	if !CategoryFallbackDNS.Valid() || !CategoryCountry.Valid() || Category("geo").Valid() {
		t.Error("category validity is wrong")
	}
}

// TestSetImmutable checks that the slices returned by a Set are copies.
func TestSetImmutable(t *testing.T) {
	s := builtin(t)
	rs := s.Rules()
	rs[0] = nil
	if s.Rules()[0] == nil {
		t.Error("Rules() shares its backing array with the Set")
	}
	ps := s.Profiles()
	ps[0] = nil
	if s.Profiles()[0] == nil {
		t.Error("Profiles() shares its backing array with the Set")
	}
}

func TestEmptySet(t *testing.T) {
	s, err := Load(nil, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Profiles()) != 0 || len(s.MatchName("kaspersky.com", nil)) != 0 ||
		len(s.MatchAddr(netip.MustParseAddr("77.74.176.1"), nil)) != 0 || len(s.MatchPort(6, 13000, nil)) != 0 {
		t.Error("empty set matched something")
	}
}

// TestBenchNamesMatch checks the names the shared benchmark generator uses
// (shared/bench/gen) when that tree is present: Kaspersky-like names must
// hit, decoys must not.
func TestBenchNamesMatch(t *testing.T) {
	s := builtin(t)
	for _, n := range []string{"ksn-file-geo.kaspersky-labs.com", "ksn-info-geo.kaspersky-labs.com",
		"dc1-file.ksn.kaspersky-labs.com", "ds.kaspersky.com", "click.kaspersky.com", "activation-v2.kaspersky.com",
		"dnl-07.geo.kaspersky.com"} {
		if len(s.MatchName(n, nil)) != 1 {
			t.Errorf("MatchName(%q): no hit", n)
		}
	}
	for _, n := range []string{"notkaspersky.com", "www.notkaspersky.com", "kaspersky.com.example",
		"ksn.kaspersky-labs.com.example", "mykaspersky-labs.com"} {
		if h := s.MatchName(n, nil); len(h) != 0 {
			t.Errorf("MatchName(%q) = %v, want none", n, hitIDs(h))
		}
	}
}

// TestImports enforces that this package uses only the standard library,
// yaml.v3, bart (the prefix trie) and x/net/idna (U-labels in rules files), never another package of the module
// (DESIGN.md: leaf library).
func TestImports(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		pf, err := goparser.ParseFile(token.NewFileSet(), f, data, goparser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, is := range pf.Imports {
			imp, _ := strconv.Unquote(is.Path.Value)
			first, _, _ := strings.Cut(imp, "/")
			if imp != "go.yaml.in/yaml/v3" && imp != "github.com/gaissmai/bart" && imp != "golang.org/x/net/idna" && strings.Contains(first, ".") {
				t.Errorf("%s imports %q; rules may import only the standard library, go.yaml.in/yaml/v3, github.com/gaissmai/bart and golang.org/x/net/idna", f, imp)
			}
		}
	}
}

// naiveAddr is the reference for MatchAddr: scan every prefix, keep the
// longest per profile, in profile order.
func naiveAddr(s *Set, a netip.Addr) []string {
	a = a.Unmap()
	var out []string
	for _, p := range s.Profiles() {
		best, bits := "", -1
		for _, r := range s.Rules() {
			if r.Profile != p {
				continue
			}
			for _, c := range r.Match.CIDRs {
				if c.Contains(a) && c.Bits() > bits {
					best, bits = r.ID+" cidr "+c.String(), c.Bits()
				}
			}
		}
		if bits >= 0 {
			out = append(out, best)
		}
	}
	return out
}

func TestMatchAddrAgainstNaive(t *testing.T) {
	mk := func(id string, cidrs ...string) ParsedFile {
		p := &Profile{ID: id, File: id + ".yaml", Sources: map[string]Source{"S": {"t", "https://example.com/"}}}
		var rules []*Rule
		for i, c := range cidrs {
			rules = append(rules, &Rule{ID: id + "-" + strconv.Itoa(i), Profile: p, Category: CategoryNetwork,
				Severity: SeverityLow, Confidence: ConfidenceCommunity, Sources: []string{"S"},
				Match: Match{CIDRs: []netip.Prefix{netip.MustParsePrefix(c)}}})
		}
		return ParsedFile{p, rules}
	}
	s, err := Compile(
		mk("a", "10.0.0.0/8", "10.1.0.0/16", "10.1.2.0/24", "10.1.2.128/25", "10.1.2.255/32", "255.255.255.0/24", "0.0.0.0/1",
			"2001:db8::/32", "2001:db8:0:1::/64", "2001:db8:8000::/33", "ffff:ffff:ffff:ffff::/64", "ffff::/16", "::/1"),
		mk("b", "10.1.0.0/16", "10.200.0.0/13", "128.0.0.0/1", "2001:db8::/48", "8000::/1", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ff00/120"),
	)
	if err != nil {
		t.Fatal(err)
	}
	for _, set := range []*Set{s, builtin(t), loadExample(t)} {
		checkAddrs(t, set)
	}
}

func checkAddrs(t *testing.T, s *Set) {
	var addrs []netip.Addr
	for _, r := range s.Rules() {
		for _, c := range r.Match.CIDRs {
			first := c.Addr()
			last := netipLast(c)
			addrs = append(addrs, first, first.Prev(), last, last.Next())
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		var b4 [4]byte
		var b16 [16]byte
		binary.BigEndian.PutUint32(b4[:], rng.Uint32())
		binary.BigEndian.PutUint64(b16[:8], rng.Uint64())
		binary.BigEndian.PutUint64(b16[8:], rng.Uint64())
		switch rng.IntN(3) {
		case 0: // dense areas
			b4[0] = 10
			b16[0], b16[1], b16[2], b16[3] = 0x20, 0x01, 0x0d, 0xb8
		case 1:
			b4[0], b4[1] = 77, 74
			b16[0], b16[1], b16[2], b16[3] = 0x2a, 0x03, 0x24, 0x80
		}
		addrs = append(addrs, netip.AddrFrom4(b4), netip.AddrFrom16(b16))
	}
	for _, a := range addrs {
		if !a.IsValid() {
			continue
		}
		got, want := hitIDs(s.MatchAddr(a, nil)), naiveAddr(s, a)
		if !slices.Equal(got, want) {
			t.Errorf("MatchAddr(%s) = %q, want %q", a, got, want)
		}
	}
}

// netipLast returns the last address of a prefix.
func netipLast(p netip.Prefix) netip.Addr {
	b := p.Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}
