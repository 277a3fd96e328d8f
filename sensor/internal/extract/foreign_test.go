package extract

import (
	"crypto/tls"
	"math/rand/v2"
	"testing"

	"github.com/miekg/dns"
)

// foreignInputs are payloads that are not what any one parser reads:
// each parser sees the others' inputs and random bytes.
func foreignInputs(tb testing.TB) map[string][]byte {
	r := rand.New(rand.NewPCG(3, 4))
	random := make([]byte, 1200)
	for i := range random {
		random[i] = byte(r.IntN(256))
	}
	q := new(dns.Msg)
	q.SetQuestion("dnl-01.geo.kaspersky.com.", dns.TypeA)
	query, err := q.Pack()
	if err != nil {
		tb.Fatal(err)
	}
	return map[string][]byte{
		"random":      random,
		"tls hello":   captureClientHello(tb, &tls.Config{ServerName: "a.example"}),
		"http":        []byte(kasperskyGet),
		"dns query":   query,
		"ssh banner":  []byte("SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n"),
		"tls data":    {0x17, 3, 3, 0, 0x20, 1, 2, 3, 4, 5, 6, 7, 8},
		"zero bytes":  make([]byte, 64),
		"short":       {0x16},
		"empty":       {},
		"quic 1-rtt":  append([]byte{0x40}, random[:100]...),
		"quic v1 bad": append([]byte{0xc0, 0, 0, 0, 1, 8}, random[:60]...),
	}
}

// foreignAssembler lives outside the closure, as the pipeline's does.
var foreignAssembler QUICAssembler

// parsers run each parser on p, as the pipeline calls it.
var parsers = map[string]func(p []byte){
	"ParseClientHello": func(p []byte) {
		var h ClientHello
		ParseClientHello(p, nil, &h)
	},
	"ParseHTTPRequest": func(p []byte) {
		var r HTTPRequest
		ParseHTTPRequest(p, &r)
	},
	"ParseDNS": func(p []byte) {
		var m dns.Msg
		ParseDNS(p, &m)
	},
	"QUICAssembler": func(p []byte) {
		foreignAssembler.Reset()
		foreignAssembler.AddDatagram(p)
	},
	"ParseGQUICCHLO":          func(p []byte) { ParseGQUICCHLO(p) },
	"ParseClientHelloMessage": func(p []byte) { var h ClientHello; ParseClientHelloMessage(p, &h) },
	"ParseECHConfigList":      func(p []byte) { ParseECHConfigList(p, func(ECHConfig) {}) },
}

// own says which inputs a parser really reads (and may allocate on).
var own = map[string]string{"ParseClientHello": "tls hello", "ParseHTTPRequest": "http", "ParseDNS": "dns query"}

// TestForeignInputNoAlloc: no parser allocates on input that is not what
// it parses, so the sensor's cost on other traffic stays flat.
func TestForeignInputNoAlloc(t *testing.T) {
	for pname, parse := range parsers {
		for iname, in := range foreignInputs(t) {
			if own[pname] == iname {
				continue
			}
			if n := testing.AllocsPerRun(20, func() { parse(in) }); n != 0 {
				t.Errorf("%s on %s: %.0f allocations", pname, iname, n)
			}
		}
	}
}

func BenchmarkForeignInput(b *testing.B) {
	ins := foreignInputs(b)
	for pname, parse := range parsers {
		b.Run(pname, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				for iname, in := range ins {
					if own[pname] != iname {
						parse(in)
					}
				}
			}
		})
	}
}
