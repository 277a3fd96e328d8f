package rules

import (
	"math/rand/v2"
	"net/netip"
	"runtime"
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

// heapInUse returns the live heap after a full collection.
func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// feedLabel returns a random label of n lower-case letters and digits
// (digits rarer, never first), like the registrable labels of real feeds.
func feedLabel(rng *rand.Rand, n int) string {
	const letters = "abcdefghijklmnopqrstuvwxyz"
	const alnum = letters + letters + "0123456789-"
	b := make([]byte, n)
	for i := range b {
		switch {
		case i == 0 || i == n-1:
			b[i] = letters[rng.IntN(len(letters))]
		default:
			b[i] = alnum[rng.IntN(len(alnum))]
		}
	}
	return string(b)
}

// genFeed returns n distinct names in the shape of a domain block list,
// deterministically: registrable domains (a 3-16 letter label under a
// weighted TLD, some under two-label public suffixes), a third of them with
// one or two host labels in front, and 4000 names under a handful of long
// shared suffixes (CDN and cloud-style names). About 70% are returned in
// domains (suffix rules), the rest in names (exact).
func genFeed(n int) (domains, names []string) {
	rng := rand.New(rand.NewPCG(2026, 11))
	tlds := []string{"com", "com", "com", "com", "com", "net", "net", "org", "ru", "ru", "de", "info", "xyz", "top",
		"co.uk", "com.br", "cn", "io", "online", "site", "club", "co.jp", "com.au", "kz", "by", "ua", "fr", "it"}
	shared := []string{"s3.dualstack.eu-central-1.amazonaws-example.com", "edge-cache.global.prod.example-cdn.net",
		"blob.core.windows-example.net", "storage.googleapis-example.com", "users.dynamic-dns-provider.example.org"}
	hosts := []string{"www", "cdn", "api", "mail", "static", "update", "dl", "m", "app", "img"}
	seen := make(map[string]bool, n)
	add := func(name string) {
		if seen[name] {
			return
		}
		seen[name] = true
		if rng.IntN(10) < 7 {
			domains = append(domains, name)
		} else {
			names = append(names, name)
		}
	}
	for i := 0; len(seen) < 4000; i++ {
		add(feedLabel(rng, 6+rng.IntN(12)) + "." + shared[i%len(shared)])
	}
	for len(seen) < n {
		name := feedLabel(rng, 3+rng.IntN(14)) + "." + tlds[rng.IntN(len(tlds))]
		switch r := rng.IntN(6); {
		case r < 2:
			name = hosts[rng.IntN(len(hosts))] + "." + name
		case r == 2:
			name = feedLabel(rng, 2+rng.IntN(10)) + "." + hosts[rng.IntN(len(hosts))] + "." + name
		}
		add(name)
	}
	return domains, names
}

// BenchmarkMatchNameFeed1M: a million-name feed (one profile, one rule
// with about 700k domain suffixes and 300k exact names), looked up with
// misses (names of the same shape that are not in the feed nor under one
// of its domains) and hits (a host label in front of a feed domain, or a
// feed name exactly). "miss" and "hit" cycle through 4096 distinct names,
// as a network's traffic repeats its names (the table's lines in use stay
// in cache); "miss-cold" and "hit-cold" through 65536, so that nearly
// every look-up misses the caches. bytes/domain is the heap the compiled
// Set adds per feed entry; feed-bytes/domain what the rule's strings take
// themselves (a Rule loaded from YAML holds them, and the Set refers to
// them).
func BenchmarkMatchNameFeed1M(b *testing.B) {
	const n = 1_000_000
	base := heapInUse()
	domains, names := genFeed(n)
	feed := float64(heapInUse()-base) / n
	p := &Profile{ID: "feed", File: "feed.yaml", Sources: map[string]Source{"S": {"t", "https://example.com/"}}}
	r := &Rule{ID: "feed-1", Profile: p, Category: CategoryBrand, Severity: SeverityLow, Confidence: ConfidenceCommunity,
		Sources: []string{"S"}, Match: Match{Domains: domains, Names: names}}
	before := heapInUse()
	start := time.Now()
	s, err := Compile(ParsedFile{p, []*Rule{r}})
	if err != nil {
		b.Fatal(err)
	}
	took := time.Since(start)
	perDomain := float64(heapInUse()-before) / n
	b.Logf("compiled %d names in %v: %.1f bytes/domain in the Set, %.1f in the feed's strings", n, took, perDomain, feed)

	rng := rand.New(rand.NewPCG(7, 7))
	var hits, misses []string
	for len(hits) < 1<<16 {
		if rng.IntN(2) == 0 {
			hits = append(hits, "www."+domains[rng.IntN(len(domains))])
		} else {
			hits = append(hits, names[rng.IntN(len(names))])
		}
	}
	for len(misses) < 1<<16 {
		name := "www." + feedLabel(rng, 3+rng.IntN(14)) + ".com"
		if len(s.MatchName(name, nil)) == 0 {
			misses = append(misses, name)
		}
	}
	// The names looked up lie side by side, as they would in the packets
	// the sensor decodes, not among the feed's million strings (half the
	// hits are the feed's own names): the cost measured is the Set's, not
	// that of reaching the benchmark's input.
	hits, misses = packed(hits), packed(misses)
	for _, bm := range []struct {
		label string
		names []string
		want  int
	}{{"miss", misses[:4096], 0}, {"hit", hits[:4096], 1}, {"miss-cold", misses, 0}, {"hit-cold", hits, 1}} {
		for _, name := range bm.names[:100] {
			if got := len(s.MatchName(name, nil)); got != bm.want {
				b.Fatalf("MatchName(%q): %d hits, want %d", name, got, bm.want)
			}
		}
		b.Run(bm.label, func(b *testing.B) {
			dst := make([]Hit, 0, 4)
			mask := len(bm.names) - 1
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				dst = s.MatchName(bm.names[i&mask], dst[:0])
				i++
			}
			b.ReportMetric(perDomain, "bytes/domain")
			b.ReportMetric(feed, "feed-bytes/domain")
		})
	}
	runtime.KeepAlive(s)
}

// packed returns a copy of names whose bytes are in one buffer.
func packed(names []string) []string {
	var b strings.Builder
	for _, n := range names {
		b.WriteString(n)
	}
	all, out := b.String(), make([]string, len(names))
	for i, off := 0, 0; i < len(names); i++ {
		out[i] = all[off : off+len(names[i])]
		off += len(names[i])
	}
	return out
}

// BenchmarkMatchAddrFeed1M: a million random IPv4 prefixes (/16 to /32) of
// one profile, looked up with random addresses (about 84% hit), and with
// addresses that miss. bytes/prefix is the heap the compiled Set adds per
// prefix.
func BenchmarkMatchAddrFeed1M(b *testing.B) {
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
	seen = nil
	r := &Rule{ID: "big-1", Profile: p, Category: CategoryNetwork, Severity: SeverityLow, Confidence: ConfidenceCommunity,
		Sources: []string{"S"}, Match: Match{CIDRs: cidrs}}
	before := heapInUse()
	start := time.Now()
	s, err := Compile(ParsedFile{p, []*Rule{r}})
	if err != nil {
		b.Fatal(err)
	}
	took := time.Since(start)
	perPrefix := float64(heapInUse()-before) / float64(len(cidrs))
	b.Logf("compiled 1M prefixes in %v: %.1f bytes/prefix", took, perPrefix)
	var any, misses []netip.Addr
	for len(any) < 4096 || len(misses) < 4096 {
		v := rng.Uint32()
		a := netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
		if len(any) < 4096 {
			any = append(any, a)
		}
		if len(misses) < 4096 && len(s.MatchAddr(a, nil)) == 0 {
			misses = append(misses, a)
		}
	}
	for _, bm := range []struct {
		label string
		addrs []netip.Addr
	}{{"random", any}, {"miss", misses}} {
		b.Run(bm.label, func(b *testing.B) {
			dst := make([]Hit, 0, 4)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				dst = s.MatchAddr(bm.addrs[i&4095], dst[:0])
				i++
			}
			b.ReportMetric(perPrefix, "bytes/prefix")
		})
	}
	runtime.KeepAlive(s)
}
