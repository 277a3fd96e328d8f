package extract

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"math/bits"
)

// Errors of the QUIC Initial parser. ErrMalformed and ErrIncomplete (from
// the ClientHello parser) are reused where they fit.
var (
	ErrNotQUIC            = errors.New("extract: not a QUIC client Initial")
	ErrQUICUndecryptable  = errors.New("extract: QUIC Initial could not be decrypted")
	errQUICNoKeys         = errors.New("extract: QUIC key derivation failed")
	errQUICUnknownVersion = errors.New("extract: QUIC version not supported")
)

// ParseClientHelloMessage parses a ClientHello handshake message (the
// 4-byte handshake header, type 1 and a 24-bit length, then the body)
// without a TLS record layer, as QUIC carries it in CRYPTO frames. Bytes
// after the message are ignored; h aliases msg.
//
// It returns ErrNotTLS when the handshake type is not ClientHello,
// ErrIncomplete when msg is shorter than its header says, and ErrMalformed
// for inconsistent lengths (as ParseClientHello does). On error, h is reset.
func ParseClientHelloMessage(msg []byte, h *ClientHello) error {
	h.Reset()
	if len(msg) > 0 && msg[0] != handshakeTypeClientHello {
		return ErrNotTLS
	}
	if len(msg) < handshakeHeaderLen {
		return ErrIncomplete
	}
	n := int(msg[1])<<16 | int(msg[2])<<8 | int(msg[3])
	if n > maxClientHelloLen {
		return ErrMalformed
	}
	if len(msg) < handshakeHeaderLen+n {
		return ErrIncomplete
	}
	if err := parseClientHelloBody(msg[handshakeHeaderLen:handshakeHeaderLen+n], h); err != nil {
		h.Reset()
		return err
	}
	return nil
}

// QUIC versions whose client Initials are decrypted.
const (
	quicV1      = 0x00000001
	quicV2      = 0x6b3343cf // RFC 9369
	quicDraft23 = 0xff000017
	quicDraft29 = 0xff00001d
	quicDraft34 = 0xff000022
	gquicQ050   = 0x51303530 // "Q050"
	gquicT050   = 0x54303530 // "T050"
	gquicT051   = 0x54303531 // "T051"

	maxQUICCIDLen = 20 // RFC 9000 §17.2, for version 1 and the drafts it covers

	// DefaultQUICCryptoCap is the default bound on the CRYPTO bytes a
	// QUICAssembler gathers for one hello: ordinary ClientHellos are under
	// 2 KiB, post-quantum key shares add about 1.2 KiB.
	DefaultQUICCryptoCap = 16 << 10

	// maxQUICDerivations bounds the key derivations (HKDF, AES and GCM
	// set-up, which allocate) one assembler performs, so that a flow
	// spraying Initials with fresh DCIDs costs AEAD failures, not
	// allocations. A real connection needs two or three (original DCID,
	// Retry SCID, the server's SCID as DCID).
	maxQUICDerivations = 8

	// maxQUICCoalesced bounds the packets read from one datagram. A real
	// one carries at most one per packet type (Initial, 0-RTT, Handshake,
	// then a short header); without a bound, a 64 KiB datagram of tiny
	// Initials would cost a thousand AEAD attempts.
	maxQUICCoalesced = 8
)

// quicFlavour is what a version implies beyond its salt: HKDF labels,
// packet type numbering, frame encoding and the handshake carried.
type quicFlavour uint8

const (
	flavourNone  quicFlavour = iota
	flavourIETF              // v1 and drafts: "quic key" labels, Initial is type 0, RFC 9000 frames, TLS
	flavourV2                // RFC 9369: "quicv2 key" labels, Initial is type 1
	flavourGTLS              // Google T05x: IETF header and Initial protection, gQUIC frames, TLS
	flavourGCHLO             // Google Q050: as T05x, but CRYPTO carries a QUIC-crypto CHLO, not TLS
)

// Initial salts. Sources: RFC 9001 §5.2 (v1), RFC 9369 §3.3.1 (v2), and for
// the drafts and Google versions Wireshark's epan/dissectors/packet-quic.c,
// quic_derive_initial_secrets():
//
//	static const uint8_t handshake_salt_draft_23[20] = { 0xc3, 0xee, 0xf7, 0x12, ...
//	static const uint8_t handshake_salt_draft_29[20] = { 0xaf, 0xbf, 0xec, 0x28, ...
//	static const uint8_t hanshake_salt_draft_q50[20] = { 0x50, 0x45, 0x74, 0xEF, ...
//	static const uint8_t hanshake_salt_draft_t50[20] = { 0x7f, 0xf5, 0x79, 0xe5, ...
//	static const gint8 hanshake_salt_draft_t51[20] = { 0x7a, 0x4e, 0xde, 0xf4, ...
//	...
//	} else if (is_quic_draft_max(version, 28)) { /* draft_23 salt */
//	} else if (is_quic_draft_max(version, 32)) { /* draft_29 salt */
//	} else if (is_quic_draft_max(version, 34)) { /* v1 salt */
//
// So drafts 23–28 share the draft-23 salt, 29–32 the draft-29 one, and 33
// and 34 already use the v1 salt.
var (
	saltV1      = [20]byte{0x38, 0x76, 0x2c, 0xf7, 0xf5, 0x59, 0x34, 0xb3, 0x4d, 0x17, 0x9a, 0xe6, 0xa4, 0xc8, 0x0c, 0xad, 0xcc, 0xbb, 0x7f, 0x0a}
	saltV2      = [20]byte{0x0d, 0xed, 0xe3, 0xde, 0xf7, 0x00, 0xa6, 0xdb, 0x81, 0x93, 0x81, 0xbe, 0x6e, 0x26, 0x9d, 0xcb, 0xf9, 0xbd, 0x2e, 0xd9}
	saltDraft23 = [20]byte{0xc3, 0xee, 0xf7, 0x12, 0xc7, 0x2e, 0xbb, 0x5a, 0x11, 0xa7, 0xd2, 0x43, 0x2b, 0xb4, 0x63, 0x65, 0xbe, 0xf9, 0xf5, 0x02}
	saltDraft29 = [20]byte{0xaf, 0xbf, 0xec, 0x28, 0x99, 0x93, 0xd2, 0x4c, 0x9e, 0x97, 0x86, 0xf1, 0x9c, 0x61, 0x11, 0xe0, 0x43, 0x90, 0xa8, 0x99}
	saltQ050    = [20]byte{0x50, 0x45, 0x74, 0xef, 0xd0, 0x66, 0xfe, 0x2f, 0x9d, 0x94, 0x5c, 0xfc, 0xdb, 0xd3, 0xa7, 0xf0, 0xd3, 0xb5, 0x6b, 0x45}
	saltT050    = [20]byte{0x7f, 0xf5, 0x79, 0xe5, 0xac, 0xd0, 0x72, 0x91, 0x55, 0x80, 0x30, 0x4c, 0x43, 0xa2, 0x36, 0x7c, 0x60, 0x48, 0x83, 0x10}
	saltT051    = [20]byte{0x7a, 0x4e, 0xde, 0xf4, 0xe7, 0xcc, 0xee, 0x5f, 0xa4, 0x50, 0x6c, 0x19, 0x12, 0x4f, 0xc8, 0xcc, 0xda, 0x6e, 0x03, 0x3d}
)

// quicDraftNames are the names of drafts 23..34, indexed from 23.
var quicDraftNames = [...]string{"draft-23", "draft-24", "draft-25", "draft-26", "draft-27", "draft-28",
	"draft-29", "draft-30", "draft-31", "draft-32", "draft-33", "draft-34"}

// quicVersion returns the Initial salt and flavour of a supported version,
// flavourNone otherwise.
func quicVersion(v uint32) (*[20]byte, quicFlavour) {
	switch {
	case v == quicV1:
		return &saltV1, flavourIETF
	case v == quicV2:
		return &saltV2, flavourV2
	case v >= quicDraft23 && v < quicDraft29:
		return &saltDraft23, flavourIETF
	case v >= quicDraft29 && v <= quicDraft29+3:
		return &saltDraft29, flavourIETF
	case v > quicDraft29+3 && v <= quicDraft34:
		return &saltV1, flavourIETF
	case v == gquicT051:
		return &saltT051, flavourGTLS
	case v == gquicT050:
		return &saltT050, flavourGTLS
	case v == gquicQ050:
		return &saltQ050, flavourGCHLO
	}
	return nil, flavourNone
}

// quicVersionName names a supported version for reports: "1", "2",
// "draft-29", "T051"…; "" when unsupported. It does not allocate.
func quicVersionName(v uint32) string {
	switch {
	case v == quicV1:
		return "1"
	case v == quicV2:
		return "2"
	case v >= quicDraft23 && v <= quicDraft34:
		return quicDraftNames[v-quicDraft23]
	case v == gquicT051:
		return "T051"
	case v == gquicT050:
		return "T050"
	case v == gquicQ050:
		return "Q050"
	}
	return ""
}

// Long-header packet types, numbered as in version 1.
const (
	quicTypeInitial = 0
	quicType0RTT    = 1
	quicTypeHandshk = 2
	quicTypeRetry   = 3
)

// quicPacketType returns the v1-numbered type of a long-header first byte.
// RFC 9369 §3.2 rotates the numbering in v2 (Initial is 0b01), so that
// middleboxes ossified on v1 do not see v2 Initials as Initials.
func quicPacketType(b0 byte, fl quicFlavour) uint8 {
	t := b0 >> 4 & 3
	if fl == flavourV2 {
		t = (t + 3) & 3
	}
	return t
}

// IsQUICInitial reports whether p starts with a long-header packet (form
// and fixed bits set) of a supported version whose type is Initial for that
// version, with connection ID lengths of at most 20. It is a few byte
// compares and does not allocate: it runs on every UDP datagram, on any
// port. A server's Initial passes too; it will not decrypt with client keys.
//
// Google QUIC before Q050 sends its CHLO in clear and is not an Initial in
// this sense: see ParseGQUICCHLO.
func IsQUICInitial(p []byte) bool {
	if len(p) < 7 || p[0]&0xc0 != 0xc0 {
		return false
	}
	_, fl := quicVersion(binary.BigEndian.Uint32(p[1:5]))
	if fl == flavourNone || quicPacketType(p[0], fl) != quicTypeInitial {
		return false
	}
	dcil := int(p[5])
	return dcil <= maxQUICCIDLen && len(p) > 6+dcil && p[6+dcil] <= maxQUICCIDLen
}

// quicLong is a parsed long header. dcid aliases the datagram.
type quicLong struct {
	version  uint32
	flavour  quicFlavour
	typ      uint8
	dcid     []byte
	pnOffset int // offset of the (protected) packet number
	end      int // offset just past the packet: the next coalesced one starts here
}

// parseQUICLong reads the long header at the start of p (RFC 9000 §17.2).
// It fails for short headers, unsupported versions, Retry and Version
// Negotiation packets (they have no Length, so nothing follows them) and
// lengths that overrun p.
func parseQUICLong(p []byte, h *quicLong) bool {
	if len(p) < 7 || p[0]&0xc0 != 0xc0 {
		return false
	}
	h.version = binary.BigEndian.Uint32(p[1:5])
	_, h.flavour = quicVersion(h.version)
	if h.flavour == flavourNone {
		return false
	}
	h.typ = quicPacketType(p[0], h.flavour)
	if h.typ == quicTypeRetry {
		return false
	}
	i := 5
	dcil := int(p[i])
	i++
	if dcil > maxQUICCIDLen || len(p) < i+dcil+1 {
		return false
	}
	h.dcid = p[i : i+dcil : i+dcil]
	i += dcil
	scil := int(p[i])
	i++
	if scil > maxQUICCIDLen || len(p) < i+scil {
		return false
	}
	i += scil
	if h.typ == quicTypeInitial {
		tl, n := quicVarint(p[i:])
		if n == 0 || tl > uint64(len(p)-i-n) {
			return false
		}
		i += n + int(tl)
	}
	l, n := quicVarint(p[i:])
	if n == 0 || l > uint64(len(p)-i-n) {
		return false
	}
	h.pnOffset = i + n
	h.end = h.pnOffset + int(l)
	return true
}

// quicVarint decodes a variable-length integer (RFC 9000 §16); n is 0 when
// b is too short.
func quicVarint(b []byte) (v uint64, n int) {
	if len(b) == 0 {
		return 0, 0
	}
	n = 1 << (b[0] >> 6)
	if len(b) < n {
		return 0, 0
	}
	v = uint64(b[0] & 0x3f)
	for _, c := range b[1:n] {
		v = v<<8 | uint64(c)
	}
	return v, n
}

// quicKeys are the client Initial keys of one DCID as one assembler uses
// them: what it learned about them, and the key material, which may be
// shared with a QUICKeyCache and other assemblers.
type quicKeys struct {
	set      bool
	retired  bool // keys of an abandoned attempt (before a Retry): what they open is stale
	viaFirst bool // this DCID's packets open with the first slot's keys (the server's SCID as DCID)
	cached   bool // the material is in the assembler's QUICKeyCache
	dcidLen  uint8
	version  uint32
	dcid     [maxQUICCIDLen]byte
	*quicMaterial
}

// quicMaterial is what is derived from a DCID. The AEAD is made on first
// use: most Initials that no key opens (a flood of random ones) fail the
// header check before it is needed, and it is the larger allocation.
type quicMaterial struct {
	iv   [12]byte
	key  [16]byte
	aead cipher.AEAD // nil until gcm
	hp   cipher.Block
}

// gcm returns the AEAD, making it on first use.
func (m *quicMaterial) gcm() cipher.AEAD {
	if m.aead == nil {
		block, err := aes.NewCipher(m.key[:])
		if err != nil {
			panic(err) // a 16-byte key is always valid
		}
		if m.aead, err = cipher.NewGCM(block); err != nil {
			panic(err) // AES has a 16-byte block
		}
	}
	return m.aead
}

func (k *quicKeys) matches(version uint32, dcid []byte) bool {
	return k.set && k.version == version && string(k.dcid[:k.dcidLen]) == string(dcid)
}

// deriveQUICKeys computes the client Initial keys for dcid, AEAD included.
func deriveQUICKeys(k *quicKeys, version uint32, dcid []byte) error {
	m, err := deriveQUICMaterial(version, dcid)
	if err != nil {
		return err
	}
	m.gcm()
	k.setKeys(version, dcid, m)
	return nil
}

func (k *quicKeys) setKeys(version uint32, dcid []byte, m *quicMaterial) {
	*k = quicKeys{set: true, version: version, dcidLen: uint8(len(dcid)), quicMaterial: m}
	copy(k.dcid[:], dcid)
}

// deriveQUICMaterial computes the client Initial key material for dcid
// (RFC 9001 §5.2, RFC 9369 §3.3), the AEAD left for later. HKDF is done
// here over stack buffers: crypto/hkdf allocates a few times per call,
// and a flood of Initials with fresh DCIDs derives once a datagram. The
// header protection cipher and the material are the only allocations.
func deriveQUICMaterial(version uint32, dcid []byte) (*quicMaterial, error) {
	salt, fl := quicVersion(version)
	if fl == flavourNone {
		return nil, errQUICUnknownVersion
	}
	if len(dcid) > maxQUICCIDLen {
		return nil, errQUICNoKeys
	}
	initial := hmacSHA256(salt[:], dcid) // HKDF-Extract
	client := hkdfExpandLabel(&initial, "client in")
	keyLabel, ivLabel, hpLabel := "quic key", "quic iv", "quic hp"
	if fl == flavourV2 {
		keyLabel, ivLabel, hpLabel = "quicv2 key", "quicv2 iv", "quicv2 hp"
	}
	m := new(quicMaterial)
	key := hkdfExpandLabelN(&client, keyLabel, 16)
	iv := hkdfExpandLabelN(&client, ivLabel, 12)
	hpKey := hkdfExpandLabelN(&client, hpLabel, 16)
	copy(m.key[:], key[:16])
	copy(m.iv[:], iv[:12])
	hp, err := aes.NewCipher(hpKey[:16])
	if err != nil {
		return nil, errQUICNoKeys
	}
	m.hp = hp
	return m, nil
}

// hmacSHA256 is HMAC-SHA256 (RFC 2104) for a key and a message of at
// most 64 bytes each, without allocating.
func hmacSHA256(key, msg []byte) [sha256.Size]byte {
	var b [64 + 64]byte
	n := copy(b[64:], msg)
	for i := range 64 {
		var c byte
		if i < len(key) {
			c = key[i]
		}
		b[i] = c ^ 0x36
	}
	inner := sha256.Sum256(b[:64+n])
	for i := range 64 {
		b[i] ^= 0x36 ^ 0x5c
	}
	copy(b[64:], inner[:])
	return sha256.Sum256(b[:64+sha256.Size])
}

// hkdfExpandLabel is TLS 1.3's HKDF-Expand-Label (RFC 8446 §7.1) with an
// empty context, over SHA-256, for a 32-byte output.
func hkdfExpandLabel(secret *[sha256.Size]byte, label string) [sha256.Size]byte {
	return hkdfExpandLabelN(secret, label, sha256.Size)
}

// hkdfExpandLabelN is hkdfExpandLabel for an output of n <= 32 bytes: one
// HMAC block, HKDF-Expand's T(1), whose first n bytes are the output.
func hkdfExpandLabelN(secret *[sha256.Size]byte, label string, n int) [sha256.Size]byte {
	var info [64]byte
	i := copy(info[:], []byte{byte(n >> 8), byte(n), byte(6 + len(label))})
	i += copy(info[i:], "tls13 ")
	i += copy(info[i:], label)
	info[i] = 0   // context length
	info[i+1] = 1 // HKDF-Expand's counter
	out := hmacSHA256(secret[:], info[:i+2])
	clear(out[n:])
	return out
}

// QUICKeyCache remembers the client Initial key material of the last
// DCIDs whose Initials opened, least recently used out first, for the
// assemblers of one goroutine (it is not safe for concurrent use). It
// spares a derivation (two AES key schedules, a GCM set-up) when the same
// connection's Initials are read by assemblers that do not hold its keys:
// one reset for every datagram of flows without state, or one taken
// again after being released. Only keys that opened a packet are kept,
// so Initials with random DCIDs, which never open, do not push out real
// connections.
type QUICKeyCache struct {
	index      map[quicCacheKey]int32
	ents       []quicCacheEntry
	head, tail int32 // most and least recently used; -1 when empty
	max        int
	// Hits and Misses count look-ups; Misses are derivations.
	Hits, Misses uint64
}

type quicCacheKey struct {
	version uint32
	n       uint8
	dcid    [maxQUICCIDLen]byte
}

type quicCacheEntry struct {
	key        quicCacheKey
	m          *quicMaterial
	prev, next int32
}

// NewQUICKeyCache returns a cache of at most n entries (n >= 1).
func NewQUICKeyCache(n int) *QUICKeyCache {
	n = max(n, 1)
	return &QUICKeyCache{index: make(map[quicCacheKey]int32, n), ents: make([]quicCacheEntry, 0, n), head: -1, tail: -1, max: n}
}

// Len is the number of entries.
func (c *QUICKeyCache) Len() int { return len(c.ents) }

func makeCacheKey(version uint32, dcid []byte) quicCacheKey {
	k := quicCacheKey{version: version, n: uint8(len(dcid))}
	copy(k.dcid[:], dcid)
	return k
}

// get returns the cached material of version and dcid, or nil.
func (c *QUICKeyCache) get(version uint32, dcid []byte) *quicMaterial {
	i, ok := c.index[makeCacheKey(version, dcid)]
	if !ok {
		c.Misses++
		return nil
	}
	c.Hits++
	c.touch(i)
	return c.ents[i].m
}

// put adds m as the material of version and dcid.
func (c *QUICKeyCache) put(version uint32, dcid []byte, m *quicMaterial) {
	k := makeCacheKey(version, dcid)
	if i, ok := c.index[k]; ok {
		c.ents[i].m = m
		c.touch(i)
		return
	}
	var i int32
	if len(c.ents) < c.max {
		c.ents = append(c.ents, quicCacheEntry{})
		i = int32(len(c.ents) - 1)
	} else {
		i = c.tail
		c.unlink(i)
		delete(c.index, c.ents[i].key)
	}
	c.ents[i] = quicCacheEntry{key: k, m: m, prev: -1, next: -1}
	c.index[k] = i
	c.pushFront(i)
}

func (c *QUICKeyCache) touch(i int32) {
	if c.head != i {
		c.unlink(i)
		c.pushFront(i)
	}
}

func (c *QUICKeyCache) unlink(i int32) {
	e := &c.ents[i]
	if e.prev >= 0 {
		c.ents[e.prev].next = e.next
	} else {
		c.head = e.next
	}
	if e.next >= 0 {
		c.ents[e.next].prev = e.prev
	} else {
		c.tail = e.prev
	}
	e.prev, e.next = -1, -1
}

func (c *QUICKeyCache) pushFront(i int32) {
	e := &c.ents[i]
	e.prev, e.next = -1, c.head
	if c.head >= 0 {
		c.ents[c.head].prev = i
	}
	c.head = i
	if c.tail < 0 {
		c.tail = i
	}
}

// QUICStats counts what an assembler saw; for metrics and tests.
type QUICStats struct {
	Initials       int // client Initial packets seen, coalesced ones included
	Decrypted      int // Initials that authenticated
	Undecryptable  int // Initials no key opened
	Stale          int // Initials of an abandoned attempt (keys before a Retry), ignored
	Malformed      int // decrypted Initials whose frames did not parse (a protocol violation)
	Unparsed       int // gQUIC packets left partly unread at a frame type the parser does not read
	Skipped        int // coalesced 0-RTT and Handshake packets, not decrypted
	KeyDerivations int
}

// QUICAssembler gathers one connection's client CRYPTO stream from its
// Initial packets and yields the ClientHello once all its bytes are there,
// whatever the order, splitting, duplication or overlap of the CRYPTO
// frames and of the datagrams carrying them.
//
// The zero value is ready. It is meant to live in per-flow state, one per
// direction of a UDP flow (a pointer kept in a bounded map by the caller).
// Keys are cached per DCID, so only the first Initial of a connection (and
// of a Retry) allocates. Memory is bounded by MaxCryptoData, the largest
// datagram seen and two key sets.
type QUICAssembler struct {
	// MaxCryptoData caps the CRYPTO bytes gathered for one hello (0 means
	// DefaultQUICCryptoCap). A hello that would not fit sets TooBig.
	MaxCryptoData int
	// Keys, when set, is where derived keys are looked up first and kept
	// once they opened a packet; it may be shared by the assemblers of
	// one goroutine.
	Keys *QUICKeyCache

	first  quicKeys // keys that opened this attempt's Initials (of the client's first DCID)
	other  quicKeys // keys of the last other DCID tried
	seen   uint32   // version of the last Initial seen, until one decrypts
	stats  QUICStats
	pnSeen bool
	pnMax  uint64 // largest packet number decrypted in this attempt

	// The CRYPTO stream: buf[i] holds stream offset base+i when bit i of
	// filled is set. contig counts the filled bytes from buf[0] on.
	base     uint64
	buf      []byte
	filled   []uint64
	contig   int
	need     int  // length of the hello being gathered, 0 until its header is in
	beyond   bool // data past the cap arrived
	notHello bool // the stream does not start with a ClientHello (or CHLO)
	given    bool // Done was called on an incomplete hello: ignore it

	hdr   []byte // unprotected header, the AEAD's associated data
	plain []byte // decrypted payload
	nonce [12]byte
	mask  [16]byte
}

func (a *QUICAssembler) capacity() int {
	switch {
	case a.MaxCryptoData <= 0:
		return DefaultQUICCryptoCap
	case a.MaxCryptoData > 1<<24:
		return 1 << 24
	}
	return a.MaxCryptoData
}

// Reset forgets the connection (keys, data, counters) but keeps the
// allocated buffers and MaxCryptoData, so the assembler can serve another
// flow.
func (a *QUICAssembler) Reset() {
	clear(a.filled)
	*a = QUICAssembler{
		MaxCryptoData: a.MaxCryptoData, Keys: a.Keys,
		buf: a.buf, filled: a.filled,
		hdr: a.hdr[:0], plain: a.plain[:0],
	}
}

// resetStream forgets the hello being gathered, keeping base.
func (a *QUICAssembler) resetStream() {
	clear(a.filled)
	a.contig, a.need = 0, 0
	a.beyond, a.notHello, a.given = false, false, false
}

// Stats returns the counters.
func (a *QUICAssembler) Stats() QUICStats { return a.stats }

// Version returns the QUIC version of the keys that opened the current
// hello's Initials, or of the last Initial seen when none decrypted yet;
// 0 before any.
func (a *QUICAssembler) Version() uint32 {
	if a.first.set {
		return a.first.version
	}
	return a.seen
}

// VersionName names Version for reports: "1", "2", "draft-29", "T051",
// "T050", "Q050"; "" before any Initial.
func (a *QUICAssembler) VersionName() string { return quicVersionName(a.Version()) }

func (a *QUICAssembler) flavour() quicFlavour {
	_, fl := quicVersion(a.Version())
	return fl
}

// complete reports whether the message being gathered is all there.
func (a *QUICAssembler) complete() bool {
	return !a.notHello && !a.given && a.need > 0 && a.contig >= a.need
}

// ClientHello returns the complete ClientHello handshake message (header
// included, for ParseClientHelloMessage) once all its bytes are present,
// else nil. It aliases the assembler's buffer: valid until the next
// AddDatagram, Done or Reset. It is nil for Q050, whose CRYPTO stream holds
// a CHLO (see CHLO).
func (a *QUICAssembler) ClientHello() []byte {
	if !a.complete() || a.flavour() == flavourGCHLO {
		return nil
	}
	return a.buf[:a.need:a.need]
}

// CHLO returns the complete QUIC-crypto CHLO message of a Q050 connection
// (for ParseGQUICCHLOMessage), else nil. Aliasing as for ClientHello.
func (a *QUICAssembler) CHLO() []byte {
	if !a.complete() || a.flavour() != flavourGCHLO {
		return nil
	}
	return a.buf[:a.need:a.need]
}

// TooBig reports that the hello cannot be completed because it is larger
// than MaxCryptoData (or, its length still unknown, CRYPTO data beyond the
// cap arrived).
func (a *QUICAssembler) TooBig() bool {
	if a.given || a.notHello {
		return false
	}
	if a.need > 0 {
		return a.need > a.capacity()
	}
	return a.beyond
}

// Done tells the assembler that the caller is finished with the current
// hello. When it was complete, gathering moves past it: a second
// ClientHello (after a HelloRetryRequest) follows it in the same CRYPTO
// stream. When it was not, it is given up (ClientHello stays nil and TooBig
// false). Either way, an Initial with a new DCID that decrypts with its own
// keys (after a Retry) starts a new hello at offset 0.
func (a *QUICAssembler) Done() {
	if a.complete() {
		a.base += uint64(a.need)
		a.resetStream()
		return
	}
	a.given = true
}

// AddDatagram decrypts the client Initial packets in one UDP datagram and
// adds their CRYPTO frames. Coalesced packets are walked with their Length
// fields; 0-RTT and Handshake packets are skipped, as are packets with
// another DCID or version than the first (RFC 9000 §12.2), whatever
// follows a short header or padding, and packets past the eighth.
//
// It returns ErrNotQUIC when p does not start with a client Initial (zero
// allocations), ErrMalformed when the first header is inconsistent or a
// decrypted packet's frames do not parse (frames before the fault are
// kept), ErrQUICUndecryptable when no Initial in p could be decrypted, and
// nil otherwise. p is not modified nor retained.
func (a *QUICAssembler) AddDatagram(p []byte) error {
	if !IsQUICInitial(p) {
		return ErrNotQUIC
	}
	var h quicLong
	var dcid0 []byte
	var version0 uint32
	opened, malformed := false, false
	for off, i := 0, 0; off < len(p) && i < maxQUICCoalesced; i++ {
		rest := p[off:]
		if !parseQUICLong(rest, &h) {
			if i == 0 {
				return ErrMalformed
			}
			break
		}
		if i == 0 {
			dcid0, version0 = h.dcid, h.version
		} else if h.version != version0 || string(h.dcid) != string(dcid0) {
			break
		}
		pkt := rest[:h.end]
		off += h.end
		if h.typ != quicTypeInitial {
			a.stats.Skipped++
			continue
		}
		a.stats.Initials++
		if !a.first.set {
			a.seen = h.version
		}
		payload, st := a.open(pkt, &h)
		switch st {
		case openFailed:
			a.stats.Undecryptable++
			continue
		case openStale:
			a.stats.Stale++
			opened = true
			continue
		}
		a.stats.Decrypted++
		opened = true
		if err := a.frames(payload); err != nil {
			a.stats.Malformed++
			malformed = true
		}
	}
	switch {
	case !opened:
		return ErrQUICUndecryptable
	case malformed:
		return ErrMalformed
	}
	return nil
}

type openStatus uint8

const (
	openFailed openStatus = iota
	openOK
	openStale
)

// open removes the protection of one Initial packet (pkt ends with it) and
// returns its payload, which aliases a.plain. Keys are tried in this order:
// those of the packet's DCID (cached, or derived once within the
// derivation budget), then those of the attempt's first DCID, which keep
// protecting the client's Initials after it switched to the server's SCID
// (RFC 9001 §5.2). A packet that opens with its own keys while another
// DCID's keys opened earlier starts a new attempt (a Retry, or a new
// connection on the same ports): the CRYPTO stream restarts.
func (a *QUICAssembler) open(pkt []byte, h *quicLong) ([]byte, openStatus) {
	if len(pkt) < h.pnOffset+4+16 {
		return nil, openFailed // no room for the header protection sample
	}
	var own *quicKeys
	switch {
	case a.first.matches(h.version, h.dcid):
		own = &a.first
	case a.other.matches(h.version, h.dcid):
		own = &a.other
	default:
		if a.keysFor(&a.other, h.version, h.dcid) {
			own = &a.other
		}
	}
	// Whether the first slot's keys may be tried, and whether before
	// the packet's own (known to be the ones that work for this DCID).
	canFirst := own != &a.first && a.first.set && a.first.version == h.version
	firstFirst := canFirst && own != nil && own.viaFirst
	if firstFirst {
		if pt, pn, ok := a.openWith(&a.first, pkt, h); ok {
			a.notePN(pn)
			return pt, openOK
		}
	}
	if own != nil {
		if pt, pn, ok := a.openWith(own, pkt, h); ok {
			a.keep(own)
			if own == &a.other {
				if own.retired {
					return nil, openStale
				}
				a.promote()
			}
			a.notePN(pn)
			return pt, openOK
		}
	}
	if canFirst && !firstFirst {
		if pt, pn, ok := a.openWith(&a.first, pkt, h); ok {
			if own != nil {
				own.viaFirst = true
			}
			a.notePN(pn)
			return pt, openOK
		}
	}
	return nil, openFailed
}

// keysFor sets k to the keys of version and dcid: from the cache, or
// derived within the assembler's derivation budget. It reports whether
// k holds them.
func (a *QUICAssembler) keysFor(k *quicKeys, version uint32, dcid []byte) bool {
	var m *quicMaterial
	if a.Keys != nil {
		m = a.Keys.get(version, dcid)
	}
	if m == nil {
		if a.stats.KeyDerivations >= maxQUICDerivations {
			return false
		}
		a.stats.KeyDerivations++
		var err error
		if m, err = deriveQUICMaterial(version, dcid); err != nil {
			*k = quicKeys{}
			return false
		}
		k.setKeys(version, dcid, m)
		return true
	}
	k.setKeys(version, dcid, m)
	k.cached = true
	return true
}

// keep puts keys that opened a packet in the cache: they are a real
// connection's.
func (a *QUICAssembler) keep(k *quicKeys) {
	if !k.cached && a.Keys != nil {
		a.Keys.put(k.version, k.dcid[:k.dcidLen], k.quicMaterial)
		k.cached = true
	}
}

// promote makes the other slot's keys those of a new attempt; the previous
// attempt's keys are kept, retired, so that its late retransmissions are
// recognised and ignored instead of restarting the stream again.
func (a *QUICAssembler) promote() {
	a.first, a.other = a.other, a.first
	a.first.retired, a.first.viaFirst = false, false
	a.other.retired, a.other.viaFirst = a.other.set, false
	a.pnSeen, a.pnMax = false, 0
	a.base = 0
	a.resetStream()
}

// openWith removes header protection with k (RFC 9001 §5.4), rebuilds the
// packet number (RFC 9000 §A.3) and opens the payload. pkt is not written
// to: the unprotected header is built in a.hdr and the plaintext in
// a.plain.
func (a *QUICAssembler) openWith(k *quicKeys, pkt []byte, h *quicLong) ([]byte, uint64, bool) {
	pnOff := h.pnOffset
	k.hp.Encrypt(a.mask[:], pkt[pnOff+4:pnOff+4+16])
	b0 := pkt[0] ^ a.mask[0]&0x0f
	if b0&0x0c != 0 && (h.flavour == flavourIETF || h.flavour == flavourV2) {
		// Reserved bits set once unmasked: a sender must clear them
		// (RFC 9000 §17.2), so these are not its keys. This turns away
		// three in four Initials that no key opens without the AEAD.
		return nil, 0, false
	}
	pnLen := int(b0&3) + 1
	hdrLen := pnOff + pnLen
	a.hdr = append(a.hdr[:0], pkt[:hdrLen]...)
	a.hdr[0] = b0
	var trunc uint64
	for i := range pnLen {
		a.hdr[pnOff+i] ^= a.mask[1+i]
		trunc = trunc<<8 | uint64(a.hdr[pnOff+i])
	}
	ct := pkt[hdrLen:]
	if cap(a.plain) < len(ct) {
		a.plain = make([]byte, 0, (len(ct)+2047)&^2047)
	}
	pn := trunc
	if a.pnSeen && k == &a.first {
		pn = decodePacketNumber(a.pnMax, trunc, pnLen)
	}
	pt, ok := a.unseal(k, pn, ct)
	if !ok && pn != trunc {
		// The expected number may have been skewed by an injected
		// packet; client Initial numbers are small: try it as sent.
		pn = trunc
		pt, ok = a.unseal(k, pn, ct)
	}
	return pt, pn, ok
}

// unseal opens ct with k and packet number pn, a.hdr being the associated
// data.
func (a *QUICAssembler) unseal(k *quicKeys, pn uint64, ct []byte) ([]byte, bool) {
	a.nonce = k.iv
	for i := range 8 {
		a.nonce[4+i] ^= byte(pn >> (56 - 8*i))
	}
	pt, err := k.gcm().Open(a.plain[:0], a.nonce[:], ct, a.hdr)
	return pt, err == nil
}

// notePN records the number of a packet the attempt's keys opened.
func (a *QUICAssembler) notePN(pn uint64) {
	if !a.pnSeen || pn > a.pnMax {
		a.pnSeen, a.pnMax = true, pn
	}
}

// decodePacketNumber expands a truncated packet number (RFC 9000 §A.3).
func decodePacketNumber(largest, trunc uint64, pnLen int) uint64 {
	expected := largest + 1
	win := uint64(1) << (8 * pnLen)
	hwin := win / 2
	candidate := expected&^(win-1) | trunc
	switch {
	case candidate+hwin <= expected && candidate < 1<<62-win:
		return candidate + win
	case candidate > expected+hwin && candidate >= win:
		return candidate - win
	}
	return candidate
}

// frames reads the frames of a decrypted Initial and adds CRYPTO data.
// RFC 9000 §12.4 allows only PADDING, PING, ACK, CRYPTO and
// CONNECTION_CLOSE in Initials; anything else is a protocol violation:
// ErrMalformed, and the rest of the packet is not read. Google's T05x and
// Q050 use gQUIC frames (PADDING 0x00, PING 0x07, CRYPTO 0x08 with varint
// offset and length, as Wireshark and nDPI read them); the other gQUIC
// frames (ACK, STOP_WAITING…) end the reading without an error.
func (a *QUICAssembler) frames(b []byte) error {
	gquic := a.flavour() == flavourGTLS || a.flavour() == flavourGCHLO
	for len(b) > 0 {
		t := b[0]
		if t == 0x00 { // PADDING: skip the run at once
			i := 1
			for i < len(b) && b[i] == 0 {
				i++
			}
			b = b[i:]
			continue
		}
		if gquic {
			switch t {
			case 0x07: // PING
				b = b[1:]
				continue
			case 0x08:
				n := a.cryptoFrame(b)
				if n <= 0 {
					return ErrMalformed
				}
				b = b[n:]
				continue
			}
			a.stats.Unparsed++
			return nil
		}
		var n int
		switch t {
		case 0x01: // PING
			n = 1
		case 0x02, 0x03:
			n = skipQUICAck(b)
		case 0x06:
			n = a.cryptoFrame(b)
		case 0x1c, 0x1d:
			n = skipQUICClose(b)
		}
		if n <= 0 {
			return ErrMalformed
		}
		b = b[n:]
	}
	return nil
}

// cryptoFrame adds the CRYPTO frame at the start of b and returns its
// length, or 0 when it overruns b.
func (a *QUICAssembler) cryptoFrame(b []byte) int {
	off, n := quicVarint(b[1:])
	if n == 0 {
		return 0
	}
	i := 1 + n
	l, n := quicVarint(b[i:])
	if n == 0 {
		return 0
	}
	i += n
	if l > uint64(len(b)-i) {
		return 0
	}
	a.addCrypto(off, b[i:i+int(l)])
	return i + int(l)
}

// skipQUICAck returns the length of the ACK frame (type 0x02 or 0x03) at
// the start of b, or 0 when it overruns b.
func skipQUICAck(b []byte) int {
	i := 1
	var count uint64
	for j := range 4 { // largest, delay, range count, first range
		v, n := quicVarint(b[i:])
		if n == 0 {
			return 0
		}
		i += n
		if j == 2 {
			count = v
		}
	}
	if count > uint64(len(b)-i)/2 { // each range takes two varints
		return 0
	}
	fields := 2 * int(count)
	if b[0] == 0x03 {
		fields += 3 // ECN counts
	}
	for range fields {
		_, n := quicVarint(b[i:])
		if n == 0 {
			return 0
		}
		i += n
	}
	return i
}

// skipQUICClose returns the length of the CONNECTION_CLOSE frame (0x1c,
// or 0x1d which has no frame type field) at the start of b, or 0.
func skipQUICClose(b []byte) int {
	i := 1
	fields := 3 // error code, frame type, reason length
	if b[0] == 0x1d {
		fields = 2
	}
	var v uint64
	for range fields {
		var n int
		v, n = quicVarint(b[i:])
		if n == 0 {
			return 0
		}
		i += n
	}
	if v > uint64(len(b)-i) {
		return 0
	}
	return i + int(v)
}

// addCrypto stores CRYPTO data at stream offset off. Bytes already present
// are kept (first copy wins, as receivers do: RFC 9000 §2.2 forbids the data
// at an offset to change, and keeping the first stops a later forged frame
// from rewriting the hello). Bytes before base belong to an earlier hello;
// bytes beyond the cap are dropped and noted.
func (a *QUICAssembler) addCrypto(off uint64, data []byte) {
	if len(data) == 0 || a.given {
		return
	}
	end := off + uint64(len(data)) // both below 2^62: no overflow
	if end <= a.base {
		return
	}
	if off < a.base {
		data = data[a.base-off:]
		off = a.base
	}
	rel, limit := off-a.base, uint64(a.capacity())
	if end-a.base > limit {
		a.beyond = true
		if rel >= limit {
			return
		}
		data = data[:limit-rel]
	}
	r := int(rel)
	e := r + len(data)
	a.grow(e)
	for pos := r; pos < e; {
		sh := pos & 63
		word := a.filled[pos>>6] >> sh
		if word&1 != 0 { // present: skip the run of set bits
			pos += bits.TrailingZeros64(^word)
			continue
		}
		gap := min(bits.TrailingZeros64(word), 64-sh)
		stop := min(pos+gap, e)
		copy(a.buf[pos:stop], data[pos-r:stop-r])
		setBits(a.filled, pos, stop)
		pos = stop
	}
	a.advance()
}

// grow makes buf and filled cover at least n bytes (n <= capacity).
func (a *QUICAssembler) grow(n int) {
	if n <= len(a.buf) {
		return
	}
	n = min((n+4095)&^4095, max(a.capacity(), n))
	if n <= cap(a.buf) {
		a.buf = a.buf[:n]
	} else {
		nb := make([]byte, n)
		copy(nb, a.buf)
		a.buf = nb
	}
	words := (n + 63) / 64
	if words <= cap(a.filled) {
		old := len(a.filled)
		a.filled = a.filled[:words]
		clear(a.filled[old:])
	} else {
		nf := make([]uint64, words)
		copy(nf, a.filled)
		a.filled = nf
	}
}

// setBits sets bits [from, to) of b.
func setBits(b []uint64, from, to int) {
	for from < to {
		sh := from & 63
		n := min(to-from, 64-sh)
		m := ^uint64(0)
		if n < 64 {
			m = 1<<uint(n) - 1
		}
		b[from>>6] |= m << sh
		from += n
	}
}

// advance extends contig over the filled bits and reads the hello's length
// once its header is in.
func (a *QUICAssembler) advance() {
	for a.contig < len(a.buf) {
		sh := a.contig & 63
		run := bits.TrailingZeros64(^(a.filled[a.contig>>6] >> sh))
		run = min(run, 64-sh)
		if run == 0 {
			break
		}
		a.contig += run
	}
	a.contig = min(a.contig, len(a.buf))
	if a.need > 0 || a.notHello {
		return
	}
	if a.flavour() == flavourGCHLO {
		a.needCHLO()
		return
	}
	if a.contig < handshakeHeaderLen {
		return
	}
	n := int(a.buf[1])<<16 | int(a.buf[2])<<8 | int(a.buf[3])
	if a.buf[0] != handshakeTypeClientHello || n > maxClientHelloLen {
		a.notHello = true
		return
	}
	a.need = handshakeHeaderLen + n
}

// needCHLO reads the length of a QUIC-crypto CHLO: "CHLO", a little-endian
// tag count, two bytes of padding, count (tag, end offset) pairs, then the
// values, the last end offset giving their total length.
func (a *QUICAssembler) needCHLO() {
	if a.contig < 8 {
		return
	}
	n := int(binary.LittleEndian.Uint16(a.buf[4:6]))
	if string(a.buf[:4]) != "CHLO" || n > maxCHLOTags {
		a.notHello = true
		return
	}
	table := 8 + 8*n
	if table > a.capacity() {
		a.need = table // TooBig
		return
	}
	if a.contig < table {
		return
	}
	var values uint32
	if n > 0 {
		values = binary.LittleEndian.Uint32(a.buf[table-4 : table])
	}
	if values > maxCHLOLen {
		a.notHello = true
		return
	}
	a.need = table + int(values)
}
