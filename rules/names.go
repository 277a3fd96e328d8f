package rules

import (
	"fmt"
	"math/bits"
	"strings"
	"unsafe"

	"golang.org/x/net/idna"
)

// Names in rules and names on the wire.
//
// A rule's domains, names and patterns are stored in canonical form: lower
// case ASCII, no trailing dot, internationalised labels as A-labels
// ("xn--…"). The parser converts U-labels (IDNA2008, the registration
// profile of golang.org/x/net/idna); Compile, given a hand-built rule,
// insists on the A-label.
//
// A name from the wire is never decoded: it matches when it equals a rule's
// name (or ends with "." and a rule's domain) ignoring ASCII case, after
// one trailing dot is removed. A name holding a byte that cannot be part of
// a host name as the sensor writes it — a control byte, a space, a byte of
// 0x7f or above, or a backslash (the sensor writes unprintable bytes as
// \DDD) — never matches anything. The look-up hashes the name once, from
// the right, and allocates nothing.

// maxNameLen is the longest name, in text form without the trailing dot
// (RFC 1035: 255 bytes on the wire).
const maxNameLen = 253

// maxLabels is the most labels a name of maxNameLen bytes can have.
const maxLabels = (maxNameLen + 1) / 2

// normName checks a domain or exact name of a rule and returns its
// canonical form and the problem, or "". With unicodeOK a name with
// U-labels is converted to A-labels; without, it is a problem (with the
// A-label to write).
func normName(s string, unicodeOK bool) (string, string) {
	switch {
	case s == "":
		return s, "must not be empty"
	case strings.IndexByte(s, '*') >= 0:
		return s, "must not contain '*' (use patterns for wildcards)"
	case s[0] == '.':
		return s, "must not start with a dot"
	case s[len(s)-1] == '.':
		return s, "must not end with a dot"
	case hasUpper(s):
		return s, "must be lower-case"
	}
	if !isASCII(s) {
		a, err := idna.Registration.ToASCII(s)
		if err != nil {
			return s, idnaProblem(s, err)
		}
		if !unicodeOK {
			return s, fmt.Sprintf("internationalised name; write its A-label %q", a)
		}
		s = a
	}
	if len(s) > maxNameLen {
		return s, "must be at most 253 characters"
	}
	labels := 0
	last := ""
	idn := false
	for rest := s; ; {
		label, tail, more := strings.Cut(rest, ".")
		if prob := checkLabel(label); prob != "" {
			return s, prob
		}
		idn = idn || strings.HasPrefix(label, "xn--")
		labels++
		last = label
		if !more {
			break
		}
		rest = tail
	}
	if labels < 2 {
		return s, "must have at least two labels"
	}
	if strings.Trim(last, "0123456789") == "" {
		return s, "looks like an address; use cidrs"
	}
	if idn {
		if _, err := idna.Registration.ToUnicode(s); err != nil {
			return s, "not a valid A-label: " + strings.TrimPrefix(err.Error(), "idna: ")
		}
	}
	return s, ""
}

// idnaProblem explains why a name with U-labels was rejected, suggesting
// the normalised form (lower case, NFC) when there is one.
func idnaProblem(s string, err error) string {
	msg := "not a valid internationalised name (IDNA2008): " + strings.TrimPrefix(err.Error(), "idna: ")
	if a, lerr := idna.Lookup.ToASCII(s); lerr == nil {
		if u, uerr := idna.Registration.ToUnicode(a); uerr == nil && u != s {
			msg += fmt.Sprintf("; did you mean %q?", u)
		}
	}
	return msg
}

// checkName validates a canonical domain or exact name and returns the
// problem, or "". A name with U-labels is not canonical.
func checkName(s string) string {
	_, prob := normName(s, false)
	return prob
}

// canonName validates a domain or exact name as written in a rules file and
// returns its canonical form (U-labels converted to A-labels).
func canonName(s string) (string, string) { return normName(s, true) }

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// Names are hashed from right to left, ASCII lower-cased, so that one pass
// over a name gives the hash of every suffix. The hash is FNV-1a (32 bits)
// run as two interleaved chains, the bytes at even and at odd distances
// from the end of the name (the same for every suffix), which halves the
// chain of dependent multiplications; the two are combined and finished
// with the murmur3 mixer so that the low bits index the table well.
const (
	fnvOffset32 = 2166136261
	fnvPrime32  = 16777619
)

func fmix32(h uint32) uint32 {
	h ^= h >> 16
	h *= 0x85ebca6b
	h ^= h >> 13
	h *= 0xc2b2ae35
	h ^= h >> 16
	return h
}

// hashSum finishes the two chains; a and b are in the order they were last
// swapped in (see wireName.prepare).
func hashSum(a, b uint32) uint32 { return fmix32(a ^ b*0x9e3779b1) }

// hashName hashes a canonical (lower-case) name as wireName.prepare hashes
// the same bytes found on the wire.
func hashName(s string) uint32 {
	a, b := uint32(fnvOffset32), uint32(fnvOffset32)
	for i := len(s) - 1; i >= 0; i-- {
		a, b = b, (a^uint32(lowerByte(s[i])))*fnvPrime32
	}
	return hashSum(a, b)
}

// byteClass sorts the bytes of a wire name: plain, upper-case ASCII, dot,
// or one that never matches (controls, space, 0x7f and above, backslash).
var byteClass = func() (t [256]uint8) {
	for c := range t {
		switch {
		case c <= ' ' || c >= 0x7f || c == '\\':
			t[c] = classBad
		case 'A' <= c && c <= 'Z':
			t[c] = classUpper
		case c == '.':
			t[c] = classDot
		}
	}
	return t
}()

const (
	classPlain = iota
	classUpper
	classDot
	classBad
)

// wireName is a name from the wire prepared for look-ups: one trailing dot
// removed, checked, and the hash of each suffix that can be a rule's name
// computed. It lives on the caller's stack, as do the arrays h and back
// point to: a short buffer for the common case, a long one (zeroed only
// when used) for names of more than shortLabels labels.
type wireName struct {
	s     string // the name without its trailing dot
	ok    bool   // false: empty, or holds a byte that never matches
	upper bool   // holds upper-case ASCII; compare ignoring case
	n     int    // suffixes hashed
	// h[k] is the hash of the suffix of back[k] bytes; k = 0 is the last
	// two labels, k = n-1 the longest suffix of at most maxNameLen bytes
	// (the name itself when it is short enough). The last label alone is
	// left out: no key has fewer than two.
	h    []uint32
	back []uint8
}

// shortLabels is the number of suffixes the usual buffer holds; a name
// with more labels in its last maxNameLen bytes takes a longer one.
const shortLabels = 24

type (
	wireBuf struct {
		h    [shortLabels]uint32
		back [shortLabels]uint8
	}
	wireBufLong struct {
		h    [maxLabels]uint32
		back [maxLabels]uint8
	}
)

// wire returns a wireName that hashes into buf. (A constructor, not a
// method storing into *w: a store through a pointer would move buf to
// the heap.)
func (buf *wireBuf) wire() wireName { return wireName{h: buf.h[:], back: buf.back[:]} }

// wire returns a wireName that hashes into long.
func (long *wireBufLong) wire() wireName { return wireName{h: long.h[:], back: long.back[:]} }

// prepare fills w for name. A name holding a control byte, a space, a byte
// of 0x7f or above, or a backslash is not ok: it matches nothing. It
// reports false if name has more suffixes to hash than w.h can hold.
func (w *wireName) prepare(name string) bool {
	if n := len(name); n > 0 && name[n-1] == '.' {
		name = name[:n-1]
	}
	w.s, w.ok, w.upper, w.n = name, false, false, 0
	if name == "" {
		return true
	}
	a, b := uint32(fnvOffset32), uint32(fnvOffset32)
	dots := 0
	for i := len(name) - 1; i >= 0; i-- {
		c := name[i]
		if cl := byteClass[c]; cl != classPlain {
			switch cl {
			case classUpper:
				c += 'a' - 'A'
				w.upper = true
			case classDot:
				// The last label alone is never a key (every name, domain
				// and pattern of a rule has two labels at least): it is
				// not hashed nor looked up.
				dots++
				if back := len(name) - 1 - i; back > 0 && back <= maxNameLen && dots > 1 {
					if w.n == len(w.h) {
						return false
					}
					w.h[w.n], w.back[w.n] = hashSum(a, b), uint8(back)
					w.n++
				}
			default:
				return true
			}
		}
		a, b = b, (a^uint32(c))*fnvPrime32
	}
	if len(name) <= maxNameLen && dots > 0 {
		if w.n == len(w.h) {
			return false
		}
		w.h[w.n], w.back[w.n] = hashSum(a, b), uint8(len(name))
		w.n++
	}
	w.ok = true
	return true
}

// suffix returns the suffix hashed as h[k].
func (w *wireName) suffix(k int) string { return w.s[len(w.s)-int(w.back[k]):] }

// nameIndex maps canonical names to a uint32 value: an open-addressing
// hash table (linear probing, at most 3/4 full). It is built with insert
// and then frozen. A frozen slot holds no pointer (the garbage collector
// never scans the table) and is 32 bytes: the full hash, the value, and
// the key's length and first bytes, so that a look-up touches one line of
// the table and, for a key of at most headLen bytes, nothing else; the
// longer keys are kept together in one string (keys). A
// blocked Bloom filter sits in front (one 64-bit word per name with three
// bits set, 16 to 32 bits per name): it stays in cache even for a feed of
// a million names, so a name that is in no rule, the common case, costs a
// few cache-resident probes instead of a memory access per label. Large
// tables are put on transparent huge pages where the kernel allows
// (adviseHuge): with a million names a look-up otherwise pays a TLB miss
// besides the cache miss.
//
// A hit's Indicator is a string in the frozen table or in keys (never
// written after freeze): a Hit kept keeps that memory, as it keeps its
// Rule. The sensor keeps hits only for a contact, and in the learned
// addresses until their TTL.
type nameIndex struct {
	build []nameSlot // while building; nil once frozen
	n     int        // keys
	// Frozen: len(slots) is 0 or a power of two.
	slots []nameEntry
	keys  string   // the keys longer than headLen, end to end
	bloom []uint64 // len is 0 (not frozen: no filter) or a power of two
	shift uint8    // 64 - log2(len(bloom))
}

// nameSlot is a slot of an index being built.
type nameSlot struct {
	key  string // "" for an empty slot
	hash uint32
	val  uint32
}

// nameEntry is a slot of a frozen index; klen 0 marks an empty one.
type nameEntry struct {
	hash, val uint32
	off       uint32 // a key longer than headLen is keys[off:off+klen]
	klen      uint8
	head      [headLen]byte // the key's first bytes
}

// headLen makes a nameEntry 32 bytes: it never straddles a cache line.
const headLen = 19

func (ix *nameIndex) len() int { return ix.n }

// key returns the key of a frozen slot.
func (ix *nameIndex) key(e *nameEntry) string {
	if e.klen <= headLen {
		return unsafe.String(&e.head[0], e.klen)
	}
	return ix.keys[e.off : e.off+uint32(e.klen)]
}

// bloomBits returns the filter word and the bits of a hash.
func (ix *nameIndex) bloomBits(h uint32) (int, uint64) {
	g := uint64(h) * 0x9e3779b97f4a7c15
	return int(g >> ix.shift), 1<<(g&63) | 1<<(g>>6&63) | 1<<(g>>12&63)
}

// mayHave reports whether a key of hash h may be in the frozen index
// (false: it is certainly not).
func (ix *nameIndex) mayHave(h uint32) bool {
	if len(ix.bloom) == 0 {
		return false
	}
	i, bits := ix.bloomBits(h)
	return ix.bloom[i]&bits == bits
}

// find returns the slot of the suffix k of w in the frozen index, or nil.
func (ix *nameIndex) find(w *wireName, k int) *nameEntry {
	if ix.n == 0 {
		return nil
	}
	h, key := w.h[k], w.suffix(k)
	mask := uint32(len(ix.slots) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		e := &ix.slots[i]
		if e.klen == 0 {
			return nil
		}
		if e.hash == h && int(e.klen) == len(key) {
			if k := ix.key(e); k == key || w.upper && equalLower(key, k) {
				return e
			}
		}
	}
}

// insert adds key (canonical) unless present and returns its slot and
// whether it was added (with val noRef). The slot is valid until the next
// insert. Only before freeze.
func (ix *nameIndex) insert(key string) (*nameSlot, bool) {
	if (ix.n+1)*4 > len(ix.build)*3 {
		ix.grow()
	}
	h := hashName(key)
	mask := uint32(len(ix.build) - 1)
	i := h & mask
	for ; ix.build[i].key != ""; i = (i + 1) & mask {
		if sl := &ix.build[i]; sl.hash == h && sl.key == key {
			return sl, false
		}
	}
	ix.build[i] = nameSlot{key, h, noRef}
	ix.n++
	return &ix.build[i], true
}

func (ix *nameIndex) grow() {
	old := ix.build
	ix.build = make([]nameSlot, max(8, 2*len(old)))
	mask := uint32(len(ix.build) - 1)
	for _, sl := range old {
		if sl.key == "" {
			continue
		}
		i := sl.hash & mask
		for ix.build[i].key != "" {
			i = (i + 1) & mask
		}
		ix.build[i] = sl
	}
}

// freeze makes the look-up form of the index and its filter once the
// index is complete. The index takes no inserts after.
func (ix *nameIndex) freeze() {
	words := 1
	for words*64 < ix.n*16 {
		words *= 2
	}
	size := 0
	for i := range ix.build {
		if n := len(ix.build[i].key); n > headLen {
			size += n
		}
	}
	ix.slots = make([]nameEntry, len(ix.build))
	keys := make([]byte, 0, size)
	ix.bloom = make([]uint64, words)
	ix.shift = uint8(64 - bits.TrailingZeros(uint(words)))
	// Advised before they are filled, fresh pages fault in huge; the
	// collapse after converts what was already there in small pages.
	advise := func(collapse bool) {
		if len(ix.slots) > 0 {
			adviseHuge(unsafe.Pointer(&ix.slots[0]), uintptr(len(ix.slots))*unsafe.Sizeof(ix.slots[0]), collapse)
		}
		if size > 0 {
			adviseHuge(unsafe.Pointer(unsafe.SliceData(keys)), uintptr(size), collapse)
		}
		adviseHuge(unsafe.Pointer(&ix.bloom[0]), uintptr(len(ix.bloom))*8, collapse)
	}
	advise(false)
	for i := range ix.build {
		sl := &ix.build[i]
		if sl.key == "" {
			continue
		}
		e := &ix.slots[i]
		*e = nameEntry{hash: sl.hash, val: sl.val, klen: uint8(len(sl.key))}
		if len(sl.key) <= headLen {
			copy(e.head[:], sl.key)
		} else {
			e.off = uint32(len(keys))
			keys = append(keys, sl.key...)
		}
		w, b := ix.bloomBits(sl.hash)
		ix.bloom[w] |= b
	}
	advise(true)
	// keys is never written again (as strings.Builder does).
	ix.keys = unsafe.String(unsafe.SliceData(keys), len(keys))
	ix.build = nil
}
