package extract

import (
	"encoding/binary"
	"net/netip"
)

// DNSScan is what matching needs from a DNS message, read in place by
// ScanDNS: the question's name and the answer section's names and
// addresses, each as ParseDNS and DNSName would give it. The slices are
// the scan's own buffers, valid until the next ScanDNS with the same scan.
type DNSScan struct {
	Response bool
	QName    []byte
	Answers  []ScannedRR

	buf   []byte
	spans []scanSpan
}

// ScannedRR is one record of the answer section.
type ScannedRR struct {
	Type   uint16
	Name   []byte     // owner
	Target []byte     // CNAME target
	Addr   netip.Addr // A, AAAA (IPv4-mapped unmapped, as the pipeline does)
}

type scanSpan struct{ name, target [2]int }

// DNS record types the scan reads.
const (
	scanA     = 1
	scanCNAME = 5
	scanSOA   = 6
	scanAAAA  = 28
	scanOPT   = 41
)

// ScanDNS reads the message p as ParseDNS would, without allocating once
// the scan's buffers have grown. Most DNS messages on a network match no
// rule, and unpacking each into miekg/dns records cost a sixth of a
// worker's time, so the worker matches what ScanDNS reads and unpacks
// only messages that match.
//
// It returns true only for a message that ParseDNS unpacks in full,
// without error, to the same question name, answer owners, CNAME targets
// and addresses (FuzzScanDNS holds it to that): exactly one question,
// whole; names that need no escaping in the answer section and question
// (letters, digits, '-', '_'); records of type A, AAAA, CNAME, SOA, and
// OPT without options; nothing malformed. For anything else it returns
// false and the caller uses ParseDNS.
func ScanDNS(p []byte, s *DNSScan) bool {
	s.buf, s.spans, s.Answers, s.QName = s.buf[:0], s.spans[:0], s.Answers[:0], nil
	if len(p) < 12 || binary.BigEndian.Uint16(p[4:]) != 1 {
		return false
	}
	s.Response = p[2]&0x80 != 0
	off, ok := s.name(p, 12, true)
	if !ok || off+4 > len(p) {
		return false
	}
	off += 4
	qname := [2]int{0, len(s.buf)}
	counts := [3]int{int(binary.BigEndian.Uint16(p[6:])), int(binary.BigEndian.Uint16(p[8:])), int(binary.BigEndian.Uint16(p[10:]))}
	for sec, n := range counts {
		answer := sec == 0
		for range n {
			if off == len(p) {
				// miekg/dns stops without error where the message ends on
				// a record boundary: the counts were a lie.
				break
			}
			var sp scanSpan
			sp.name[0] = len(s.buf)
			if off, ok = s.name(p, off, answer); !ok || off+10 > len(p) {
				return false
			}
			sp.name[1] = len(s.buf)
			typ := binary.BigEndian.Uint16(p[off:])
			rdlen := int(binary.BigEndian.Uint16(p[off+8:]))
			off += 10
			end := off + rdlen
			if end > len(p) {
				return false
			}
			// Records are read within their data, as miekg/dns reads them.
			msg := p[:end]
			var addr netip.Addr
			switch {
			case typ == scanOPT && rdlen == 0:
			case rdlen == 0:
				return false // an empty record: rare, left to ParseDNS
			case typ == scanA && rdlen == 4:
				addr = netip.AddrFrom4([4]byte(msg[off:end]))
			case typ == scanAAAA && rdlen == 16:
				addr = netip.AddrFrom16([16]byte(msg[off:end])).Unmap()
			case typ == scanCNAME:
				sp.target[0] = len(s.buf)
				if next, ok := s.name(msg, off, answer); !ok || next != end {
					return false
				}
				sp.target[1] = len(s.buf)
			case typ == scanSOA:
				if !scanSOAData(s, msg, off) {
					return false
				}
			default:
				return false
			}
			off = end
			if answer {
				s.spans = append(s.spans, sp)
				s.Answers = append(s.Answers, ScannedRR{Type: typ, Addr: addr})
			}
		}
	}
	// Slices are taken last: appending may have moved the buffer.
	s.QName = s.buf[qname[0]:qname[1]]
	for i, sp := range s.spans {
		a := &s.Answers[i]
		a.Name = s.buf[sp.name[0]:sp.name[1]]
		if sp.target[1] > 0 {
			a.Target = s.buf[sp.target[0]:sp.target[1]]
		}
	}
	return true
}

// scanSOAData checks SOA data as miekg/dns unpacks it: two names, then up
// to five 32-bit fields, stopping without error wherever the data ends.
func scanSOAData(s *DNSScan, msg []byte, off int) bool {
	var ok bool
	for range 2 {
		if off == len(msg) {
			return true
		}
		if off, ok = s.name(msg, off, false); !ok {
			return false
		}
	}
	for range 5 {
		if off == len(msg) {
			return true
		}
		if off+4 > len(msg) {
			return false
		}
		off += 4
	}
	return off == len(msg)
}

// name reads the name at off in msg as miekg/dns's UnpackDomainName does
// (compression pointers followed, at most 126 of them, at most 255 bytes
// on the wire, reserved label types refused) and returns the offset after
// it. With keep set it appends the name's DNSName form to s.buf, and
// refuses a name with a byte that the presentation format would escape.
func (s *DNSScan) name(msg []byte, off int, keep bool) (next int, ok bool) {
	const maxPointers = 126 // miekg/dns: (255+1)/2 - 2
	start, budget, ptr := len(s.buf), 255, 0
	next = -1
	for {
		if off >= len(msg) {
			return 0, false
		}
		c := int(msg[off])
		off++
		switch c & 0xC0 {
		case 0x00:
			if c == 0 {
				if next < 0 {
					next = off
				}
				if keep {
					if len(s.buf) == start {
						s.buf = append(s.buf, '.') // the root
					} else {
						s.buf = s.buf[:len(s.buf)-1]
					}
				}
				return next, true
			}
			if off+c > len(msg) {
				return 0, false
			}
			if budget -= c + 1; budget <= 0 {
				return 0, false
			}
			if keep {
				for _, b := range msg[off : off+c] {
					switch {
					case 'a' <= b && b <= 'z', '0' <= b && b <= '9', b == '-', b == '_':
					case 'A' <= b && b <= 'Z':
						b += 'a' - 'A'
					default:
						return 0, false
					}
					s.buf = append(s.buf, b)
				}
				s.buf = append(s.buf, '.')
			}
			off += c
		case 0xC0:
			if off >= len(msg) {
				return 0, false
			}
			if ptr == 0 {
				next = off + 1
			}
			if ptr++; ptr > maxPointers {
				return 0, false
			}
			off = (c&0x3F)<<8 | int(msg[off])
		default:
			return 0, false
		}
	}
}
