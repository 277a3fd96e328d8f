package extract

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"unicode/utf8"

	"github.com/miekg/dns"
)

// FuzzParseDNS feeds ParseDNS arbitrary payloads, as a DNS port on the wire
// does. Beyond not panicking:
//   - an error wraps ErrNotDNS and is never partial; a partial message has
//     a question;
//   - no section holds a nil record (the pipeline calls rr.Header());
//   - every name the pipeline outputs (question, answer owner, answer data
//     through DNSName/DNSRData) is printable ASCII, and so is the question
//     once escaped by AppendName;
//   - the parsed message packs without panicking, and a whole message packs
//     to bytes whose question parses back the same.
//
// The seed corpus is testdata/fuzz/FuzzParseDNS; the files named after
// dnsFuzzSeeds are written by TestDNSFuzzSeeds with PHONEHOME_WRITE_FUZZ_SEEDS=1.
func FuzzParseDNS(f *testing.F) {
	f.Fuzz(func(t *testing.T, p []byte) {
		var m dns.Msg
		partial, err := ParseDNS(p, &m)
		if err != nil {
			if partial {
				t.Fatalf("partial with error %v", err)
			}
			if !errors.Is(err, ErrNotDNS) {
				t.Fatalf("error %v does not wrap ErrNotDNS", err)
			}
			return
		}
		if partial && len(m.Question) == 0 {
			t.Fatal("partial message without a question")
		}
		for _, q := range m.Question {
			checkDNSName(t, "question", q.Name)
		}
		for i, sec := range [][]dns.RR{m.Answer, m.Ns, m.Extra} {
			for j, rr := range sec {
				if rr == nil || rr.Header() == nil {
					t.Fatalf("section %d record %d is nil", i, j)
				}
			}
		}
		for _, rr := range m.Answer {
			checkDNSName(t, "answer owner", rr.Header().Name)
			checkDNSRData(t, rr)
		}
		packed, err := m.Pack()
		if err != nil || partial {
			return
		}
		// miekg/dns unpacks some records it cannot pack back (an NSEC3
		// whose salt is shorter than its length says): the records may
		// then fail to parse, the question may not.
		var again dns.Msg
		if _, err := ParseDNS(packed, &again); err != nil {
			if len(m.Question) > 0 {
				t.Fatalf("repacked message does not parse: %v\npacked %q", err, packed)
			}
			return
		}
		if !slices.Equal(again.Question, m.Question) {
			t.Fatalf("question changed on repacking: %v -> %v", m.Question, again.Question)
		}
	})
}

// checkDNSName checks a name from miekg/dns as the pipeline uses it: raw
// through DNSName into alerts, escaped by AppendName elsewhere.
func checkDNSName(t *testing.T, what, name string) {
	t.Helper()
	if n := DNSName(name); !printableASCII(n) {
		t.Errorf("%s %q: DNSName gives non-printable %q", what, name, n)
	}
	esc := AppendName(nil, []byte(name))
	if !utf8.Valid(esc) {
		t.Errorf("%s %q: escaped name is not UTF-8: %q", what, name, esc)
	}
	for _, c := range esc {
		if c < 0x20 || c == 0x7f {
			t.Errorf("%s %q: escaped name holds %#x: %q", what, name, c, esc)
			break
		}
	}
}

// strictRData extends the printable check of DNSRData to every record
// type. It was off while DNSRData kept the tab-separated header of RFC 3597
// records (corpus file rdata-unknown-type-atma) and printed an OPT
// pseudo-record in the answer section as a multi-line comment
// (answer-opt-pseudo-record); both are fixed.
var strictRData = true // DNSRData now handles both

// checkDNSRData checks the answer data as alerts carry it: printable ASCII
// for the types the pipeline matches on, valid UTF-8 for the rest.
func checkDNSRData(t *testing.T, rr dns.RR) {
	t.Helper()
	d := DNSRData(rr)
	switch rr.(type) {
	case *dns.A, *dns.AAAA, *dns.CNAME, *dns.DNAME, *dns.NS, *dns.PTR:
	default:
		if !strictRData {
			if !utf8.ValidString(d) {
				t.Errorf("answer data of %T is not UTF-8: %q", rr, d)
			}
			return
		}
	}
	if !printableASCII(d) {
		t.Errorf("answer data of %T not printable: %q", rr, d)
	}
}

// printableASCII reports whether s holds only 0x20..0x7e.
func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// dnsFuzzSeeds are the named seeds of FuzzParseDNS with what ParseDNS
// makes of them.
func dnsFuzzSeeds(tb testing.TB) []dnsSeed {
	pack := func(m *dns.Msg) []byte {
		b, err := m.Pack()
		if err != nil {
			tb.Fatal(err)
		}
		return b
	}
	rr := func(s string) dns.RR {
		r, err := dns.NewRR(s)
		if err != nil {
			tb.Fatal(err)
		}
		return r
	}

	query := new(dns.Msg)
	query.SetQuestion("dnl-01.geo.kaspersky.com.", dns.TypeA)
	query.Id = 0x1f2e
	query.SetEdns0(1232, false)

	answer := new(dns.Msg)
	answer.SetQuestion("www.Example.COM.", dns.TypeHTTPS)
	answer.Id = 0x4a5b
	answer = answer.SetReply(answer)
	answer.Compress = true
	answer.Answer = []dns.RR{
		rr("www.Example.COM. 300 IN CNAME edge.example.net."),
		rr("edge.example.net. 60 IN A 192.0.2.10"),
		rr("edge.example.net. 60 IN AAAA 2001:db8::10"),
	}
	https := &dns.HTTPS{SVCB: dns.SVCB{
		Hdr:      dns.RR_Header{Name: "edge.example.net.", Rrtype: dns.TypeHTTPS, Class: dns.ClassINET, Ttl: 60},
		Priority: 1,
		Target:   ".",
		Value: []dns.SVCBKeyValue{
			&dns.SVCBAlpn{Alpn: []string{"h3", "h2"}},
			&dns.SVCBIPv4Hint{Hint: []net.IP{net.ParseIP("192.0.2.10").To4()}},
			&dns.SVCBECHConfig{ECH: vec16(echConfig(7, "public.example.net", nil))},
			&dns.SVCBIPv6Hint{Hint: []net.IP{net.ParseIP("2001:db8::10")}},
		},
	}}
	answer.Answer = append(answer.Answer, https)
	answer.Ns = []dns.RR{rr("example.net. 3600 IN NS ns1.example.net.")}
	answer.Extra = []dns.RR{rr("ns1.example.net. 3600 IN A 192.0.2.53")}
	answerBytes := pack(answer)

	// An mDNS announcement: PTR, SRV, TXT with odd bytes, and a name with
	// a space, a dot and control bytes inside labels.
	mdns := new(dns.Msg)
	mdns.Response, mdns.Authoritative = true, true
	mdns.Answer = []dns.RR{
		rr(`_ipp._tcp.local. 4500 IN PTR Office\032Printer\.\001\255._ipp._tcp.local.`),
		rr(`Office\032Printer\.\001\255._ipp._tcp.local. 120 IN SRV 0 0 631 printer.local.`),
		rr(`Office\032Printer\.\001\255._ipp._tcp.local. 4500 IN TXT "txtvers=1" "note=a\010b\255\\c"`),
	}
	mdns.Question = []dns.Question{{Name: `Office\032Printer\.\001\255._ipp._tcp.local.`, Qtype: dns.TypeANY, Qclass: dns.ClassINET}}

	// An OPT pseudo-record in the answer section, where it has no business.
	optAnswer := new(dns.Msg)
	optAnswer.SetQuestion("a.example.", dns.TypeA)
	optAnswer.Response = true
	opt := &dns.OPT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT}}
	opt.SetUDPSize(1232)
	optAnswer.Answer = []dns.RR{opt}

	// The answer cut in its last record: the question and header survive.
	truncated := answerBytes[:len(answerBytes)-7]

	// One question whose name is a pointer to itself (offset 12).
	loop := []byte{0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 0x0c, 0, 1, 0, 1}
	// Two pointers pointing at each other, behind a real label.
	loop2 := []byte{0x12, 0x34, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0,
		1, 'a', 0xc0, 0x14, 0, 1, 0, 1, // question a.<ptr 20>; 20 is the answer owner
		0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 1}

	return []dnsSeed{
		{"query-a-edns", pack(query), outcomeWhole},
		{"answer-cname-a-aaaa-https", answerBytes, outcomeWhole},
		{"mdns-escaped-names", pack(mdns), outcomeWhole},
		{"answer-opt-pseudo-record", pack(optAnswer), outcomeWhole},
		{"answer-truncated", truncated, outcomePartial},
		{"compression-loop-self", loop, outcomeError},
		{"compression-loop-pair", loop2, outcomeError},
		{"header-only", []byte{0xab, 0xcd, 0x81, 0x05, 0, 0, 0, 0, 0, 0, 0, 0}, outcomeWhole},
		{"question-count-lie", []byte{0, 1, 1, 0, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1}, outcomeError},
	}
}

type dnsOutcome int

const (
	outcomeWhole dnsOutcome = iota
	outcomePartial
	outcomeError
)

type dnsSeed struct {
	name string
	data []byte
	want dnsOutcome
}

// TestDNSFuzzSeeds checks that the seeds test what their names say, and
// rewrites them under testdata/fuzz with PHONEHOME_WRITE_FUZZ_SEEDS=1.
func TestDNSFuzzSeeds(t *testing.T) {
	for _, s := range dnsFuzzSeeds(t) {
		var m dns.Msg
		partial, err := ParseDNS(s.data, &m)
		got := outcomeWhole
		switch {
		case err != nil:
			got = outcomeError
		case partial:
			got = outcomePartial
		}
		if got != s.want {
			t.Errorf("%s: outcome %d (err %v), want %d", s.name, got, err, s.want)
		}
		if got != outcomeError && len(m.Question) == 0 && s.name != "header-only" {
			t.Errorf("%s: no question", s.name)
		}
	}
	if os.Getenv("PHONEHOME_WRITE_FUZZ_SEEDS") == "" {
		return
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzParseDNS")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, s := range dnsFuzzSeeds(t) {
		body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", s.data)
		if err := os.WriteFile(filepath.Join(dir, s.name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
