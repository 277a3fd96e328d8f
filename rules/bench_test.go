package rules

import (
	"net/netip"
	"testing"
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
