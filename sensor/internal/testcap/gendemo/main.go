// Command gendemo writes the demo capture that `make run` feeds the sensor:
// a few minutes of an enterprise network in which three hosts still run
// Kaspersky software, next to clean hosts, look-alike names that must not
// match, and hostile bytes that must come out escaped. See
// sensor/testdata/README.md for what is in it and what the sensor should
// report.
//
//	go run ./sensor/internal/testcap/gendemo -o sensor/testdata/demo.pcap
//
// The capture is deterministic except for the random bytes crypto/tls puts
// in each ClientHello. Nothing is printed but errors.
package main

import (
	"bytes"
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"time"

	"github.com/miekg/dns"

	"github.com/phonehome-sensor/phonehome/sensor/internal/testcap"
)

// Start is the packet time of the first frame.
var Start = time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)

func main() {
	out := flag.String("o", "", "output pcap file (required)")
	flag.Parse()
	if *out == "" || flag.NArg() != 0 {
		fmt.Fprintln(os.Stderr, "usage: gendemo -o FILE.pcap")
		os.Exit(2)
	}
	var buf bytes.Buffer
	if err := generate(&buf); err != nil {
		fmt.Fprintln(os.Stderr, "gendemo:", err)
		os.Exit(1)
	}
	if err := os.WriteFile(*out, buf.Bytes(), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "gendemo:", err)
		os.Exit(1)
	}
}

func mac(s string) net.HardwareAddr {
	m, err := net.ParseMAC(s)
	if err != nil {
		panic(err)
	}
	return m
}

func host(ip, hw string, vlan uint16) testcap.Host {
	return testcap.Host{IP: netip.MustParseAddr(ip), MAC: mac(hw), VLAN: vlan}
}

// The network. Everything beyond the site router is seen with the router's
// MAC. Internet addresses are documentation prefixes (RFC 5737, RFC 3849),
// so no address-space rule can match: every expected hit comes from a name.
const gwMAC = "00:1b:21:20:00:01"

var (
	resolver  = host("10.20.0.53", "52:54:00:20:00:53", 0)
	resolver6 = host("fd00:20::53", "52:54:00:20:00:53", 0)

	// Hosts still running Kaspersky.
	kav1 = host("10.20.1.15", "a4:bb:6d:14:01:0f", 0)
	kav2 = host("10.20.7.42", "3c:52:82:07:00:2a", 120) // the one client on VLAN 120
	kav3 = host("fd00:20::1a", "a4:bb:6d:14:00:1a", 0)

	// Clean hosts.
	clean1 = host("10.20.2.21", "f8:b4:6a:02:00:15", 0)
	clean2 = host("10.20.2.37", "f8:b4:6a:02:00:25", 0)
	clean3 = host("10.20.3.8", "00:be:43:03:00:08", 0)
	clean4 = host("10.20.4.19", "00:be:43:04:00:13", 0)
	clean5 = host("10.20.5.33", "b0:7b:25:05:00:21", 0)
	clean6 = host("10.20.6.50", "b0:7b:25:06:00:32", 0)
)

// remote is a host on the internet, behind the site router.
func remote(ip string) testcap.Host { return host(ip, gwMAC, 0) }

// demo holds the generator's state. Its methods do nothing once an error
// has happened, and generate returns that first error, so the scenario reads
// as a script.
type demo struct {
	w   *testcap.Writer
	id  uint16 // last DNS message id
	err error
}

func (d *demo) fail(what string, err error) {
	if err != nil && d.err == nil {
		d.err = fmt.Errorf("%s: %w", what, err)
	}
}

// nextID returns the next DNS id from a fixed pseudo-random sequence.
func (d *demo) nextID() uint16 {
	d.id = d.id*25173 + 13849
	return d.id
}

// at moves the packet clock to Start+offset (never backwards).
func (d *demo) at(offset time.Duration) { d.w.Advance(Start.Add(offset).Sub(d.w.Now())) }

// resolve writes a query for name and the resolver's answer.
func (d *demo) resolve(client testcap.Host, name string, qtype uint16, answers ...dns.RR) {
	if d.err != nil {
		return
	}
	srv := resolver
	if client.IP.Is6() {
		srv = resolver6
	}
	q := testcap.Query(name, qtype, d.nextID())
	d.fail("DNS "+name, d.w.DNS(client, srv, q, testcap.Reply(q, answers...)))
	d.w.Advance(18 * time.Millisecond)
}

// nxdomain writes a query for name answered NXDOMAIN with zone's SOA.
func (d *demo) nxdomain(client testcap.Host, name, zone string) {
	if d.err != nil {
		return
	}
	q := testcap.Query(name, dns.TypeA, d.nextID())
	d.fail(fmt.Sprintf("DNS %q", name), d.w.DNS(client, resolver, q, testcap.NXDomain(q, zone)))
	d.w.Advance(12 * time.Millisecond)
}

// agentTLS is the ClientHello of a non-browser TLS stack (an agent or an
// updater) to server:443: classical key exchange only, so the hello fits
// in one segment.
func (d *demo) agentTLS(client, server testcap.Host, name string, alpn ...string) {
	if d.err != nil {
		return
	}
	hello, err := testcap.ClientHelloConfig(&tls.Config{
		ServerName:       name,
		NextProtos:       alpn,
		CurvePreferences: []tls.CurveID{tls.X25519, tls.CurveP256, tls.CurveP384},
	})
	if err == nil {
		err = d.w.TCPSession(client, server, 0, 443, [][]byte{hello}, nil)
	}
	d.fail("TLS "+name, err)
	d.w.Advance(40 * time.Millisecond)
}

// browserTLS is a browser-like ClientHello to server:443. Go's default key
// shares include a post-quantum hybrid, so the hello (about 1.5 KB) spans
// two segments, as browsers' do.
func (d *demo) browserTLS(client, server testcap.Host, name string) {
	if d.err != nil {
		return
	}
	hello, err := testcap.ClientHello(name, "h2", "http/1.1")
	if err == nil {
		err = d.w.TCPSession(client, server, 0, 443, testcap.Segments(hello, testcap.MSS4), nil)
	}
	d.fail("TLS "+name, err)
	d.w.Advance(40 * time.Millisecond)
}

// httpGet is one plain-HTTP request and its response.
func (d *demo) httpGet(client, server testcap.Host, hostname, target, ua string, reply []byte) {
	if d.err != nil {
		return
	}
	req := testcap.HTTPRequest("GET", hostname, target, ua)
	d.fail("HTTP "+hostname, d.w.TCPSession(client, server, 0, 80, [][]byte{req}, reply))
	d.w.Advance(40 * time.Millisecond)
}

const (
	firefoxUA   = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:144.0) Gecko/20100101 Firefox/144.0"
	kasperskyUA = "KasperskyLab_Updater/12.3.0.493 (Windows NT 10.0; x64) Kaspersky Endpoint Security for Windows"
	hostileUA   = "Mozilla/5.0 \x1b[31mPWNED\x1b[0m </script><script>alert(1)</script>"
	hostileName = "ev\x01il\"\n.example"
)

// blob returns n deterministic bytes that look like compressed data.
func blob(n int) []byte {
	b := make([]byte, n)
	x := uint32(0x6b617370)
	for i := range b {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[i] = byte(x)
	}
	return b
}

// Internet hosts, all behind the site router.
var (
	dnl03    = remote("198.51.100.3")
	ksnURL   = remote("198.51.100.10")
	dsGeo    = remote("198.51.100.20")
	activ    = remote("198.51.100.30")
	ksnFile  = remote("198.51.100.40")
	dnl16    = remote("198.51.100.16")
	s12upd   = host("2001:db8:ca5::12", gwMAC, 0)
	google   = remote("203.0.113.14")
	msLogin  = remote("203.0.113.26")
	github   = remote("203.0.113.40")
	slack    = remote("203.0.113.52")
	exampleO = remote("203.0.113.80")
	timeWin  = remote("203.0.113.123")
	notKav   = remote("192.0.2.10")
	myKavLab = remote("192.0.2.20")
	kavUpd   = remote("192.0.2.30")
)

// ip returns h's address as a string, for answer records.
func ip(h testcap.Host) string { return h.IP.String() }

// generate writes the demo capture to out.
func generate(out io.Writer) error {
	w, err := testcap.NewWriter(out, Start)
	if err != nil {
		return err
	}
	w.SetStep(700 * time.Microsecond)
	d := &demo{w: w, id: 0x2f1d}
	A, CNAME := testcap.A, testcap.CNAME

	// 09:00:00 a clean workstation browses.
	d.resolve(clean1, "www.google.com", dns.TypeA, A("www.google.com", ip(google), 300))
	d.browserTLS(clean1, google, "www.google.com")

	// 09:00:03 Kaspersky host 1 starts an update run.
	d.at(3 * time.Second)
	d.resolve(kav1, "dnl-03.geo.kaspersky.com", dns.TypeA, A("dnl-03.geo.kaspersky.com", ip(dnl03), 60))
	d.agentTLS(kav1, dnl03, "dnl-03.geo.kaspersky.com")

	// 09:00:11 a search-suffix miss, then the real name.
	d.at(11 * time.Second)
	d.nxdomain(clean4, "slack.com.corp.acme.example", "corp.acme.example")
	d.resolve(clean4, "slack.com", dns.TypeA, A("slack.com", ip(slack), 60))
	d.browserTLS(clean4, slack, "slack.com")

	// 09:00:20 the VLAN 120 host looks up its time server (normal).
	d.at(20 * time.Second)
	d.resolve(kav2, "time.windows.com", dns.TypeA,
		CNAME("time.windows.com", "twc.trafficmanager.net", 1800), A("twc.trafficmanager.net", ip(timeWin), 30))

	// 09:00:34 look-alikes, part 1.
	d.at(34 * time.Second)
	d.resolve(clean1, "notkaspersky.com", dns.TypeA, A("notkaspersky.com", ip(notKav), 3600))
	d.agentTLS(clean1, notKav, "notkaspersky.com", "http/1.1")
	d.nxdomain(clean2, "kaspersky.com.example", ".")

	// 09:00:41 KSN URL reputation from host 1.
	d.at(41 * time.Second)
	d.resolve(kav1, "ksn-url-geo.kaspersky-labs.com", dns.TypeA, A("ksn-url-geo.kaspersky-labs.com", ip(ksnURL), 60))
	d.agentTLS(kav1, ksnURL, "ksn-url-geo.kaspersky-labs.com")

	// 09:00:55 host 2 (VLAN 120; its lookup is not in the capture, the
	// name came from its cache) talks to KSN.
	d.at(55 * time.Second)
	d.agentTLS(kav2, ksnFile, "dc1-file.ksn.kaspersky-labs.com")

	// 09:01:06 the IPv6 Kaspersky host.
	d.at(66 * time.Second)
	d.resolve(kav3, "s12.upd.kaspersky.com", dns.TypeAAAA, A("s12.upd.kaspersky.com", ip(s12upd), 120))
	d.agentTLS(kav3, s12upd, "s12.upd.kaspersky.com")

	// 09:01:20 sign-in to Microsoft 365 through a CNAME chain.
	d.at(80 * time.Second)
	d.resolve(clean2, "login.microsoftonline.com", dns.TypeA,
		CNAME("login.microsoftonline.com", "login.mso.msidentity.com", 300),
		CNAME("login.mso.msidentity.com", "ak.privatelink.msidentity.com", 300),
		A("ak.privatelink.msidentity.com", ip(msLogin), 60))
	d.browserTLS(clean2, msLogin, "login.microsoftonline.com")

	// 09:01:31 host 1 looks up its dispatcher through a CNAME chain.
	d.at(91 * time.Second)
	d.resolve(kav1, "ds.kaspersky.com", dns.TypeA,
		CNAME("ds.kaspersky.com", "ds.geo.kaspersky.com", 300), A("ds.geo.kaspersky.com", ip(dsGeo), 60))

	// 09:01:47 domain controller discovery: truncated over UDP, retried
	// over TCP.
	d.at(107 * time.Second)
	d.dcLocator(clean6)

	// 09:02:02 a developer pulls from GitHub; look-alikes, part 2.
	d.at(122 * time.Second)
	d.resolve(clean3, "github.com", dns.TypeA, A("github.com", ip(github), 60))
	d.browserTLS(clean3, github, "github.com")
	d.resolve(clean3, "mykaspersky-labs.com", dns.TypeA, A("mykaspersky-labs.com", ip(myKavLab), 3600))
	d.httpGet(clean3, myKavLab, "mykaspersky-labs.com", "/", firefoxUA,
		testcap.HTTPResponse(301, "text/html", "<a href=\"https://mykaspersky-labs.com/\">Moved</a>\n"))

	// 09:02:14 activation check from host 1.
	d.at(134 * time.Second)
	d.resolve(kav1, "activation-v2.kaspersky.com", dns.TypeA, A("activation-v2.kaspersky.com", ip(activ), 60))
	d.agentTLS(kav1, activ, "activation-v2.kaspersky.com")

	// 09:02:30 look-alikes, part 3: kasperskyupdate.com (not Kaspersky's).
	d.at(150 * time.Second)
	d.resolve(clean4, "kasperskyupdate.com", dns.TypeA, A("kasperskyupdate.com", ip(kavUpd), 600))
	d.agentTLS(clean4, kavUpd, "kasperskyupdate.com")

	// 09:02:47 host 2 fetches an update index over plain HTTP.
	d.at(167 * time.Second)
	d.httpGet(kav2, dnl16, "dnl-16.geo.kaspersky.com", "/index/u0607g.xml.dif", kasperskyUA,
		testcap.HTTPResponse(200, "application/octet-stream", string(blob(2200))))

	// 09:03:05 plain HTTP to example.org.
	d.at(185 * time.Second)
	d.resolve(clean5, "example.org", dns.TypeA, A("example.org", ip(exampleO), 3600))
	d.httpGet(clean5, exampleO, "example.org", "/", "curl/8.11.1",
		testcap.HTTPResponse(200, "text/html", "<!doctype html>\n<html><head><title>Example Domain</title></head><body><h1>Example Domain</h1></body></html>\n"))

	// 09:03:30 hostile bytes: a query name with control bytes and a quote,
	// and a User-Agent with a terminal escape and </script>.
	d.at(210 * time.Second)
	d.nxdomain(clean6, hostileName, ".")
	d.httpGet(clean6, exampleO, "example.org", "/search?q=%3C%2Fscript%3E", hostileUA,
		testcap.HTTPResponse(404, "text/html", "<h1>Not Found</h1>\n"))

	// 09:04:12 host 1's next update run: the same server again.
	d.at(252 * time.Second)
	d.resolve(kav1, "dnl-03.geo.kaspersky.com", dns.TypeA, A("dnl-03.geo.kaspersky.com", ip(dnl03), 60))
	d.agentTLS(kav1, dnl03, "dnl-03.geo.kaspersky.com")

	return d.err
}

// dcLocator is a Windows DC locator SRV lookup whose answer does not fit in
// 512 bytes: the resolver answers over UDP with TC set, and the client asks
// again over TCP.
func (d *demo) dcLocator(client testcap.Host) {
	if d.err != nil {
		return
	}
	const name = "_ldap._tcp.dc._msdcs.corp.acme.example"
	q := testcap.Query(name, dns.TypeSRV, d.nextID())
	tc := testcap.Reply(q)
	tc.Truncated = true
	d.fail("DNS "+name, d.w.DNS(client, resolver, q, tc))
	d.w.Advance(5 * time.Millisecond)
	var rrs []dns.RR
	for i := 1; i <= 12; i++ {
		rrs = append(rrs, testcap.SRV(name, 600, 0, 100, 389, fmt.Sprintf("dc%02d.corp.acme.example", i)))
	}
	q2 := testcap.Query(name, dns.TypeSRV, d.nextID())
	d.fail("DNS/TCP "+name, d.w.DNSTCP(client, resolver, q2, testcap.Reply(q2, rrs...)))
	d.w.Advance(20 * time.Millisecond)
}
