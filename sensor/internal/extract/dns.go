package extract

import (
	"encoding/binary"
	"errors"
	"strconv"
	"strings"

	"github.com/miekg/dns"
)

// ErrNotDNS is returned for bytes that do not hold a DNS message with a
// readable header and question.
var ErrNotDNS = errors.New("extract: not a DNS message")

// ParseDNS unpacks a DNS message into m. A message whose header and
// question unpack but whose later sections do not is returned with
// partial set: the question is still worth reporting.
func ParseDNS(p []byte, m *dns.Msg) (partial bool, err error) {
	if len(p) < 12 || !plausibleDNS(p) {
		return false, ErrNotDNS
	}
	*m = dns.Msg{}
	if err := m.Unpack(p); err != nil {
		// miekg/dns stops at the first bad record but keeps what it had.
		if len(m.Question) == 0 {
			return false, errors.Join(ErrNotDNS, err)
		}
		return true, nil
	}
	return false, nil
}

// DNSName normalises a name from miekg/dns (presentation format, with
// non-printable bytes already escaped as \DDD) for output and matching:
// lower-case, without the trailing dot. The root is ".".
func DNSName(s string) string {
	if len(s) > 1 {
		s = strings.TrimSuffix(s, ".")
	}
	return lowerASCII(s)
}

func lowerASCII(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; 'A' <= c && c <= 'Z' {
			return strings.ToLower(s)
		}
	}
	return s
}

// DNSRData returns the record's data in presentation format, with names
// normalised like DNSName.
func DNSRData(rr dns.RR) string {
	switch r := rr.(type) {
	case *dns.A:
		return r.A.String()
	case *dns.AAAA:
		return r.AAAA.String()
	case *dns.CNAME:
		return DNSName(r.Target)
	case *dns.DNAME:
		return DNSName(r.Target)
	case *dns.NS:
		return DNSName(r.Ns)
	case *dns.PTR:
		return DNSName(r.Ptr)
	}
	var d string
	switch r := rr.(type) {
	case *dns.OPT:
		return "" // a pseudo-record out of place: its String is a multi-line comment
	case *dns.RFC3597:
		// Types miekg/dns knows by name but has no struct for: their
		// String does not start with Header().String().
		d = `\# ` + strconv.Itoa(len(r.Rdata)/2) + " " + r.Rdata
	default:
		d = strings.TrimPrefix(rr.String(), rr.Header().String())
	}
	for i := 0; i < len(d); i++ {
		if d[i] < 0x20 || d[i] > 0x7e {
			// Zone-file text is escaped already; whatever is left
			// (tabs, newlines, raw bytes) is escaped here.
			return string(AppendText(nil, []byte(d), len(d)))
		}
	}
	return d
}

// SplitTCPDNS takes one length-prefixed DNS message (RFC 1035 §4.2.2) off
// the front of a TCP stream. ok is false when buf does not hold a whole
// message yet.
func SplitTCPDNS(buf []byte) (msg, rest []byte, ok bool) {
	if len(buf) < 2 {
		return nil, buf, false
	}
	n := int(binary.BigEndian.Uint16(buf))
	if len(buf) < 2+n {
		return nil, buf, false
	}
	return buf[2 : 2+n], buf[2+n:], true
}

// IsDNSPort reports ports on which UDP and TCP payloads are read as DNS:
// DNS, mDNS and LLMNR use the same message format.
func IsDNSPort(p uint16) bool {
	return p == 53 || p == 5353 || p == 5355
}

// plausibleDNS rejects, without allocating, payloads whose header cannot
// describe a DNS message of their size: every question takes at least 5
// bytes (root name, type, class). Random or foreign bytes on a DNS port
// fail this (the question count is then large) before miekg/dns
// allocates. Record counts are not checked: a message cut short by the
// snap length still has its question read.
func plausibleDNS(p []byte) bool {
	qd := int(p[4])<<8 | int(p[5])
	return qd*5 <= len(p)-12
}
