package testcap

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/miekg/dns"
)

// DNSPort is the server port DNS and DNSTCP write to.
const DNSPort = 53

// DNS writes a query over UDP from client (next ephemeral port) to
// server:53 and, if resp is not nil, the response from server:53 back to
// the same client port. The messages are packed as they are: the caller
// sets ids, flags and sections (see Query, Reply, NXDomain).
func (w *Writer) DNS(client, server Host, q *dns.Msg, resp *dns.Msg) error {
	if q == nil {
		return errors.New("testcap: DNS without a query")
	}
	if err := checkPair(client, server); err != nil {
		return err
	}
	qb, err := q.Pack()
	if err != nil {
		return fmt.Errorf("testcap: pack query: %w", err)
	}
	var rb []byte
	if resp != nil {
		if rb, err = resp.Pack(); err != nil {
			return fmt.Errorf("testcap: pack response: %w", err)
		}
	}
	port := w.EphemeralPort()
	if err := w.UDP(client, server, port, DNSPort, qb); err != nil {
		return err
	}
	if resp == nil {
		return nil
	}
	return w.UDP(server, client, DNSPort, port, rb)
}

// DNSTCP writes one DNS-over-TCP connection from client (next ephemeral
// port) to server:53: the handshake, then each message with its two-byte
// length prefix (RFC 1035 4.2.2), sent by the client when it is a query and
// by the server when it is a response (Response flag set), cut at the MSS
// when longer; then the FIN/ACK close.
func (w *Writer) DNSTCP(client, server Host, msgs ...*dns.Msg) error {
	if err := checkPair(client, server); err != nil {
		return err
	}
	wire := make([][]byte, len(msgs))
	for i, m := range msgs {
		if m == nil {
			return fmt.Errorf("testcap: DNSTCP message %d is nil", i)
		}
		b, err := m.Pack()
		if err != nil {
			return fmt.Errorf("testcap: pack message %d: %w", i, err)
		}
		if len(b) > 0xffff {
			return fmt.Errorf("testcap: message %d is %d bytes, too long for TCP framing", i, len(b))
		}
		wire[i] = binary.BigEndian.AppendUint16(make([]byte, 0, 2+len(b)), uint16(len(b)))
		wire[i] = append(wire[i], b...)
	}
	c := w.newConn(client, server, w.EphemeralPort(), DNSPort)
	if err := c.open(); err != nil {
		return err
	}
	for i, b := range wire {
		if err := c.data(!msgs[i].Response, b, c.mss); err != nil {
			return err
		}
	}
	return c.close()
}

// Query returns a standard query (RD set) for name (made fully qualified)
// and qtype, class IN, with the given id.
func Query(name string, qtype uint16, id uint16) *dns.Msg {
	m := new(dns.Msg)
	m.Id = id
	m.RecursionDesired = true
	m.Question = []dns.Question{{Name: dns.Fqdn(name), Qtype: qtype, Qclass: dns.ClassINET}}
	return m
}

// Reply returns the answer to q from a recursive resolver: same id and
// question, QR, RD (as in q) and RA set, NOERROR, with rrs as the answer
// section.
func Reply(q *dns.Msg, rrs ...dns.RR) *dns.Msg {
	m := new(dns.Msg)
	m.SetReply(q)
	m.RecursionAvailable = true
	m.Answer = rrs
	return m
}

// NXDomain returns an NXDOMAIN answer to q. When zone is not empty the
// authority section holds a plausible SOA for it (negative TTL 300); "."
// gives the root zone's.
func NXDomain(q *dns.Msg, zone string) *dns.Msg {
	m := Reply(q)
	m.Rcode = dns.RcodeNameError
	if zone == "" {
		return m
	}
	z := dns.Fqdn(zone)
	ns, mbox := "ns1."+z, "hostmaster."+z
	if z == "." {
		ns, mbox = "a.root-servers.net.", "nstld.verisign-grs.com."
	}
	m.Ns = []dns.RR{&dns.SOA{
		Hdr:     dns.RR_Header{Name: z, Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: 300},
		Ns:      ns,
		Mbox:    mbox,
		Serial:  2026110201,
		Refresh: 3600,
		Retry:   900,
		Expire:  604800,
		Minttl:  300,
	}}
	return m
}

// A returns an address record for name: an A record when ip is an IPv4
// literal, an AAAA record when it is IPv6. It panics if ip does not parse.
func A(name, ip string, ttl uint32) dns.RR {
	addr := netip.MustParseAddr(ip)
	hdr := dns.RR_Header{Name: dns.Fqdn(name), Class: dns.ClassINET, Ttl: ttl}
	if addr.Is4() {
		hdr.Rrtype = dns.TypeA
		return &dns.A{Hdr: hdr, A: net.IP(addr.AsSlice())}
	}
	hdr.Rrtype = dns.TypeAAAA
	return &dns.AAAA{Hdr: hdr, AAAA: net.IP(addr.AsSlice())}
}

// CNAME returns a CNAME record name -> target.
func CNAME(name, target string, ttl uint32) dns.RR {
	return &dns.CNAME{
		Hdr:    dns.RR_Header{Name: dns.Fqdn(name), Rrtype: dns.TypeCNAME, Class: dns.ClassINET, Ttl: ttl},
		Target: dns.Fqdn(target),
	}
}

// SRV returns an SRV record for name.
func SRV(name string, ttl uint32, priority, weight, port uint16, target string) dns.RR {
	return &dns.SRV{
		Hdr:      dns.RR_Header{Name: dns.Fqdn(name), Rrtype: dns.TypeSRV, Class: dns.ClassINET, Ttl: ttl},
		Priority: priority,
		Weight:   weight,
		Port:     port,
		Target:   dns.Fqdn(target),
	}
}
