package extract

import (
	"bytes"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
)

// --- builders for hand-made ClientHellos ---------------------------------

func cat(parts ...[]byte) []byte {
	var b []byte
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

func be16(v int) []byte { return []byte{byte(v >> 8), byte(v)} }

func vec8(parts ...[]byte) []byte {
	b := cat(parts...)
	return append([]byte{byte(len(b))}, b...)
}

func vec16(parts ...[]byte) []byte {
	b := cat(parts...)
	return append(be16(len(b)), b...)
}

func ext(typ int, data ...[]byte) []byte { return append(be16(typ), vec16(data...)...) }

func sniEntry(typ byte, name string) []byte { return append([]byte{typ}, vec16([]byte(name))...) }

func sniExt(entries ...[]byte) []byte { return ext(extServerName, vec16(entries...)) }

func alpnExt(protos ...string) []byte {
	var l []byte
	for _, p := range protos {
		l = append(l, vec8([]byte(p))...)
	}
	return ext(extALPN, vec16(l))
}

func svExt(versions ...int) []byte {
	var l []byte
	for _, v := range versions {
		l = append(l, be16(v)...)
	}
	return ext(extSupportedVersions, vec8(l))
}

// suites are TLS_AES_128_GCM_SHA256, TLS_AES_256_GCM_SHA384 and
// TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256.
var testSuites = []byte{0x13, 0x01, 0x13, 0x02, 0xc0, 0x2f}

// bodyPrefix is legacy_version 0x0303, a random, a 32-byte session id, the
// test suites and null compression: everything before the extensions.
func bodyPrefix() []byte {
	return cat(be16(0x0303), bytes.Repeat([]byte{0xaa}, 32),
		vec8(bytes.Repeat([]byte{0x55}, 32)), vec16(testSuites), vec8([]byte{0}))
}

// helloBody is a ClientHello body with the given extensions.
func helloBody(exts ...[]byte) []byte { return cat(bodyPrefix(), vec16(exts...)) }

// handshake wraps a body into a ClientHello handshake message.
func handshake(body []byte) []byte {
	n := len(body)
	return append([]byte{handshakeTypeClientHello, byte(n >> 16), byte(n >> 8), byte(n)}, body...)
}

func record(payload []byte) []byte {
	return append([]byte{recordTypeHandshake, 3, 1, byte(len(payload) >> 8), byte(len(payload))}, payload...)
}

// records splits msg into handshake records with the given payload sizes;
// the rest goes into a last record.
func records(msg []byte, sizes ...int) []byte {
	var out []byte
	for _, n := range sizes {
		out = append(out, record(msg[:n])...)
		msg = msg[n:]
	}
	if len(msg) > 0 {
		out = append(out, record(msg)...)
	}
	return out
}

func helloRecord(exts ...[]byte) []byte { return record(handshake(helloBody(exts...))) }

// sslv2Hello builds an SSLv2-format CLIENT-HELLO.
func sslv2Hello(version int, specs, sessionID, challenge []byte) []byte {
	b := cat([]byte{handshakeTypeClientHello}, be16(version), be16(len(specs)), be16(len(sessionID)),
		be16(len(challenge)), specs, sessionID, challenge)
	return append([]byte{0x80 | byte(len(b)>>8), byte(len(b))}, b...)
}

var sslv2Specs = []byte{0x01, 0x00, 0x80, 0x00, 0x00, 0x2f, 0x00, 0x00, 0x35}

// captureClientHello runs a real crypto/tls client over net.Pipe and returns
// the first record it writes: the ClientHello.
func captureClientHello(tb testing.TB, cfg *tls.Config) []byte {
	tb.Helper()
	client, server := net.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = tls.Client(client, cfg).Handshake() // fails once server closes
		client.Close()
	}()
	defer func() { server.Close(); <-done }()
	hdr := make([]byte, recordHeaderLen)
	if _, err := io.ReadFull(server, hdr); err != nil {
		tb.Fatalf("reading record header: %v", err)
	}
	body := make([]byte, int(hdr[3])<<8|int(hdr[4]))
	if _, err := io.ReadFull(server, body); err != nil {
		tb.Fatalf("reading record body: %v", err)
	}
	return append(hdr, body...)
}

func goHello(tb testing.TB) []byte {
	return captureClientHello(tb, &tls.Config{ServerName: "dnl-01.geo.kaspersky.com", NextProtos: []string{"h2", "http/1.1"}})
}

// --- summaries for table comparisons --------------------------------------

type helloSummary struct {
	SSLv2         bool
	RecordVersion uint16
	Version       uint16
	SNI           string
	HasSNI        bool
	ServerNames   int
	ALPN          string // protocols joined by ","
	SV            string // hex of SupportedVersions
	Suites        int    // bytes of CipherSuites
	HasExt        bool
	ECH, ESNI     bool
	TLS13         bool
}

func summarize(h *ClientHello) helloSummary {
	var alpn []string
	for p := range h.ALPNProtocols() {
		alpn = append(alpn, string(p))
	}
	return helloSummary{
		SSLv2: h.SSLv2, RecordVersion: h.RecordVersion, Version: h.Version,
		SNI: string(h.SNI), HasSNI: h.SNI != nil, ServerNames: h.ServerNames,
		ALPN: strings.Join(alpn, ","), SV: hex.EncodeToString(h.SupportedVersions),
		Suites: len(h.CipherSuites), HasExt: h.Extensions != nil,
		ECH: h.ECH, ESNI: h.ESNI, TLS13: h.OffersTLS13,
	}
}

// base is the summary of helloRecord() with no extensions.
func base(edit func(s *helloSummary)) helloSummary {
	s := helloSummary{RecordVersion: 0x0301, Version: 0x0303, Suites: len(testSuites), HasExt: true}
	if edit != nil {
		edit(&s)
	}
	return s
}

// --- tests ------------------------------------------------------------------

func TestParseClientHelloCryptoTLS(t *testing.T) {
	tests := []struct {
		name string
		cfg  *tls.Config
		want func(s *helloSummary)
	}{
		{
			name: "tls13 default",
			cfg:  &tls.Config{ServerName: "dnl-01.geo.kaspersky.com", NextProtos: []string{"h2", "http/1.1"}},
			want: func(s *helloSummary) {
				s.SNI, s.HasSNI, s.ServerNames, s.ALPN, s.TLS13 = "dnl-01.geo.kaspersky.com", true, 1, "h2,http/1.1", true
			},
		},
		{
			name: "tls12 only",
			cfg:  &tls.Config{ServerName: "ksn-a.kaspersky-labs.com", MaxVersion: tls.VersionTLS12},
			want: func(s *helloSummary) { s.SNI, s.HasSNI, s.ServerNames = "ksn-a.kaspersky-labs.com", true, 1 },
		},
		{
			name: "ip literal sends no sni",
			cfg:  &tls.Config{ServerName: "192.0.2.1", InsecureSkipVerify: true, NextProtos: []string{"acme-tls/1"}},
			want: func(s *helloSummary) { s.ALPN, s.TLS13 = "acme-tls/1", true },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := captureClientHello(t, tt.cfg)
			if !IsClientHelloStart(p) {
				t.Fatalf("IsClientHelloStart = false for % x", p[:8])
			}
			var h ClientHello
			scratch, err := ParseClientHello(p, nil, &h)
			if err != nil {
				t.Fatalf("ParseClientHello: %v", err)
			}
			if scratch != nil {
				t.Errorf("scratch grown for a single-record hello")
			}
			got := summarize(&h)
			got.SV, got.Suites = "", 0 // depend on the Go release
			want := base(tt.want)
			want.Suites = 0
			if got != want {
				t.Errorf("got  %+v\nwant %+v", got, want)
			}
			if len(h.CipherSuites) == 0 || len(h.CipherSuites)%2 != 0 {
				t.Errorf("CipherSuites has %d bytes", len(h.CipherSuites))
			}
			if tt.cfg.MaxVersion == tls.VersionTLS12 && bytes.Contains(h.SupportedVersions, []byte{3, 4}) {
				t.Errorf("TLS 1.2-only client offers 1.3: % x", h.SupportedVersions)
			}
			// SNI must alias the input, not a copy.
			if h.SNI != nil && !aliases(p, h.SNI) {
				t.Errorf("SNI does not alias the input")
			}
		})
	}
}

// aliases reports whether s lies inside p's memory.
func aliases(p, s []byte) bool {
	if len(s) == 0 || len(p) == 0 {
		return false
	}
	for i := range p {
		if &p[i] == &s[0] {
			return i+len(s) <= len(p)
		}
	}
	return false
}

func TestParseClientHello(t *testing.T) {
	grease := ext(0x0a0a) // empty GREASE extension
	msg := handshake(helloBody(sniExt(sniEntry(0, "example.com")), alpnExt("h2")))
	tests := []struct {
		name string
		in   []byte
		err  error
		want func(s *helloSummary)
	}{
		{
			name: "sni and alpn",
			in:   helloRecord(sniExt(sniEntry(0, "Example.COM")), alpnExt("h2", "http/1.1")),
			want: func(s *helloSummary) { s.SNI, s.HasSNI, s.ServerNames, s.ALPN = "Example.COM", true, 1, "h2,http/1.1" },
		},
		{
			name: "several names: first reported, all counted",
			in:   helloRecord(sniExt(sniEntry(0, "a.example"), sniEntry(0, "b.example"), sniEntry(0, "c.example"))),
			want: func(s *helloSummary) { s.SNI, s.HasSNI, s.ServerNames = "a.example", true, 3 },
		},
		{
			name: "name type other than host_name skipped",
			in:   helloRecord(sniExt(sniEntry(7, "ignored"), sniEntry(0, "real.example"))),
			want: func(s *helloSummary) { s.SNI, s.HasSNI, s.ServerNames = "real.example", true, 1 },
		},
		{
			name: "only unknown name types",
			in:   helloRecord(sniExt(sniEntry(1, "x"))),
		},
		{
			name: "empty server_name extension",
			in:   helloRecord(ext(extServerName)),
		},
		{
			name: "non-printable sni returned raw",
			in:   helloRecord(sniExt(sniEntry(0, "a\x00b\x1b[31m\xff"))),
			want: func(s *helloSummary) { s.SNI, s.HasSNI, s.ServerNames = "a\x00b\x1b[31m\xff", true, 1 },
		},
		{
			name: "empty host_name counted",
			in:   helloRecord(sniExt(sniEntry(0, ""))),
			want: func(s *helloSummary) { s.HasSNI, s.ServerNames = true, 1 },
		},
		{
			name: "empty extensions block",
			in:   helloRecord(),
		},
		{
			name: "no extensions block (TLS 1.0 era)",
			in:   record(handshake(bodyPrefix())),
			want: func(s *helloSummary) { s.HasExt = false },
		},
		{
			name: "grease extensions and versions",
			in: helloRecord(grease, sniExt(sniEntry(0, "g.example")), ext(0x1a1a, []byte{0}),
				svExt(0x2a2a, 0x0304, 0x0303), ext(0xfafa)),
			want: func(s *helloSummary) {
				s.SNI, s.HasSNI, s.ServerNames, s.SV, s.TLS13 = "g.example", true, 1, "2a2a03040303", true
			},
		},
		{
			name: "supported_versions without 1.3",
			in:   helloRecord(svExt(0x0303, 0x0302)),
			want: func(s *helloSummary) { s.SV = "03030302" },
		},
		{
			name: "tls 1.3 draft version",
			in:   helloRecord(svExt(0x7f1c, 0x0303)),
			want: func(s *helloSummary) { s.SV, s.TLS13 = "7f1c0303", true },
		},
		{
			name: "ech present: sni is the outer name",
			in:   helloRecord(sniExt(sniEntry(0, "public.example")), ext(extECH, []byte{0, 0, 1, 0, 1, 0x42}), svExt(0x0304)),
			want: func(s *helloSummary) {
				s.SNI, s.HasSNI, s.ServerNames, s.ECH, s.SV, s.TLS13 = "public.example", true, 1, true, "0304", true
			},
		},
		{
			name: "esni present",
			in:   helloRecord(ext(extESNI, []byte{1, 2, 3})),
			want: func(s *helloSummary) { s.ESNI = true },
		},
		{
			name: "fragmented across 3 records",
			in:   records(msg, 10, 40),
			want: func(s *helloSummary) { s.SNI, s.HasSNI, s.ServerNames, s.ALPN = "example.com", true, 1, "h2" },
		},
		{
			name: "handshake header split, zero-length records",
			in:   records(msg, 0, 1, 0, 2, 0),
			want: func(s *helloSummary) { s.SNI, s.HasSNI, s.ServerNames, s.ALPN = "example.com", true, 1, "h2" },
		},
		{
			name: "trailing bytes after the message are ignored",
			in:   append(records(msg, 30), record([]byte{0x10, 0, 0, 0})...),
			want: func(s *helloSummary) { s.SNI, s.HasSNI, s.ServerNames, s.ALPN = "example.com", true, 1, "h2" },
		},
		{
			name: "sslv2 format",
			in:   sslv2Hello(0x0301, sslv2Specs, nil, bytes.Repeat([]byte{7}, 16)),
			want: func(s *helloSummary) {
				*s = helloSummary{SSLv2: true, Version: 0x0301, Suites: len(sslv2Specs)}
			},
		},
		{
			name: "sslv2 format, sslv2 version, session id",
			in:   sslv2Hello(0x0002, sslv2Specs[:3], bytes.Repeat([]byte{1}, 16), bytes.Repeat([]byte{7}, 32)),
			want: func(s *helloSummary) { *s = helloSummary{SSLv2: true, Version: 0x0002, Suites: 3} },
		},

		{name: "empty input", in: nil, err: ErrIncomplete},
		{name: "record longer than p", in: helloRecord()[:40], err: ErrIncomplete},
		{name: "fragment missing", in: records(msg, 10, 40)[:60], err: ErrIncomplete},
		{name: "next record header cut", in: records(msg, 10)[:17], err: ErrIncomplete},
		{name: "http", in: []byte("GET / HTTP/1.1\r\n\r\n"), err: ErrNotTLS},
		{name: "application data record", in: []byte{23, 3, 3, 0, 1, 0}, err: ErrNotTLS},
		{name: "bad record version", in: []byte{22, 3, 5, 0, 1, 1}, err: ErrNotTLS},
		{name: "server hello", in: record([]byte{2, 0, 0, 0}), err: ErrNotTLS},
		{name: "sslv2 server hello", in: []byte{0x80, 0x40, 4, 0, 2}, err: ErrNotTLS},
		{name: "sslv2 bad version", in: []byte{0x80, 0x40, 1, 0x12, 0x34}, err: ErrNotTLS},
		{name: "sslv2 too short", in: []byte{0x80, 0x05, 1, 3, 1}, err: ErrNotTLS},
		{
			name: "sslv2 lengths disagree",
			in: func() []byte {
				b := sslv2Hello(0x0301, sslv2Specs, nil, bytes.Repeat([]byte{7}, 16))
				b[6]++ // cipher_spec_length
				return b
			}(),
			err: ErrMalformed,
		},
		{name: "sslv2 short challenge", in: sslv2Hello(0x0301, sslv2Specs, nil, bytes.Repeat([]byte{7}, 15)), err: ErrMalformed},
		{name: "sslv2 specs not multiple of 3", in: sslv2Hello(0x0301, sslv2Specs[:4], nil, bytes.Repeat([]byte{7}, 24)), err: ErrMalformed},
		{name: "record too long", in: []byte{22, 3, 1, 0x48, 0x01, 1}, err: ErrMalformed},
		{name: "handshake length impossible", in: record([]byte{1, 0xff, 0xff, 0xff}), err: ErrMalformed},
		{
			name: "alert interleaved with fragments",
			in:   append(record(msg[:10]), []byte{21, 3, 3, 0, 2, 2, 40}...),
			err:  ErrMalformed,
		},
		{name: "body too short", in: record(handshake([]byte{3, 3, 0})), err: ErrMalformed},
		{name: "legacy version major not 3", in: record(handshake(append([]byte{2}, helloBody()[1:]...))), err: ErrMalformed},
		{name: "session id too long", in: record(handshake(cat(be16(0x0303), make([]byte, 32), vec8(make([]byte, 33)), vec16(testSuites), vec8([]byte{0})))), err: ErrMalformed},
		{name: "odd cipher suites", in: record(handshake(cat(be16(0x0303), make([]byte, 32), vec8(), vec16(testSuites[:3]), vec8([]byte{0})))), err: ErrMalformed},
		{name: "no cipher suites", in: record(handshake(cat(be16(0x0303), make([]byte, 32), vec8(), vec16(), vec8([]byte{0})))), err: ErrMalformed},
		{name: "no compression methods", in: record(handshake(cat(be16(0x0303), make([]byte, 32), vec8(), vec16(testSuites), vec8()))), err: ErrMalformed},
		{name: "one stray byte instead of extensions", in: record(handshake(append(bodyPrefix(), 0))), err: ErrMalformed},
		{name: "extensions length too big", in: record(handshake(cat(bodyPrefix(), be16(10), ext(0x0a0a)))), err: ErrMalformed},
		{name: "trailing bytes after extensions", in: record(handshake(cat(helloBody(ext(0x0a0a)), []byte{0}))), err: ErrMalformed},
		{name: "extension overruns block", in: helloRecord(cat(be16(0x0a0a), be16(5), []byte{1})), err: ErrMalformed},
		{name: "truncated extension header", in: helloRecord([]byte{0, 1, 0}), err: ErrMalformed},
		{name: "sni list length mismatch", in: helloRecord(ext(extServerName, be16(9), sniEntry(0, "a"))), err: ErrMalformed},
		{name: "sni name overruns list", in: helloRecord(ext(extServerName, vec16([]byte{0, 0, 9, 'a'}))), err: ErrMalformed},
		{name: "sni entry header cut", in: helloRecord(ext(extServerName, vec16([]byte{0, 0}))), err: ErrMalformed},
		{name: "duplicate server_name", in: helloRecord(sniExt(sniEntry(0, "a")), sniExt(sniEntry(0, "b"))), err: ErrMalformed},
		{name: "alpn empty protocol", in: helloRecord(ext(extALPN, vec16([]byte{0}))), err: ErrMalformed},
		{name: "alpn protocol overruns", in: helloRecord(ext(extALPN, vec16([]byte{5, 'h'}))), err: ErrMalformed},
		{name: "alpn list length mismatch", in: helloRecord(ext(extALPN, be16(1))), err: ErrMalformed},
		{name: "supported_versions odd", in: helloRecord(ext(extSupportedVersions, vec8([]byte{3, 4, 3}))), err: ErrMalformed},
		{name: "supported_versions length mismatch", in: helloRecord(ext(extSupportedVersions, []byte{4, 3, 4})), err: ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h ClientHello
			h.SNI = []byte("stale") // must be cleared
			_, err := ParseClientHello(tt.in, nil, &h)
			if !errors.Is(err, tt.err) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if err != nil {
				if summarize(&h) != (helloSummary{}) || h.Extensions != nil {
					t.Errorf("h not reset on error: %+v", h)
				}
				return
			}
			if !IsClientHelloStart(tt.in) {
				t.Errorf("parsed, but IsClientHelloStart = false")
			}
			if got, want := summarize(&h), base(tt.want); got != want {
				t.Errorf("got  %+v\nwant %+v", got, want)
			}
		})
	}
}

func TestParseClientHelloPrefixes(t *testing.T) {
	msg := handshake(helloBody(sniExt(sniEntry(0, "example.com")), alpnExt("h2"), svExt(0x0304)))
	inputs := map[string][]byte{
		"crypto/tls":    goHello(t),
		"3 records":     records(msg, 10, 40),
		"split header":  records(msg, 0, 1, 2, 0),
		"sslv2":         sslv2Hello(0x0301, sslv2Specs, nil, bytes.Repeat([]byte{7}, 16)),
		"no extensions": record(handshake(bodyPrefix())),
	}
	for name, in := range inputs {
		t.Run(name, func(t *testing.T) {
			var h ClientHello
			var scratch []byte
			for i := range len(in) {
				var err error
				scratch, err = ParseClientHello(in[:i], scratch, &h)
				if err != ErrIncomplete {
					t.Fatalf("prefix of %d/%d bytes: err = %v, want ErrIncomplete", i, len(in), err)
				}
			}
			if _, err := ParseClientHello(in, scratch, &h); err != nil {
				t.Fatalf("full input: %v", err)
			}
		})
	}
}

func TestParseClientHelloScratch(t *testing.T) {
	msg := handshake(helloBody(sniExt(sniEntry(0, "frag.example"))))
	in := records(msg, 5, 20, 30)

	var h ClientHello
	scratch, err := ParseClientHello(in, nil, &h)
	if err != nil {
		t.Fatal(err)
	}
	if string(h.SNI) != "frag.example" || !aliases(scratch[:cap(scratch)], h.SNI) {
		t.Fatalf("SNI %q should alias scratch", h.SNI)
	}

	// A reused scratch with room is not reallocated, and its old contents
	// do not leak into the result.
	for i := range scratch {
		scratch[i] = 0xee
	}
	s2, err := ParseClientHello(in, scratch, &h)
	if err != nil || &s2[0] != &scratch[0] || string(h.SNI) != "frag.example" {
		t.Fatalf("reuse: err=%v sameBacking=%v SNI=%q", err, err == nil && &s2[0] == &scratch[0], h.SNI)
	}
	if n := testing.AllocsPerRun(100, func() { s2, _ = ParseClientHello(in, s2, &h) }); n != 0 {
		t.Errorf("fragmented parse with reused scratch: %v allocs", n)
	}

	// The single-record path leaves scratch alone.
	one := record(msg)
	s3, err := ParseClientHello(one, scratch[:3], &h)
	if err != nil || len(s3) != 3 || !aliases(one, h.SNI) {
		t.Fatalf("single record: err=%v len(scratch)=%d aliasesInput=%v", err, len(s3), aliases(one, h.SNI))
	}

	// Returned slices are capped: appending must not scribble on the input.
	before := bytes.Clone(one)
	_ = append(h.SNI, "XXXX"...)
	_ = append(h.CipherSuites, "XXXX"...)
	_ = append(h.Extensions, "XXXX"...)
	if !bytes.Equal(before, one) {
		t.Fatal("append to a result modified the input")
	}
}

func TestIsClientHelloStart(t *testing.T) {
	tests := []struct {
		in   []byte
		want bool
	}{
		{nil, false},
		{[]byte{22, 3}, false},
		{[]byte{22, 3, 1}, true},
		{[]byte{22, 3, 1, 2, 0}, true},
		{[]byte{22, 3, 1, 2, 0, 1}, true},
		{[]byte{22, 3, 3, 2, 0, 1}, true},
		{[]byte{22, 3, 0, 2, 0, 1}, true},
		{[]byte{22, 3, 4, 2, 0, 1}, true},
		{[]byte{22, 3, 5, 2, 0, 1}, false},
		{[]byte{22, 2, 0, 2, 0, 1}, false},
		{[]byte{22, 3, 1, 2, 0, 2}, false},  // ServerHello
		{[]byte{22, 3, 1, 0, 0, 22}, true},  // empty first record
		{[]byte{22, 3, 1, 0x48, 1}, false},  // record too long
		{[]byte{23, 3, 3, 0, 20, 1}, false}, // application data
		{[]byte("GET / HTTP/1.1"), false},
		{[]byte{0x80, 0x2e, 1, 3, 1}, true},
		{[]byte{0x80, 0x2e, 1, 0, 2}, true},
		{[]byte{0x80, 0x2e, 1, 0, 3}, false},
		{[]byte{0x80, 0x2e, 1, 2, 0}, false},
		{[]byte{0x80, 0x2e, 2, 3, 1}, false},
		{[]byte{0x80, 0x05, 1, 3, 1}, false}, // shorter than any CLIENT-HELLO
		{[]byte{0x80, 0x2e, 1, 3}, false},
		{goHello(t), true},
	}
	for _, tt := range tests {
		if got := IsClientHelloStart(tt.in); got != tt.want {
			t.Errorf("IsClientHelloStart(% x) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestALPNProtocols(t *testing.T) {
	var h ClientHello
	if _, err := ParseClientHello(helloRecord(alpnExt("h2", "http/1.1", "spdy/3")), nil, &h); err != nil {
		t.Fatal(err)
	}
	var got []string
	for p := range h.ALPNProtocols() {
		got = append(got, string(p))
		if len(got) == 2 {
			break
		}
	}
	if strings.Join(got, ",") != "h2,http/1.1" {
		t.Errorf("got %q", got)
	}
	// A hand-filled, inconsistent list stops the iteration, no panic.
	h.ALPN = []byte{2, 'h', '2', 9, 'x'}
	got = got[:0]
	for p := range h.ALPNProtocols() {
		got = append(got, string(p))
	}
	if strings.Join(got, ",") != "h2" {
		t.Errorf("inconsistent list: got %q", got)
	}
	h.ALPN = []byte{2, 'h', '2', 2, 'h', '3'}
	n := 0
	if a := testing.AllocsPerRun(100, func() {
		for p := range h.ALPNProtocols() {
			n += len(p)
		}
	}); a != 0 {
		t.Errorf("ALPNProtocols: %v allocs", a)
	}
}

func TestClientHelloReset(t *testing.T) {
	h := ClientHello{SSLv2: true, SNI: []byte("x"), ServerNames: 2, OffersTLS13: true}
	h.Reset()
	if h.SSLv2 || h.SNI != nil || h.ServerNames != 0 || h.OffersTLS13 {
		t.Errorf("Reset left %+v", h)
	}
}

func FuzzParseClientHello(f *testing.F) {
	msg := handshake(helloBody(sniExt(sniEntry(0, "example.com"), sniEntry(0, "b")), alpnExt("h2", "http/1.1"),
		svExt(0x0a0a, 0x0304), ext(extECH, []byte{1})))
	f.Add(goHello(f))
	f.Add(captureClientHello(f, &tls.Config{ServerName: "ksn.kaspersky-labs.com", MaxVersion: tls.VersionTLS12}))
	f.Add(record(msg))
	f.Add(records(msg, 10, 40))
	f.Add(records(msg, 0, 1, 0, 2))
	f.Add(record(handshake(bodyPrefix())))
	f.Add(helloRecord(ext(extESNI, []byte{1}), ext(extServerName)))
	f.Add(sslv2Hello(0x0301, sslv2Specs, nil, bytes.Repeat([]byte{7}, 16)))
	f.Add([]byte("GET / HTTP/1.1\r\n\r\n"))
	f.Fuzz(func(t *testing.T, p []byte) {
		var h ClientHello
		scratch := bytes.Repeat([]byte{0xee}, 64) // garbage must not matter
		_, err := ParseClientHello(p, scratch, &h)
		var h2 ClientHello
		_, err2 := ParseClientHello(p, nil, &h2)
		if err != err2 || summarize(&h) != summarize(&h2) || !bytes.Equal(h.Extensions, h2.Extensions) {
			t.Fatalf("result depends on scratch: %v %+v / %v %+v", err, h, err2, h2)
		}
		switch err {
		case nil:
		case ErrIncomplete, ErrNotTLS, ErrMalformed:
			if (h.SNI != nil || h.Extensions != nil || h.Version != 0 || h.RecordVersion != 0 || h.ServerNames != 0) ||
				h.SSLv2 || h.ECH || h.ESNI || h.OffersTLS13 {
				t.Fatalf("h not reset after %v: %+v", err, h)
			}
			return
		default:
			t.Fatalf("unexpected error %v", err)
		}
		if !IsClientHelloStart(p) {
			t.Fatalf("parsed but IsClientHelloStart = false")
		}
		if h.ServerNames == 0 && h.SNI != nil || h.ServerNames > 0 && h.SNI == nil {
			t.Fatalf("ServerNames %d, SNI %q", h.ServerNames, h.SNI)
		}
		if h.SSLv2 && (h.SNI != nil || h.Extensions != nil || h.RecordVersion != 0) {
			t.Fatalf("SSLv2 hello with TLS fields: %+v", h)
		}
		n := 0
		for proto := range h.ALPNProtocols() {
			n += 1 + len(proto)
		}
		if n != len(h.ALPN) {
			t.Fatalf("ALPN iteration covered %d of %d bytes", n, len(h.ALPN))
		}
		// Every prefix of a parsable input is a clean parse or incomplete.
		for _, k := range []int{0, 1, 5, 6, 9, len(p) / 2, len(p) - 1} {
			if k < 0 || k >= len(p) {
				continue
			}
			if _, err := ParseClientHello(p[:k], nil, &h2); err != nil && err != ErrIncomplete {
				t.Fatalf("prefix %d of parsable input: %v", k, err)
			}
		}
	})
}

func BenchmarkParseClientHello(b *testing.B) {
	p := goHello(b)
	var h ClientHello
	b.SetBytes(int64(len(p)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseClientHello(p, nil, &h); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseClientHelloFragmented(b *testing.B) {
	msg := handshake(goHello(b)[recordHeaderLen:][handshakeHeaderLen:])
	p := records(msg, 100, 500)
	var h ClientHello
	scratch := make([]byte, 0, 4096)
	b.SetBytes(int64(len(p)))
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if scratch, err = ParseClientHello(p, scratch, &h); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkIsClientHelloStart(b *testing.B) {
	inputs := [][]byte{goHello(b), []byte("GET / HTTP/1.1\r\n"), {0x17, 3, 3, 0, 0x20}}
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		for _, p := range inputs {
			if IsClientHelloStart(p) {
				n++
			}
		}
	}
	_ = n
}

func BenchmarkALPNProtocols(b *testing.B) {
	var h ClientHello
	if _, err := ParseClientHello(goHello(b), nil, &h); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		for p := range h.ALPNProtocols() {
			n += len(p)
		}
	}
	_ = n
}

func TestHostNames(t *testing.T) {
	p := record(handshake(helloBody(sniExt(sniEntry(0, "first.example"), sniEntry(1, "other-type"), sniEntry(0, "second.example")))))
	var h ClientHello
	if _, err := ParseClientHello(p, nil, &h); err != nil {
		t.Fatal(err)
	}
	var got []string
	for n := range h.HostNames() {
		got = append(got, string(n))
	}
	if strings.Join(got, ",") != "first.example,second.example" || string(h.SNI) != "first.example" || h.ServerNames != 2 {
		t.Fatalf("names %q, SNI %q, count %d", got, h.SNI, h.ServerNames)
	}
}
