package rules

import (
	"fmt"
	"strconv"
	"strings"
)

// This file holds the checks and matchers of the indicator kinds that do
// not describe a name, an address or a port: ASNs, JA4 fingerprints and
// User-Agent globs (countries are in countries.go).

func quote(s string) string { return strconv.Quote(s) }

func upperASCII(s string) string {
	if !hasLower(s) {
		return s
	}
	b := []byte(s)
	for i, c := range b {
		if 'a' <= c && c <= 'z' {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}

func hasLower(s string) bool {
	for i := 0; i < len(s); i++ {
		if 'a' <= s[i] && s[i] <= 'z' {
			return true
		}
	}
	return false
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// parseASN parses "AS200107" or "200107" and returns the number, or the
// problem.
func parseASN(s string) (uint32, string) {
	const shape = `must be an AS number like "AS200107" or 200107`
	num := s
	if len(s) >= 2 && (s[0] == 'A' || s[0] == 'a') && (s[1] == 'S' || s[1] == 's') {
		num = s[2:]
		if s[:2] != "AS" {
			if allDigits(num) {
				return 0, "write " + quote("AS"+num)
			}
			return 0, shape
		}
	}
	if hi, lo, ok := strings.Cut(num, "."); ok && allDigits(hi) && allDigits(lo) {
		h, err1 := strconv.ParseUint(hi, 10, 16)
		l, err2 := strconv.ParseUint(lo, 10, 16)
		if err1 == nil && err2 == nil {
			return 0, "asdot notation; write " + quote(FormatASN(uint32(h<<16|l)))
		}
	}
	if !allDigits(num) {
		return 0, shape
	}
	if len(num) > 1 && num[0] == '0' {
		return 0, fmt.Sprintf("AS number %q has leading zeros", num)
	}
	v, err := strconv.ParseUint(num, 10, 32)
	if err != nil {
		return 0, "AS number out of range 1-4294967294"
	}
	if prob := checkASN(uint32(v)); prob != "" {
		return 0, prob
	}
	return uint32(v), ""
}

// checkASN rejects the AS numbers that never originate routes.
func checkASN(v uint32) string {
	switch v {
	case 0:
		return "AS0 is reserved (RFC 7607) and never originates routes"
	case 23456:
		return "AS23456 is AS_TRANS (RFC 6793), a placeholder, not a network"
	case 65535, 4294967295:
		return FormatASN(v) + " is reserved (RFC 7300)"
	}
	return ""
}

// JA4 TLS version codes (FoxIO JA4 specification; see
// sensor/internal/extract/ja4.go).
var ja4Versions = []string{"13", "12", "11", "10", "s3", "s2", "d1", "d2", "d3", "00"}

const ja4Example = `"t13d1516h2_8daaf6152771_e5627efa2ab1"`

// checkJA4 validates a JA4 fingerprint a_b_c, where a section may be "*"
// (any value), and returns the problem, or "".
func checkJA4(s string) string {
	if s == "" {
		return "must not be empty"
	}
	secs := strings.Split(s, "_")
	if strings.IndexByte(s, ',') >= 0 || len(secs) > 3 {
		return "raw (ja4_r) or original (ja4_o) forms are not supported; write the hashed JA4, as in " + ja4Example
	}
	if len(secs) != 3 {
		return "must be three sections a_b_c, as in " + ja4Example
	}
	if secs[0] == "*" && secs[1] == "*" && secs[2] == "*" {
		return "matches every fingerprint"
	}
	for i, sec := range secs {
		if sec != "*" && strings.IndexByte(sec, '*') >= 0 {
			return "'*' stands only for a whole section, as in \"t13d1516h2_*_*\""
		}
		if sec == "*" {
			continue
		}
		if i == 0 {
			if prob := checkJA4A(sec); prob != "" {
				return "section a " + quote(sec) + ": " + prob
			}
			continue
		}
		name := "b"
		if i == 2 {
			name = "c"
		}
		if len(sec) != 12 || strings.Trim(sec, "0123456789abcdefABCDEF") != "" {
			return "section " + name + " " + quote(sec) + ": must be 12 hexadecimal digits"
		}
		if strings.ToLower(sec) != sec {
			return "section " + name + " " + quote(sec) + ": must be lower-case"
		}
	}
	return ""
}

// checkJA4A validates the first section, e.g. "t13d1516h2".
func checkJA4A(a string) string {
	if len(a) != 10 {
		return "must be 10 characters: transport, version, SNI, cipher and extension counts, ALPN"
	}
	switch a[0] {
	case 't', 'q', 'd':
	default:
		return fmt.Sprintf("transport %q must be t (TCP), q (QUIC) or d (DTLS)", a[0])
	}
	v := a[1:3]
	found := false
	for _, x := range ja4Versions {
		found = found || v == x
	}
	if !found {
		return fmt.Sprintf("version %q is unknown; want one of %s", v, strings.Join(ja4Versions, ", "))
	}
	if a[3] != 'd' && a[3] != 'i' {
		return fmt.Sprintf("SNI mark %q must be d (SNI present) or i", a[3])
	}
	if !allDigits(a[4:8]) {
		return "cipher and extension counts must be two digits each"
	}
	for i := 8; i < 10; i++ {
		if c := a[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
			return fmt.Sprintf("ALPN character %q must be a letter or a digit", c)
		}
	}
	return ""
}

// ja4Pat is a compiled JA4 indicator; an empty section matches any value.
type ja4Pat struct {
	a, b, c string
	fixed   int // sections that are not "*"
}

func compileJA4(s string) ja4Pat {
	secs := strings.SplitN(s, "_", 3)
	var p ja4Pat
	for i, sec := range secs {
		if sec == "*" {
			continue
		}
		p.fixed++
		switch i {
		case 0:
			p.a = sec
		case 1:
			p.b = sec
		case 2:
			p.c = sec
		}
	}
	return p
}

// splitJA4 splits a fingerprint into its sections when it has the shape of
// a hashed JA4.
func splitJA4(s string) (a, b, c string, ok bool) {
	if len(s) != 36 || s[10] != '_' || s[23] != '_' {
		return "", "", "", false
	}
	return s[:10], s[11:23], s[24:], true
}

func (p *ja4Pat) match(a, b, c string) bool {
	return (p.a == "" || p.a == a) && (p.b == "" || p.b == b) && (p.c == "" || p.c == c)
}

// Limits of a User-Agent glob.
const (
	maxUserAgentLen   = 256
	minUserAgentFixed = 4
)

// checkUserAgent validates a User-Agent glob and returns the problem, or "".
func checkUserAgent(s string) string {
	switch {
	case s == "":
		return "must not be empty"
	case len(s) > maxUserAgentLen:
		return fmt.Sprintf("must be at most %d characters", maxUserAgentLen)
	case s[0] == ' ' || s[len(s)-1] == ' ':
		return "must not start or end with a space"
	case strings.Contains(s, "**"):
		return "must not contain \"**\"; one '*' matches any run"
	}
	for _, c := range s {
		if c < 0x20 || c > 0x7e {
			return fmt.Sprintf("invalid character %q; patterns are printable ASCII (the sensor escapes other bytes as \\xHH)", c)
		}
	}
	if n := len(s) - strings.Count(s, "*"); n < minUserAgentFixed {
		return fmt.Sprintf("matches too much: at least %d characters besides '*'", minUserAgentFixed)
	}
	return ""
}

// glob is a compiled User-Agent pattern: '*' matches any run of bytes
// (possibly empty), everything else matches itself without regard to ASCII
// case. Matching is linear in the length of the input: the fixed prefix and
// suffix are compared in place, and each middle segment is found with KMP,
// the search going on after the previous one (leftmost matches are always
// right for '*'-only patterns).
type glob struct {
	exact          bool   // no '*': the whole input equals prefix
	prefix, suffix string // lower case
	mids           []kmp
	fixed          int // bytes that are not '*'
}

// kmp is a lower-case segment with its Knuth–Morris–Pratt failure table.
type kmp struct {
	seg  string
	fail []int32
}

func compileGlob(s string) glob {
	low := strings.ToLower(s)
	g := glob{fixed: len(s) - strings.Count(s, "*")}
	segs := strings.Split(low, "*")
	if len(segs) == 1 {
		g.exact, g.prefix = true, low
		return g
	}
	g.prefix, g.suffix = segs[0], segs[len(segs)-1]
	for _, seg := range segs[1 : len(segs)-1] {
		if seg == "" {
			continue
		}
		fail := make([]int32, len(seg))
		for i, k := 1, int32(0); i < len(seg); i++ {
			for k > 0 && seg[i] != seg[k] {
				k = fail[k-1]
			}
			if seg[i] == seg[k] {
				k++
			}
			fail[i] = k
		}
		g.mids = append(g.mids, kmp{seg, fail})
	}
	return g
}

func lowerByte(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// equalLower reports whether s equals the lower-case low, ignoring ASCII case.
func equalLower(s, low string) bool {
	if len(s) != len(low) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if lowerByte(s[i]) != low[i] {
			return false
		}
	}
	return true
}

// index returns the first position of k.seg in s, ignoring ASCII case, or -1.
// In the start state it skips to the next byte that can begin a match with
// IndexByte; every byte is still looked at a bounded number of times.
func (k *kmp) index(s string) int {
	m := int32(len(k.seg))
	q := int32(0)
	first, firstUp := k.seg[0], k.seg[0]
	if 'a' <= first && first <= 'z' {
		firstUp = first - 'a' + 'A'
	}
	for i := 0; i < len(s); i++ {
		if q == 0 {
			j := strings.IndexByte(s[i:], first)
			if firstUp != first {
				lim := len(s) - i
				if j >= 0 {
					lim = j
				}
				if u := strings.IndexByte(s[i:i+lim], firstUp); u >= 0 {
					j = u
				}
			}
			if j < 0 {
				return -1
			}
			i += j
		}
		c := lowerByte(s[i])
		for q > 0 && k.seg[q] != c {
			q = k.fail[q-1]
		}
		if k.seg[q] == c {
			q++
		}
		if q == m {
			return i - int(m) + 1
		}
	}
	return -1
}

func (g *glob) match(s string) bool {
	if g.exact {
		return equalLower(s, g.prefix)
	}
	if len(s) < len(g.prefix)+len(g.suffix) ||
		!equalLower(s[:len(g.prefix)], g.prefix) || !equalLower(s[len(s)-len(g.suffix):], g.suffix) {
		return false
	}
	s = s[len(g.prefix) : len(s)-len(g.suffix)]
	for i := range g.mids {
		j := g.mids[i].index(s)
		if j < 0 {
			return false
		}
		s = s[j+len(g.mids[i].seg):]
	}
	return true
}
