package rules

import (
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func BenchmarkMatchName(b *testing.B) {
	s := builtin(b)
	for _, bm := range []struct{ label, name string }{
		{"hit-domain", "s01.upd.kaspersky.com"},
		{"hit-pattern", "ksn-url-geo.kaspersky-labs.com"},
		{"hit-name", "cm.k.kaspersky-labs.com"},
		{"miss-google", "www.google.com"},
		{"miss-deep", "a.b.c.d.example.org"},
		{"miss-lookalike", "kaspersky.com.evil.net"},
	} {
		b.Run(bm.label, func(b *testing.B) {
			dst := make([]Hit, 0, 4)
			b.ReportAllocs()
			for b.Loop() {
				dst = s.MatchName(bm.name, dst[:0])
			}
		})
	}
}

func BenchmarkMatchAddr(b *testing.B) {
	s := builtin(b)
	for _, bm := range []struct{ label, addr string }{
		{"hit-v4", "77.74.176.1"},
		{"miss-v4", "8.8.8.8"},
		{"hit-v6", "2a03:2480:8021::53"},
		{"miss-v6", "2001:4860:4860::8888"},
	} {
		b.Run(bm.label, func(b *testing.B) {
			a := netip.MustParseAddr(bm.addr)
			dst := make([]Hit, 0, 4)
			b.ReportAllocs()
			for b.Loop() {
				dst = s.MatchAddr(a, dst[:0])
			}
		})
	}
}

func BenchmarkMatchPort(b *testing.B) {
	s := builtin(b)
	for _, bm := range []struct {
		label string
		port  uint16
	}{{"hit", 13000}, {"hit-range", 27250}, {"miss", 443}} {
		b.Run(bm.label, func(b *testing.B) {
			dst := make([]Hit, 0, 4)
			b.ReportAllocs()
			for b.Loop() {
				dst = s.MatchPort(ProtoTCP, bm.port, dst[:0])
			}
		})
	}
}

func BenchmarkParseBuiltin(b *testing.B) {
	data, err := builtinFS.ReadFile("builtin/kaspersky.yaml")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := Parse("builtin:kaspersky.yaml", data); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkMatchContact(b *testing.B) {
	s, err := Load([]string{"testdata/valid-conditions.yaml"}, true)
	if err != nil {
		b.Fatal(err)
	}
	for _, bm := range []struct {
		label string
		c     Contact
	}{
		// Everything known, nothing matches: the common case on a tap.
		{"miss", Contact{Name: "www.google.com", Addr: netip.MustParseAddr("142.250.74.36"), Port: 443, Proto: ProtoTCP,
			Country: "US", ASN: 15169, JA4: "t13d1516h2_8daaf6152771_02713d6af862",
			UserAgent: "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"}},
		{"miss-name-only", Contact{Name: "www.google.com"}},
		{"hit-name", Contact{Name: "s01.upd.kaspersky.com", Addr: netip.MustParseAddr("203.0.113.9"), Port: 443, Proto: ProtoTCP, Country: "NL", ASN: 64511}},
		{"hit-fallback-dns", Contact{Name: "dnl-01.geo.kaspersky.com", Addr: netip.MustParseAddr("8.8.8.8"), Port: 53, Proto: ProtoUDP, Country: "US", ASN: 15169}},
		{"hit-country-asn", Contact{Addr: netip.MustParseAddr("77.74.176.1"), Port: 443, Proto: ProtoTCP, Country: "RU", ASN: 200107}},
		{"hit-user-agent", Contact{UserAgent: "Mozilla/5.0 (compatible; Kaspersky Lab update)", Port: 80, Proto: ProtoTCP}},
	} {
		b.Run(bm.label, func(b *testing.B) {
			dst := make([]Hit, 0, 8)
			b.ReportAllocs()
			for b.Loop() {
				dst = s.Match(&bm.c, dst[:0])
			}
		})
	}
}

// BenchmarkUserAgentGlob: a typical User-Agent, and an adversarial one
// (near-misses everywhere), whose cost stays linear in its length.
func BenchmarkUserAgentGlob(b *testing.B) {
	for _, bm := range []struct{ label, pat, in string }{
		{"typical", "*Kaspersky*", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"},
		{"adversarial-100k", "*" + strings.Repeat("a", 200) + "b*" + strings.Repeat("a", 50) + "c*", strings.Repeat("a", 100000)},
	} {
		b.Run(bm.label, func(b *testing.B) {
			g := compileGlob(bm.pat)
			b.SetBytes(int64(len(bm.in)))
			b.ReportAllocs()
			for b.Loop() {
				g.match(bm.in)
			}
		})
	}
}

// BenchmarkMatchAddr1M: a million random IPv4 prefixes (/16 to /32) of one
// profile, looked up with random addresses (about 84% hit).
func BenchmarkMatchAddr1M(b *testing.B) {
	rng := rand.New(rand.NewPCG(9, 9))
	p := &Profile{ID: "big", File: "big.yaml", Sources: map[string]Source{"S": {"t", "https://example.com/"}}}
	seen := map[netip.Prefix]bool{}
	var cidrs []netip.Prefix
	for len(cidrs) < 1_000_000 {
		v := rng.Uint32()
		pfx := netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}), 16+rng.IntN(17)).Masked()
		if !seen[pfx] {
			seen[pfx] = true
			cidrs = append(cidrs, pfx)
		}
	}
	r := &Rule{ID: "big-1", Profile: p, Category: CategoryNetwork, Severity: SeverityLow, Confidence: ConfidenceCommunity,
		Sources: []string{"S"}, Match: Match{CIDRs: cidrs}}
	start := time.Now()
	s, err := Compile(ParsedFile{p, []*Rule{r}})
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("compiled 1M prefixes in %v", time.Since(start))
	addrs := make([]netip.Addr, 4096)
	for i := range addrs {
		v := rng.Uint32()
		addrs[i] = netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
	}
	dst := make([]Hit, 0, 4)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		dst = s.MatchAddr(addrs[i&4095], dst[:0])
		i++
	}
}
