package extract

import (
	"errors"
	"iter"
)

// Errors returned by ParseClientHello.
var (
	ErrNotTLS     = errors.New("extract: not a TLS ClientHello")
	ErrIncomplete = errors.New("extract: ClientHello incomplete") // more bytes needed
	ErrMalformed  = errors.New("extract: malformed ClientHello")
)

const (
	recordTypeHandshake      = 22
	handshakeTypeClientHello = 1
	recordHeaderLen          = 5
	handshakeHeaderLen       = 4

	// maxRecordLen is the TLSCiphertext bound (2^14 + 2048). Plaintext
	// records may not exceed 2^14, but being lenient here costs nothing and
	// anything longer is certainly not TLS.
	maxRecordLen = 1<<14 + 2048

	// maxClientHelloLen is the largest body the ClientHello structure can
	// describe (version, random, session_id<0..32>, cipher_suites<2..2^16-2>,
	// compression_methods<1..2^8-1>, extensions<0..2^16-1>). A larger
	// handshake length is a lie; rejecting it early stops a reassembler from
	// waiting for up to 16 MiB.
	maxClientHelloLen = 2 + 32 + 1 + 32 + 2 + (1<<16 - 2) + 1 + 255 + 2 + (1<<16 - 1)

	// sslv2MinLen is the smallest SSLv2 CLIENT-HELLO body: 9 header bytes,
	// one 3-byte cipher spec and a 16-byte challenge.
	sslv2MinLen = 9 + 3 + 16
)

// Extension types the sensor interprets.
const (
	extServerName        = 0x0000
	extALPN              = 0x0010
	extSupportedVersions = 0x002b
	extECH               = 0xfe0d
	extESNI              = 0xffce
)

// ClientHello is what the sensor reads from a TLS ClientHello. Slices alias
// the parsed input (or the scratch buffer when the message was fragmented
// across records) and are capped, so appending to them copies.
type ClientHello struct {
	SSLv2             bool   // SSLv2-format (record header with high bit set) hello: no extensions, no SNI
	RecordVersion     uint16 // from the first record header (0 for SSLv2)
	Version           uint16 // legacy_version in the ClientHello body
	SNI               []byte // first host_name entry of server_name (ext 0), nil when absent; raw bytes, see AppendName
	ServerNames       int    // number of host_name entries
	ServerNameList    []byte // raw server_name_list of ext 0 (without its length); iterate with HostNames
	ALPN              []byte // raw protocol_name_list of ext 16 (without its 2-byte length); iterate with ALPNProtocols
	SupportedVersions []byte // raw list of ext 43 (without its 1-byte length)
	CipherSuites      []byte // raw cipher_suites vector (without length); 3-byte cipher specs when SSLv2
	Extensions        []byte // raw extensions block (without its 2-byte length); nil when the hello has none, empty when the block is empty
	ECH               bool   // encrypted_client_hello (0xfe0d) present: SNI is the outer/public name
	ESNI              bool   // draft encrypted_server_name (0xffce) present
	OffersTLS13       bool   // supported_versions lists 0x0304 or a TLS 1.3 draft (0x7fxx)
}

// Reset clears h so it holds no reference to a previous input.
func (h *ClientHello) Reset() { *h = ClientHello{} }

// ALPNProtocols iterates over the protocol names in h.ALPN, in order. The
// list was validated by ParseClientHello; should h have been filled by hand
// the iteration stops at the first inconsistent length. It does not allocate.
func (h *ClientHello) ALPNProtocols() iter.Seq[[]byte] {
	list := h.ALPN
	return func(yield func([]byte) bool) {
		for len(list) > 0 {
			n := int(list[0])
			if n == 0 || len(list) < 1+n {
				return
			}
			if !yield(list[1 : 1+n : 1+n]) {
				return
			}
			list = list[1+n:]
		}
	}
}

// HostNames iterates over every host_name entry of the server_name
// extension, in order (RFC 6066 allows one per type, but a hostile client
// may send several: each is a name to match). It does not allocate.
func (h *ClientHello) HostNames() iter.Seq[[]byte] {
	list := h.ServerNameList
	return func(yield func([]byte) bool) {
		for len(list) >= 3 {
			typ, n := list[0], int(list[1])<<8|int(list[2])
			if len(list) < 3+n {
				return
			}
			name := list[3 : 3+n : 3+n]
			list = list[3+n:]
			if typ == 0 && !yield(name) {
				return
			}
		}
	}
}

// IsClientHelloStart reports whether p starts like a TLS handshake record
// carrying a ClientHello (content type 22, version major 3, minor 0..4,
// record length at most 2^14+2048, and handshake type 1 when the 6th byte is
// present and the record is not empty) or an SSLv2-format ClientHello (2-byte
// header with the high bit set and a plausible length, message type 1,
// version 0x0002 or 0x03xx). It needs at least 3 bytes (5 for SSLv2).
//
// It is cheap, meant to run on the first bytes of TCP payloads on any port:
// ports are not trusted.
func IsClientHelloStart(p []byte) bool {
	if len(p) < 3 {
		return false
	}
	if p[0] == recordTypeHandshake {
		if p[1] != 3 || p[2] > 4 {
			return false
		}
		if len(p) < 5 {
			return true
		}
		n := int(p[3])<<8 | int(p[4])
		if n > maxRecordLen {
			return false
		}
		// An empty first record is tolerated by ParseClientHello; then
		// the 6th byte belongs to the next record header.
		return n == 0 || len(p) < 6 || p[5] == handshakeTypeClientHello
	}
	if p[0]&0x80 != 0 {
		if len(p) < 5 || p[2] != handshakeTypeClientHello {
			return false
		}
		if int(p[0]&0x7f)<<8|int(p[1]) < sslv2MinLen {
			return false
		}
		return p[3] == 0 && p[4] == 2 || p[3] == 3
	}
	return false
}

// ParseClientHello parses a ClientHello starting at a TLS record header in p
// into h and returns scratch, possibly grown.
//
// When the handshake message sits in the first record, h aliases p and
// scratch is not touched. When it is fragmented across consecutive handshake
// records (empty records included), the fragments are gathered into
// scratch[:0], which grows as needed, and h aliases the returned buffer: pass
// it back in on the next call to avoid allocating, but not while h is still
// in use. Bytes in p after the ClientHello are ignored.
//
// It returns ErrIncomplete when p ends before the ClientHello does (retry
// with more bytes), ErrNotTLS when p does not start with a handshake record
// holding a ClientHello, and ErrMalformed for inconsistent lengths, records
// of another type interleaved with the fragments, or duplicates of the
// extensions it interprets (RFC 8446 forbids them and servers reject them, so
// there is no single right answer to report). SSLv2-format ClientHellos are
// accepted: SSLv2 is set and there are no extensions, hence no SNI.
//
// Only complete lengths are trusted: every prefix of a valid hello yields
// ErrIncomplete. On error, h is reset.
func ParseClientHello(p []byte, scratch []byte, h *ClientHello) ([]byte, error) {
	h.Reset()
	var err error
	if len(p) > 0 && p[0]&0x80 != 0 {
		err = parseSSLv2(p, h)
	} else {
		scratch, err = parseTLSRecords(p, scratch, h)
	}
	if err != nil {
		h.Reset()
	}
	return scratch, err
}

func parseTLSRecords(p []byte, scratch []byte, h *ClientHello) ([]byte, error) {
	// First pass: walk the records without copying until the whole
	// handshake message is known to be present. A reassembler retries with
	// a growing p, so an incomplete message must cost no copy.
	var hdr [handshakeHeaderLen]byte // the handshake header may itself be split
	got, need := 0, -1
	var first []byte
	for off, i := 0, 0; ; i++ {
		frag, next, err := nextFragment(p, off)
		if err != nil {
			if i > 0 && err == ErrNotTLS {
				err = ErrMalformed // a non-handshake record inside the message
			}
			return scratch, err
		}
		if i == 0 {
			h.RecordVersion = uint16(p[1])<<8 | uint16(p[2])
			first = frag
		}
		for j := 0; got+j < handshakeHeaderLen && j < len(frag); j++ {
			hdr[got+j] = frag[j]
		}
		got += len(frag)
		if got > 0 && hdr[0] != handshakeTypeClientHello {
			return scratch, ErrNotTLS
		}
		if need < 0 && got >= handshakeHeaderLen {
			n := int(hdr[1])<<16 | int(hdr[2])<<8 | int(hdr[3])
			if n > maxClientHelloLen {
				return scratch, ErrMalformed
			}
			need = handshakeHeaderLen + n
		}
		if need >= 0 && got >= need {
			break
		}
		if next < 0 {
			return scratch, ErrIncomplete
		}
		off = next // each round consumes at least a 5-byte header: terminates
	}

	var msg []byte
	if len(first) >= need {
		msg = first[:need]
	} else {
		// Second pass: gather the fragments; the first pass proved they
		// are all there, the checks only guard against a logic slip.
		scratch = scratch[:0]
		for off := 0; len(scratch) < need; {
			frag, next, err := nextFragment(p, off)
			if err != nil || len(frag) == 0 && next < 0 {
				return scratch, ErrMalformed
			}
			scratch = append(scratch, frag[:min(len(frag), need-len(scratch))]...)
			if next < 0 {
				break
			}
			off = next
		}
		if len(scratch) < need {
			return scratch, ErrMalformed
		}
		msg = scratch[:need]
	}
	return scratch, parseClientHelloBody(msg[handshakeHeaderLen:], h)
}

// nextFragment returns the payload of the handshake record at p[off:],
// truncated to the end of p, and the offset of the following record, or -1
// when p ends inside this record's payload. Its errors judge only the bytes
// present, so a prefix of a valid record is never rejected.
func nextFragment(p []byte, off int) (frag []byte, next int, err error) {
	r := p[off:]
	switch {
	case len(r) == 0:
		return nil, -1, ErrIncomplete
	case r[0] != recordTypeHandshake:
		return nil, -1, ErrNotTLS
	case len(r) >= 2 && r[1] != 3:
		return nil, -1, ErrNotTLS
	case len(r) >= 3 && r[2] > 4:
		return nil, -1, ErrNotTLS
	case len(r) < recordHeaderLen:
		return nil, -1, ErrIncomplete
	}
	n := int(r[3])<<8 | int(r[4])
	if n > maxRecordLen {
		return nil, -1, ErrMalformed
	}
	r = r[recordHeaderLen:]
	if len(r) < n {
		return r, -1, nil
	}
	return r[:n], off + recordHeaderLen + n, nil
}

// parseClientHelloBody parses the ClientHello body b (after the 4-byte
// handshake header), whose length is exact: overruns and trailing bytes are
// both ErrMalformed.
func parseClientHelloBody(b []byte, h *ClientHello) error {
	if len(b) < 2+32+1 || b[0] != 3 {
		return ErrMalformed
	}
	h.Version = uint16(b[0])<<8 | uint16(b[1])
	b = b[2+32:] // version, random

	sid := int(b[0])
	if sid > 32 || len(b) < 1+sid+2 {
		return ErrMalformed
	}
	b = b[1+sid:]

	cs := int(b[0])<<8 | int(b[1])
	if cs < 2 || cs&1 != 0 || len(b) < 2+cs+1 {
		return ErrMalformed
	}
	h.CipherSuites = b[2 : 2+cs : 2+cs]
	b = b[2+cs:]

	cm := int(b[0])
	if cm < 1 || len(b) < 1+cm {
		return ErrMalformed
	}
	b = b[1+cm:]

	if len(b) == 0 {
		return nil // no extensions block: SSL 3.0 / early TLS clients
	}
	if len(b) < 2 || int(b[0])<<8|int(b[1]) != len(b)-2 {
		return ErrMalformed
	}
	h.Extensions = b[2:len(b):len(b)]
	return parseExtensions(h.Extensions, h)
}

func parseExtensions(b []byte, h *ClientHello) error {
	var seen uint8
	for len(b) > 0 {
		if len(b) < 4 {
			return ErrMalformed
		}
		typ := uint16(b[0])<<8 | uint16(b[1])
		n := int(b[2])<<8 | int(b[3])
		if len(b) < 4+n {
			return ErrMalformed
		}
		data := b[4 : 4+n : 4+n]
		b = b[4+n:]

		var bit uint8
		switch typ {
		case extServerName:
			bit = 1 << 0
		case extALPN:
			bit = 1 << 1
		case extSupportedVersions:
			bit = 1 << 2
		case extECH:
			bit = 1 << 3
		case extESNI:
			bit = 1 << 4
		default:
			continue // GREASE and everything else: kept raw in Extensions
		}
		if seen&bit != 0 {
			return ErrMalformed
		}
		seen |= bit

		var err error
		switch typ {
		case extServerName:
			err = parseServerName(data, h)
		case extALPN:
			err = parseALPN(data, h)
		case extSupportedVersions:
			err = parseSupportedVersions(data, h)
		case extECH:
			h.ECH = true
		case extESNI:
			h.ESNI = true
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// parseServerName reads the ServerNameList (RFC 6066 §3). Entries of a name
// type other than host_name(0) are skipped assuming the same 2-byte length
// prefix, as all deployed encoders do.
func parseServerName(data []byte, h *ClientHello) error {
	if len(data) == 0 {
		return nil // empty extension, as in a ServerHello: no names
	}
	if len(data) < 2 || int(data[0])<<8|int(data[1]) != len(data)-2 {
		return ErrMalformed
	}
	h.ServerNameList = data[2:len(data):len(data)]
	for l := data[2:]; len(l) > 0; {
		if len(l) < 3 {
			return ErrMalformed
		}
		typ := l[0]
		n := int(l[1])<<8 | int(l[2])
		if len(l) < 3+n {
			return ErrMalformed
		}
		name := l[3 : 3+n : 3+n]
		l = l[3+n:]
		if typ != 0 {
			continue
		}
		if h.ServerNames == 0 {
			h.SNI = name
		}
		h.ServerNames++
	}
	return nil
}

// parseALPN validates the ProtocolNameList (RFC 7301) once, so that
// iterating it later needs no error path.
func parseALPN(data []byte, h *ClientHello) error {
	if len(data) < 2 || int(data[0])<<8|int(data[1]) != len(data)-2 {
		return ErrMalformed
	}
	list := data[2:]
	for l := list; len(l) > 0; {
		n := int(l[0])
		if n == 0 || len(l) < 1+n {
			return ErrMalformed
		}
		l = l[1+n:]
	}
	h.ALPN = list
	return nil
}

func parseSupportedVersions(data []byte, h *ClientHello) error {
	if len(data) < 1 || int(data[0]) != len(data)-1 || data[0]&1 != 0 {
		return ErrMalformed
	}
	h.SupportedVersions = data[1:]
	for v := h.SupportedVersions; len(v) >= 2; v = v[2:] {
		if v[0] == 3 && v[1] == 4 || v[0] == 0x7f {
			h.OffersTLS13 = true
		}
	}
	return nil
}

// parseSSLv2 parses an SSLv2-format CLIENT-HELLO (RFC 6101 appendix E.2,
// RFC 5246 appendix E.2) with its 2-byte record header. Like the TLS path it
// judges only the bytes present, so prefixes yield ErrIncomplete.
func parseSSLv2(p []byte, h *ClientHello) error {
	if len(p) < 2 {
		return ErrIncomplete
	}
	n := int(p[0]&0x7f)<<8 | int(p[1])
	if n < sslv2MinLen {
		return ErrNotTLS
	}
	if len(p) >= 3 && p[2] != handshakeTypeClientHello {
		return ErrNotTLS
	}
	if len(p) >= 4 && p[3] != 0 && p[3] != 3 {
		return ErrNotTLS
	}
	if len(p) >= 5 && p[3] == 0 && p[4] != 2 {
		return ErrNotTLS
	}
	if len(p) < 2+n {
		return ErrIncomplete
	}
	b := p[2 : 2+n]
	csl := int(b[3])<<8 | int(b[4])
	sidl := int(b[5])<<8 | int(b[6])
	chl := int(b[7])<<8 | int(b[8])
	if 9+csl+sidl+chl != n || csl == 0 || csl%3 != 0 || sidl > 32 || chl < 16 || chl > 32 {
		return ErrMalformed
	}
	h.SSLv2 = true
	h.Version = uint16(b[1])<<8 | uint16(b[2])
	h.CipherSuites = b[9 : 9+csl : 9+csl]
	return nil
}
