package extract

import (
	"crypto/sha256"
	"slices"
)

// JA4 TLS client fingerprint (FoxIO, technical_details/JA4.md in
// github.com/FoxIO-LLC/ja4):
//
//	a_b_c
//	a: transport ('t' TLS over TCP, 'q' QUIC, 'd' DTLS), 2-character version,
//	   'd' (SNI present) or 'i', 2-digit cipher count, 2-digit extension count,
//	   first and last characters of the first ALPN value
//	b: first 12 hex digits of sha256 of the sorted cipher list
//	c: first 12 hex digits of sha256 of the sorted extension list (without
//	   SNI and ALPN), then "_" and the signature algorithms in wire order
//
// Lists are lower-case 4-digit hex values joined by ",". GREASE values
// (RFC 8701: 0x?a?a with both bytes equal) are ignored everywhere: in the
// cipher suites, the extension types, supported_versions and the
// signature algorithms (the last as FoxIO's reference implementations do
// since the GREASE-in-signature_algorithms fix, ja4 issue #305).
//
// Choices where the specification is silent, all documented on AppendJA4:
// duplicated extension types (which ParseClientHello allows for the types it
// does not interpret) are counted and listed as often as they occur, as
// FoxIO's Rust tool and Wireshark do; only the first signature_algorithms
// extension is read.

const (
	ja4ExtSignatureAlgorithms = 0x000d

	// ja4SmallList is the capacity of the on-stack buffer used to sort a
	// cipher or extension list. Real clients send about 10 to 60 of each;
	// longer lists take a slower path with a 64 KiB buffer (still no heap
	// allocation).
	ja4SmallList = 256

	// ja4MaxList bounds the values of one list that are fingerprinted. A
	// ClientHello accepted by ParseClientHello has at most 32767 cipher
	// suites and 16383 extensions, so only a hand-filled ClientHello can
	// exceed it; the excess is ignored.
	ja4MaxList = 1 << 15

	ja4HashHex = 12 // hex digits kept from each sha256

	ja4HexDigits = "0123456789abcdef"
)

// AppendJA4 appends the JA4 fingerprint of h (e.g.
// "t13d1516h2_8daaf6152771_e5627efa2ab1") to dst and returns the extended
// buffer. transport is 't' (TLS over TCP), 'q' (QUIC) or 'd' (DTLS); any other
// value is written as 't'.
//
// It reads the raw fields ParseClientHello fills: Version, SupportedVersions,
// CipherSuites, Extensions (for the extension types and the
// signature_algorithms list), ALPN and SNI. The version is the highest
// non-GREASE value of supported_versions when that extension is present, else
// the legacy version (also when supported_versions holds only GREASE); DTLS
// versions rank in protocol order (0xfefc, DTLS 1.3, above 0xfefd), and
// values without a JA4 code (e.g. TLS 1.3 drafts 0x7fxx) give "00", as in
// FoxIO's tools. The SNI mark is 'd' when a server_name extension is present,
// even an empty one, or when h.SNI is set. The ALPN characters are the first
// and last bytes of the first protocol name when both are ASCII letters or
// digits (upper case kept), else the first hex digit of the first byte and
// the last hex digit of the last byte; "00" without ALPN. A GREASE ALPN
// identifier (RFC 8701, e.g. 0x0a 0x0a) is taken literally, as by FoxIO's
// tools, giving "0a".
//
// An SSLv2-format hello (h.SSLv2) has a version code from its version field
// (0x0002 gives "s2", an SSLv2-compatible hello from a TLS 1.0 client "10"),
// no SNI, no ALPN and no extensions, and its 3-byte cipher specs are not TLS
// cipher suites, so it fingerprints as e.g. "ts2i000000_000000000000_000000000000":
// like FoxIO's tshark-based tools, which see no cipher suite field in such a
// hello.
//
// h is treated as hostile: inconsistent lengths in a hand-filled ClientHello
// never cause a panic; the extension walk stops at the first extension that
// overruns the block, an odd trailing byte of a 2-byte list is ignored, and a
// signature_algorithms list longer than its extension is cut to the
// extension. A nil h appends nothing.
//
// AppendJA4 does not allocate unless dst must grow (35 bytes are appended).
func AppendJA4(dst []byte, h *ClientHello, transport byte) []byte {
	if h == nil {
		return dst
	}
	dst = ja4AppendA(dst, h, transport)
	dst = append(dst, '_')
	dst = ja4AppendList(dst, h, false, false)
	dst = append(dst, '_')
	return ja4AppendList(dst, h, true, false)
}

// AppendJA4R appends the raw ("ja4_r") form of the JA4 fingerprint of h to dst,
// as FoxIO's ja4 tool prints it with -r: the same first part, then the sorted
// cipher list, then the sorted extension list without SNI and ALPN, followed
// by "_" and the signature algorithms in wire order when there are any, e.g.
// "t13d1516h2_002f,0035,…,cca9_0005,000a,…,ff01_0403,0804,…". Empty lists are
// empty strings. It follows the same rules as AppendJA4 and does not allocate
// unless dst must grow.
func AppendJA4R(dst []byte, h *ClientHello, transport byte) []byte {
	if h == nil {
		return dst
	}
	dst = ja4AppendA(dst, h, transport)
	dst = append(dst, '_')
	dst = ja4AppendList(dst, h, false, true)
	dst = append(dst, '_')
	return ja4AppendList(dst, h, true, true)
}

// ja4IsGREASE reports whether v is a GREASE value (RFC 8701).
func ja4IsGREASE(v uint16) bool { return v&0x0f0f == 0x0a0a && v>>8 == v&0xff }

// ja4NextExt splits the first extension off the block b. ok is false at the
// end of the block and at an extension that overruns it.
func ja4NextExt(b []byte) (typ uint16, data, rest []byte, ok bool) {
	if len(b) < 4 {
		return 0, nil, nil, false
	}
	n := int(b[2])<<8 | int(b[3])
	if len(b) < 4+n {
		return 0, nil, nil, false
	}
	return uint16(b[0])<<8 | uint16(b[1]), b[4 : 4+n], b[4+n:], true
}

// ja4AppendA appends the first part: transport, version, SNI mark, counts
// and ALPN characters.
func ja4AppendA(dst []byte, h *ClientHello, transport byte) []byte {
	switch transport {
	case 'q', 'd':
	default:
		transport = 't'
	}

	ciphers := 0
	if !h.SSLv2 {
		for cs := h.CipherSuites; len(cs) >= 2; cs = cs[2:] {
			if !ja4IsGREASE(uint16(cs[0])<<8 | uint16(cs[1])) {
				ciphers++
			}
		}
	}
	exts, sni := 0, h.SNI != nil
	for b := h.Extensions; ; {
		typ, _, rest, ok := ja4NextExt(b)
		if !ok {
			break
		}
		b = rest
		if ja4IsGREASE(typ) {
			continue
		}
		exts++
		if typ == extServerName {
			sni = true
		}
	}

	ver := ja4Version(h)
	mark := byte('i')
	if sni {
		mark = 'd'
	}
	first, last := ja4ALPNChars(h)
	return append(dst, transport, ver[0], ver[1], mark,
		byte('0'+min(ciphers, 99)/10), byte('0'+min(ciphers, 99)%10),
		byte('0'+min(exts, 99)/10), byte('0'+min(exts, 99)%10),
		first, last)
}

// ja4Version returns the 2-character version code.
func ja4Version(h *ClientHello) string {
	v := h.Version
	if h.SupportedVersions != nil && !h.SSLv2 {
		best, found := uint16(0), false
		for sv := h.SupportedVersions; len(sv) >= 2; sv = sv[2:] {
			x := uint16(sv[0])<<8 | uint16(sv[1])
			if ja4IsGREASE(x) {
				continue
			}
			if !found || ja4VersionRank(x) > ja4VersionRank(best) {
				best, found = x, true
			}
		}
		if found {
			v = best
		}
	}
	switch v {
	case 0x0304:
		return "13"
	case 0x0303:
		return "12"
	case 0x0302:
		return "11"
	case 0x0301:
		return "10"
	case 0x0300:
		return "s3"
	case 0x0002:
		return "s2"
	case 0xfeff:
		return "d1"
	case 0xfefd:
		return "d2"
	case 0xfefc:
		return "d3"
	}
	return "00"
}

// ja4VersionRank orders protocol versions: numerically, except that DTLS
// versions (0xfexx) count down (0xfefc, DTLS 1.3, is newer than 0xfefd).
func ja4VersionRank(v uint16) uint16 {
	if v>>8 == 0xfe {
		return 0xfe00 | (0xff - v&0xff)
	}
	return v
}

// ja4ALPNChars returns the ALPN characters of the first part.
func ja4ALPNChars(h *ClientHello) (byte, byte) {
	for p := range h.ALPNProtocols() {
		f, l := p[0], p[len(p)-1]
		if ja4IsAlnum(f) && ja4IsAlnum(l) {
			return f, l
		}
		return ja4HexDigits[f>>4], ja4HexDigits[l&0x0f]
	}
	return '0', '0'
}

func ja4IsAlnum(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
}

// ja4AppendList appends part b (exts false: the cipher list) or part c (exts
// true: the extension list and the signature algorithms), hashed or raw.
func ja4AppendList(dst []byte, h *ClientHello, exts, raw bool) []byte {
	var buf [ja4SmallList]uint16
	n := ja4Collect(h, exts, buf[:])
	if n > len(buf) {
		return ja4AppendLongList(dst, h, exts, raw)
	}
	return ja4Emit(dst, buf[:n], ja4SigAlgs(h, exts), raw)
}

// ja4AppendLongList is ja4AppendList for lists longer than ja4SmallList. It
// is kept out of line so that only such hellos pay for its 64 KiB frame.
//
//go:noinline
func ja4AppendLongList(dst []byte, h *ClientHello, exts, raw bool) []byte {
	var buf [ja4MaxList]uint16
	n := min(ja4Collect(h, exts, buf[:]), len(buf))
	return ja4Emit(dst, buf[:n], ja4SigAlgs(h, exts), raw)
}

// ja4Collect stores the values of the cipher list (exts false) or of the
// extension list without SNI and ALPN (exts true), GREASE removed, in buf and
// returns how many there are, which may exceed len(buf): then only the first
// len(buf) were stored.
func ja4Collect(h *ClientHello, exts bool, buf []uint16) int {
	n := 0
	if !exts {
		if h.SSLv2 {
			return 0 // 3-byte cipher specs: no TLS cipher suite field
		}
		for cs := h.CipherSuites; len(cs) >= 2; cs = cs[2:] {
			v := uint16(cs[0])<<8 | uint16(cs[1])
			if ja4IsGREASE(v) {
				continue
			}
			if n < len(buf) {
				buf[n] = v
			}
			n++
		}
		return n
	}
	for b := h.Extensions; ; {
		typ, _, rest, ok := ja4NextExt(b)
		if !ok {
			return n
		}
		b = rest
		if typ == extServerName || typ == extALPN || ja4IsGREASE(typ) {
			continue
		}
		if n < len(buf) {
			buf[n] = typ
		}
		n++
	}
}

// ja4SigAlgs returns the raw list (2 bytes per value) of the first
// signature_algorithms extension when exts is set, else nil.
func ja4SigAlgs(h *ClientHello, exts bool) []byte {
	if !exts {
		return nil
	}
	for b := h.Extensions; ; {
		typ, data, rest, ok := ja4NextExt(b)
		if !ok {
			return nil
		}
		b = rest
		if typ != ja4ExtSignatureAlgorithms {
			continue
		}
		if len(data) < 2 {
			return nil
		}
		n := min(int(data[0])<<8|int(data[1]), len(data)-2) &^ 1
		return data[2 : 2+n]
	}
}

// ja4Emit sorts vals and appends their list, followed by "_" and the
// non-GREASE values of sigs if there are any, either as text (raw) or as the
// truncated sha256 of that text ("000000000000" when vals is empty).
func ja4Emit(dst []byte, vals []uint16, sigs []byte, raw bool) []byte {
	slices.Sort(vals)
	var chunk [512]byte
	c := ja4Cursor{vals: vals, sigs: sigs}
	if raw {
		for !c.done() {
			dst = append(dst, chunk[:c.fill(chunk[:])]...)
		}
		return dst
	}
	if len(vals) == 0 {
		return append(dst, "000000000000"...)
	}
	var sum [sha256.Size]byte
	if n := c.fill(chunk[:]); c.done() {
		sum = sha256.Sum256(chunk[:n]) // the usual case: one piece
	} else {
		d := sha256.New()
		d.Write(chunk[:n])
		for !c.done() {
			d.Write(chunk[:c.fill(chunk[:])])
		}
		d.Sum(sum[:0])
	}
	for _, b := range sum[:ja4HashHex/2] {
		dst = append(dst, ja4HexDigits[b>>4], ja4HexDigits[b&0x0f])
	}
	return dst
}

// ja4Cursor renders "v,v,…[_s,s,…]" in pieces, so that lists of any length
// are hashed through a fixed buffer.
type ja4Cursor struct {
	vals    []uint16
	sigs    []byte // raw 2-byte values, GREASE skipped when rendered
	i       int    // next value of vals
	j       int    // next byte of sigs
	sigSeen bool   // a signature algorithm has been rendered
}

func (c *ja4Cursor) done() bool { return c.i >= len(c.vals) && c.j+1 >= len(c.sigs) }

// fill renders as many items as fit into buf (at least 5 bytes long) and
// returns the number of bytes written.
func (c *ja4Cursor) fill(buf []byte) int {
	n := 0
	for ; c.i < len(c.vals) && n+5 <= len(buf); c.i++ {
		if c.i > 0 {
			buf[n] = ','
			n++
		}
		n += ja4PutHex16(buf[n:], c.vals[c.i])
	}
	if c.i < len(c.vals) {
		return n
	}
	for ; c.j+1 < len(c.sigs) && n+5 <= len(buf); c.j += 2 {
		v := uint16(c.sigs[c.j])<<8 | uint16(c.sigs[c.j+1])
		if ja4IsGREASE(v) {
			continue
		}
		if c.sigSeen {
			buf[n] = ','
		} else {
			buf[n] = '_'
			c.sigSeen = true
		}
		n++
		n += ja4PutHex16(buf[n:], v)
	}
	return n
}

// ja4PutHex16 writes v as 4 lower-case hex digits.
func ja4PutHex16(b []byte, v uint16) int {
	_ = b[3]
	b[0] = ja4HexDigits[v>>12]
	b[1] = ja4HexDigits[v>>8&0x0f]
	b[2] = ja4HexDigits[v>>4&0x0f]
	b[3] = ja4HexDigits[v&0x0f]
	return 4
}
