package extract

import (
	"bytes"
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// scanSeeds are messages as resolvers send them (ScanDNS reads them) and
// near misses (it must leave them to ParseDNS).
func scanSeeds(tb testing.TB) []struct {
	name string
	data []byte
	want bool
} {
	rr := func(s string) dns.RR {
		r, err := dns.NewRR(s)
		if err != nil {
			tb.Fatal(err)
		}
		return r
	}
	msg := func(q string, qtype uint16, reply bool, edns bool, an, ns []string) []byte {
		m := new(dns.Msg)
		m.SetQuestion(q, qtype)
		m.Id = 0x3a3a
		if reply {
			m = m.SetReply(m)
			m.Compress = true
		}
		for _, s := range an {
			m.Answer = append(m.Answer, rr(s))
		}
		for _, s := range ns {
			m.Ns = append(m.Ns, rr(s))
		}
		if edns {
			m.SetEdns0(1232, false)
		}
		b, err := m.Pack()
		if err != nil {
			tb.Fatal(err)
		}
		return b
	}
	chain := []string{
		"WWW.example.com. 300 IN CNAME edge-1.cdn.example.net.",
		"edge-1.cdn.example.net. 60 IN CNAME e_2.cdn.example.net.",
		"e_2.cdn.example.net. 60 IN A 192.0.2.10",
		"e_2.cdn.example.net. 60 IN A 192.0.2.11",
	}
	soa := []string{"example.com. 900 IN SOA ns1.example.com. hostmaster.example.com. 2025030301 7200 3600 1209600 300"}
	cut := func(b []byte, n int) []byte { return b[:len(b)-n] }
	setCount := func(b []byte, i int, n uint16) []byte {
		b = bytes.Clone(b)
		b[4+2*i], b[5+2*i] = byte(n>>8), byte(n)
		return b
	}
	answer := msg("WWW.example.com.", dns.TypeA, true, true, chain, nil)
	seeds := []struct {
		name string
		data []byte
		want bool
	}{
		{"query", msg("dnl-01.geo.kaspersky.com.", dns.TypeA, false, false, nil, nil), true},
		{"query-edns", msg("dnl-01.geo.kaspersky.com.", dns.TypeAAAA, false, true, nil, nil), true},
		{"answer-cname-chain", answer, true},
		{"answer-aaaa", msg("v6.example.", dns.TypeAAAA, true, false, []string{"v6.example. 60 IN AAAA 2001:db8::1", "v6.example. 60 IN AAAA ::ffff:192.0.2.1"}, nil), true},
		{"nxdomain-soa", msg("nx.example.com.", dns.TypeA, true, true, nil, soa), true},
		{"root-query", msg(".", dns.TypeNS, false, false, nil, nil), true},
		{"counts-lie", setCount(answer, 2, 9), true}, // miekg/dns stops at the end
		{"https-record", msg("h.example.", dns.TypeHTTPS, true, false, []string{"h.example. 60 IN HTTPS 1 . alpn=h2"}, nil), false},
		{"escaped-name", msg(`a\.b.example.`, dns.TypeA, false, false, nil, nil), false},
		{"space-in-answer-owner", msg("a.example.", dns.TypeA, true, false, []string{`a.example. 60 IN CNAME b\032c.example.`}, nil), false},
		{"odd-authority-name", msg("a.example.", dns.TypeA, true, false, nil, []string{`example. 60 IN SOA n\@s. h\(m. 1 2 3 4 5`}), true},
		{"two-questions", setCount(msg("a.example.", dns.TypeA, false, false, nil, nil), 0, 2), false},
		{"cut-in-record", cut(answer, 3), false},
		{"cut-in-question", cut(msg("a.example.", dns.TypeA, false, false, nil, nil), 2), false},
		{"opt-with-option", func() []byte {
			m := new(dns.Msg)
			m.SetQuestion("a.example.", dns.TypeA)
			o := &dns.OPT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT}}
			o.Option = append(o.Option, &dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: "0102030405060708"})
			m.Extra = append(m.Extra, o)
			b, _ := m.Pack()
			return b
		}(), false},
		{"a-wrong-length", func() []byte {
			b := msg("a.example.", dns.TypeA, true, false, []string{"a.example. 60 IN A 192.0.2.1"}, nil)
			b = append(b, 0) // the record says 5 bytes
			b[len(b)-6]++
			return b
		}(), false},
	}
	for _, s := range dnsFuzzSeeds(tb) {
		seeds = append(seeds, struct {
			name string
			data []byte
			want bool
		}{"fuzz-" + s.name, s.data, s.name == "query-a-edns" || s.name == "answer-opt-pseudo-record"})
	}
	return seeds
}

// TestScanDNS: ScanDNS reads what it should and agrees with ParseDNS
// there; it leaves the rest.
func TestScanDNS(t *testing.T) {
	var s DNSScan
	for _, c := range scanSeeds(t) {
		got := ScanDNS(c.data, &s)
		if got != c.want {
			t.Errorf("%s: ScanDNS = %v, want %v", c.name, got, c.want)
		}
		if got {
			if err := sameAsParse(c.data, &s); err != nil {
				t.Errorf("%s: %v", c.name, err)
			}
		}
	}
	// What the chain reads as.
	seeds := scanSeeds(t)
	if !ScanDNS(seeds[2].data, &s) {
		t.Fatal("chain not scanned")
	}
	var got []string
	for _, a := range s.Answers {
		got = append(got, fmt.Sprintf("%d %s %s %v", a.Type, a.Name, a.Target, a.Addr))
	}
	want := "5 www.example.com edge-1.cdn.example.net invalid IP|5 edge-1.cdn.example.net e_2.cdn.example.net invalid IP|1 e_2.cdn.example.net  192.0.2.10|1 e_2.cdn.example.net  192.0.2.11"
	if string(s.QName) != "www.example.com" || !s.Response || strings.Join(got, "|") != want {
		t.Errorf("chain read as %q %v\n%s\nwant\n%s", s.QName, s.Response, strings.Join(got, "|"), want)
	}
}

// sameAsParse checks what ScanDNS read against ParseDNS, as the worker
// relies on it: a whole message, the same question name, answer owners,
// CNAME targets and addresses.
func sameAsParse(p []byte, s *DNSScan) error {
	var m dns.Msg
	partial, err := ParseDNS(p, &m)
	if err != nil || partial {
		return fmt.Errorf("scanned, but ParseDNS: partial %v, err %v", partial, err)
	}
	if len(m.Question) != 1 || DNSName(m.Question[0].Name) != string(s.QName) {
		return fmt.Errorf("question %v, scanned %q", m.Question, s.QName)
	}
	if m.Response != s.Response {
		return fmt.Errorf("response %v, scanned %v", m.Response, s.Response)
	}
	if len(m.Answer) != len(s.Answers) {
		return fmt.Errorf("%d answers, scanned %d", len(m.Answer), len(s.Answers))
	}
	for i, rr := range m.Answer {
		a := s.Answers[i]
		h := rr.Header()
		if h.Rrtype != a.Type || DNSName(h.Name) != string(a.Name) {
			return fmt.Errorf("answer %d: %d %q, scanned %d %q", i, h.Rrtype, DNSName(h.Name), a.Type, a.Name)
		}
		var target string
		var addr netip.Addr
		switch r := rr.(type) {
		case *dns.CNAME:
			target = DNSName(r.Target)
		case *dns.A:
			addr, _ = netip.AddrFromSlice(r.A)
		case *dns.AAAA:
			addr, _ = netip.AddrFromSlice(r.AAAA)
		}
		if target != string(a.Target) || addr.Unmap() != a.Addr {
			return fmt.Errorf("answer %d: %q %v, scanned %q %v", i, target, addr.Unmap(), a.Target, a.Addr)
		}
	}
	return nil
}

// FuzzScanDNS: whatever ScanDNS reads, ParseDNS unpacks in full to the
// same names and addresses (sameAsParse). The worker skips ParseDNS for
// such messages when nothing in them matches, so a difference would be a
// miss.
func FuzzScanDNS(f *testing.F) {
	for _, s := range scanSeeds(f) {
		f.Add(s.data)
	}
	f.Fuzz(func(t *testing.T, p []byte) {
		var s DNSScan
		if ScanDNS(p, &s) {
			if err := sameAsParse(p, &s); err != nil {
				t.Fatal(err)
			}
		}
	})
}

func BenchmarkScanDNS(b *testing.B) {
	for _, c := range scanSeeds(b)[:5] {
		b.Run(c.name, func(b *testing.B) {
			var s DNSScan
			b.ReportAllocs()
			for b.Loop() {
				if !ScanDNS(c.data, &s) {
					b.Fatal("not scanned")
				}
			}
		})
		b.Run(c.name+"/ParseDNS", func(b *testing.B) {
			var m dns.Msg
			b.ReportAllocs()
			for b.Loop() {
				ParseDNS(c.data, &m)
			}
		})
	}
}
