package rules

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// ParsedFile is one profile with its rules, as returned by Parse.
type ParsedFile struct {
	Profile *Profile
	Rules   []*Rule
}

// Set is a compiled, immutable set of profiles. It is safe for concurrent
// use. The Match methods append to dst and, given enough capacity, do not
// allocate.
type Set struct {
	profiles []*Profile
	rules    []*Rule

	names map[string]*nameNode // key: a domain, exact name, or the fixed part of a pattern
	addr4 addrTable
	addr6 addrTable
	tcp   []portEntry // narrowest range first
	udp   []portEntry
}

// nameNode holds every indicator keyed by one name.
type nameNode struct {
	exact    []Hit      // rules with this exact name
	domain   []Hit      // rules with this domain suffix
	patterns []patEntry // patterns whose fixed part is this name; most specific first
}

// patEntry is a compiled pattern: the leftmost label must start with pre and
// end with suf (the '*' matches any run, possibly empty, of non-dot bytes).
type patEntry struct {
	pre, suf string
	hit      Hit
}

func (e *patEntry) match(label string) bool {
	return len(label) > 0 && len(label) >= len(e.pre)+len(e.suf) &&
		strings.HasPrefix(label, e.pre) && strings.HasSuffix(label, e.suf)
}

// addrTable partitions one address family into disjoint segments, each
// holding its hits precomputed (at most one per profile: the longest
// matching prefix, in profile order). A look-up is one binary search.
type addrTable struct {
	prefixes []addrPrefix // collected while compiling
	starts   []u128       // segment start addresses, ascending; starts[0] is 0
	hits     [][]Hit      // hits of each segment
}

type addrPrefix struct {
	first, last u128
	bits, pidx  int
	hit         Hit
}

// u128 is an address as a 128-bit integer; IPv4 uses the low 32 bits.
type u128 struct{ hi, lo uint64 }

func (a u128) cmp(b u128) int { return cmp.Or(cmp.Compare(a.hi, b.hi), cmp.Compare(a.lo, b.lo)) }

func toU128(a netip.Addr) u128 {
	if a.Is4() {
		v := a.As4()
		return u128{0, uint64(v[0])<<24 | uint64(v[1])<<16 | uint64(v[2])<<8 | uint64(v[3])}
	}
	v := a.As16()
	var x u128
	for i := 0; i < 8; i++ {
		x.hi = x.hi<<8 | uint64(v[i])
		x.lo = x.lo<<8 | uint64(v[8+i])
	}
	return x
}

// lastOf returns the last address of a masked prefix.
func lastOf(p netip.Prefix) u128 {
	x := toU128(p.Addr())
	host := p.Addr().BitLen() - p.Bits() // host bits, counted from the right
	switch {
	case host >= 64:
		x.lo = ^uint64(0)
		x.hi |= 1<<(host-64) - 1
	default:
		x.lo |= 1<<host - 1
	}
	return x
}

func (t *addrTable) add(p netip.Prefix, pidx int, h Hit) {
	t.prefixes = append(t.prefixes, addrPrefix{toU128(p.Addr()), lastOf(p), p.Bits(), pidx, h})
}

// build turns the collected prefixes into segments in O(n log n). Address
// prefixes are either nested or disjoint, so sweeping the segment start
// points in order with a stack of the open prefixes (outermost at the
// bottom) gives, at each point, exactly the prefixes that contain it; the
// deepest one of each profile is its longest match.
func (t *addrTable) build(top u128) {
	points := []u128{{}}
	for _, p := range t.prefixes {
		points = append(points, p.first)
		if p.last != top {
			next := p.last
			next.lo++
			if next.lo == 0 {
				next.hi++
			}
			points = append(points, next)
		}
	}
	slices.SortFunc(points, u128.cmp)
	points = slices.Compact(points)
	slices.SortFunc(t.prefixes, func(a, b addrPrefix) int {
		return cmp.Or(a.first.cmp(b.first), cmp.Compare(a.bits, b.bits), cmp.Compare(a.pidx, b.pidx))
	})
	var stack, best []addrPrefix
	next := 0
	for _, pt := range points {
		for len(stack) > 0 && stack[len(stack)-1].last.cmp(pt) < 0 {
			stack = stack[:len(stack)-1]
		}
		for next < len(t.prefixes) && t.prefixes[next].first == pt {
			stack = append(stack, t.prefixes[next])
			next++
		}
		best = best[:0]
		for i := len(stack) - 1; i >= 0; i-- {
			p := stack[i]
			if !slices.ContainsFunc(best, func(b addrPrefix) bool { return b.pidx == p.pidx }) {
				best = append(best, p)
			}
		}
		slices.SortFunc(best, func(a, b addrPrefix) int { return cmp.Compare(a.pidx, b.pidx) })
		var hits []Hit
		for _, b := range best {
			hits = append(hits, b.hit)
		}
		if n := len(t.hits); n > 0 && slices.Equal(t.hits[n-1], hits) {
			continue // same hits as the previous segment: merge
		}
		t.starts = append(t.starts, pt)
		t.hits = append(t.hits, hits)
	}
	t.prefixes = nil
}

// lookup returns the hits of the segment holding x.
func (t *addrTable) lookup(x u128) []Hit {
	// Find the last start <= x; starts[0] is 0, so there is one.
	lo, hi := 0, len(t.starts)
	for hi-lo > 1 {
		m := int(uint(lo+hi) >> 1)
		if t.starts[m].cmp(x) <= 0 {
			lo = m
		} else {
			hi = m
		}
	}
	if len(t.starts) == 0 {
		return nil
	}
	return t.hits[lo]
}

type portEntry struct {
	lo, hi uint16
	hit    Hit
}

// Compile builds a Set from parsed files, in order. Profile ids and rule ids
// must be unique across all files. Files are normally the results of Parse;
// rules built by hand are checked again here, without positions.
func Compile(files ...ParsedFile) (*Set, error) {
	var errs errList
	s := &Set{names: map[string]*nameNode{}}
	profiles := map[string]*Profile{}
	type firstDef struct {
		file      string
		line, col int
	}
	ruleIDs := map[string]firstDef{}
	seen := map[string]bool{} // per profile: kind + value
	lastFile := ""
	for _, f := range files {
		p := f.Profile
		if p == nil {
			errs.add(&Error{File: "rules", Msg: "compile: file without a profile"})
			continue
		}
		lastFile = p.File
		if !validID(p.ID) {
			errs.add(&Error{File: p.File, Line: p.line, Column: p.col, Msg: fmt.Sprintf("profile: id %q must match [a-z0-9-]+", p.ID)})
		}
		if first, dup := profiles[p.ID]; dup {
			errs.add(&Error{File: p.File, Line: p.line, Column: p.col,
				Msg: fmt.Sprintf("profile %q: duplicate profile id (first in %s)", p.ID, where(first.File, first.line, first.col))})
			continue
		}
		profiles[p.ID] = p
		s.profiles = append(s.profiles, p)
		clear(seen)
		for _, r := range f.Rules {
			if r == nil {
				errs.add(&Error{File: p.File, Msg: "compile: nil rule"})
				continue
			}
			ctx := fmt.Sprintf("rule %q", r.ID)
			bad := func(format string, args ...any) {
				errs.add(&Error{File: p.File, Line: r.line, Column: r.col, Msg: ctx + ": " + fmt.Sprintf(format, args...)})
			}
			if first, dup := ruleIDs[r.ID]; dup {
				bad("duplicate rule id (first in %s)", where(first.file, first.line, first.col))
				continue
			}
			ruleIDs[r.ID] = firstDef{p.File, r.line, r.col}
			switch {
			case !validID(r.ID):
				bad("id must match [a-z0-9-]+")
			case r.Profile != p:
				bad("rule does not belong to profile %q", p.ID)
			case !r.Category.Valid():
				bad("category %q is unknown", r.Category)
			case !r.Severity.Valid():
				bad("invalid severity %d", uint8(r.Severity))
			case r.Confidence != ConfidenceOfficial && r.Confidence != ConfidenceCommunity && r.Confidence != ConfidenceUnverified:
				bad("confidence %q is unknown", r.Confidence)
			case len(r.Sources) == 0:
				bad("sources must not be empty")
			case r.Match.Len() == 0:
				bad("match must list at least one indicator")
			}
			for _, id := range r.Sources {
				if _, ok := p.Sources[id]; !ok {
					bad("source %q is not defined in profile sources", id)
				}
			}
			s.rules = append(s.rules, r)
			s.addRule(r, seen, bad)
		}
	}
	if err := errs.err(lastFile); err != nil {
		return nil, err
	}
	s.finish()
	return s, nil
}

func where(file string, line, col int) string {
	if line > 0 {
		return fmt.Sprintf("%s:%d:%d", file, line, col)
	}
	return file
}

func (s *Set) node(key string) *nameNode {
	n := s.names[key]
	if n == nil {
		n = &nameNode{}
		s.names[key] = n
	}
	return n
}

// addRule indexes r's indicators, re-validating them (cheap) so that a Set
// never holds an indicator the parser would reject.
func (s *Set) addRule(r *Rule, seen map[string]bool, bad func(string, ...any)) {
	once := func(kind, v string) bool {
		if seen[kind+"\x00"+v] {
			bad("%s %q is listed twice in this profile", kind, v)
			return false
		}
		seen[kind+"\x00"+v] = true
		return true
	}
	for _, d := range r.Match.Domains {
		if prob := checkName(d); prob != "" {
			bad("domain %q: %s", d, prob)
		} else if once(KindDomain, d) {
			n := s.node(d)
			n.domain = append(n.domain, Hit{r, KindDomain, d})
		}
	}
	for _, d := range r.Match.Names {
		if prob := checkName(d); prob != "" {
			bad("name %q: %s", d, prob)
		} else if once(KindName, d) {
			n := s.node(d)
			n.exact = append(n.exact, Hit{r, KindName, d})
		}
	}
	for _, pat := range r.Match.Patterns {
		if prob := checkPattern(pat); prob != "" {
			bad("pattern %q: %s", pat, prob)
		} else if once(KindPattern, pat) {
			label, rest, _ := strings.Cut(pat, ".")
			pre, suf, _ := strings.Cut(label, "*")
			n := s.node(rest)
			n.patterns = append(n.patterns, patEntry{pre, suf, Hit{r, KindPattern, pat}})
		}
	}
	for _, pfx := range r.Match.CIDRs {
		if _, prob := parseCIDR(pfx.String()); prob != "" || !pfx.IsValid() {
			bad("cidr %q: %s", pfx.String(), prob)
		} else if once(KindCIDR, pfx.String()) {
			t := &s.addr6
			if pfx.Addr().Is4() {
				t = &s.addr4
			}
			t.add(pfx, len(s.profiles)-1, Hit{r, KindCIDR, pfx.String()})
		}
	}
	for _, pr := range r.Match.Ports {
		txt := pr.String()
		if _, prob := parsePort(txt); prob != "" {
			bad("port %q: %s", txt, prob)
		} else if once(KindPort, txt) {
			e := portEntry{pr.Lo, pr.Hi, Hit{r, KindPort, txt}}
			if pr.Proto == ProtoTCP {
				s.tcp = append(s.tcp, e)
			} else {
				s.udp = append(s.udp, e)
			}
		}
	}
}

// finish orders the indexes so that the first hit found for a profile is
// the most specific one.
func (s *Set) finish() {
	for _, n := range s.names {
		slices.SortStableFunc(n.patterns, func(a, b patEntry) int {
			return cmp.Compare(len(b.pre)+len(b.suf), len(a.pre)+len(a.suf))
		})
	}
	s.addr4.build(u128{0, 1<<32 - 1})
	s.addr6.build(u128{^uint64(0), ^uint64(0)})
	for _, l := range [][]portEntry{s.tcp, s.udp} {
		slices.SortStableFunc(l, func(a, b portEntry) int {
			return cmp.Or(cmp.Compare(a.hi-a.lo, b.hi-b.lo), cmp.Compare(a.lo, b.lo))
		})
	}
}

// Profiles returns the profiles in load order.
func (s *Set) Profiles() []*Profile { return slices.Clone(s.profiles) }

// Rules returns every rule, profile by profile, in file order.
func (s *Set) Rules() []*Rule { return slices.Clone(s.rules) }

// addOnce appends h unless dst[start:] already has a hit of h's profile.
// Callers offer hits most specific first, so the first one per profile wins.
func addOnce(dst []Hit, start int, h Hit) []Hit {
	for i := start; i < len(dst); i++ {
		if dst[i].Rule.Profile == h.Rule.Profile {
			return dst
		}
	}
	return append(dst, h)
}

// MatchName appends at most one hit per profile for a DNS name, TLS SNI or
// HTTP host: the most specific one, where an exact name beats a pattern,
// which beats the longest matching domain suffix. Suffixes match only on
// label boundaries: domain "kaspersky.com" matches "kaspersky.com" and
// "a.kaspersky.com", never "notkaspersky.com". name must already be
// lower-case; one trailing dot is ignored. Hits come in profile order.
// It does O(labels) map look-ups on substrings of name and no allocation.
func (s *Set) MatchName(name string, dst []Hit) []Hit {
	if n := len(name); n > 0 && name[n-1] == '.' {
		name = name[:n-1]
	}
	if name == "" || len(s.names) == 0 {
		return dst
	}
	start := len(dst)
	n0 := s.names[name]
	if n0 != nil {
		for _, h := range n0.exact {
			dst = addOnce(dst, start, h)
		}
	}
	dot := strings.IndexByte(name, '.')
	var n1 *nameNode
	if dot >= 0 {
		n1 = s.names[name[dot+1:]]
		if n1 != nil && len(n1.patterns) > 0 {
			label := name[:dot]
			for i := range n1.patterns {
				if e := &n1.patterns[i]; e.match(label) {
					dst = addOnce(dst, start, e.hit)
				}
			}
		}
	}
	// Domain suffixes, longest first.
	if n0 != nil {
		for _, h := range n0.domain {
			dst = addOnce(dst, start, h)
		}
	}
	if dot >= 0 {
		if n1 != nil {
			for _, h := range n1.domain {
				dst = addOnce(dst, start, h)
			}
		}
		for rest := name[dot+1:]; ; {
			i := strings.IndexByte(rest, '.')
			if i < 0 {
				break
			}
			rest = rest[i+1:]
			if n := s.names[rest]; n != nil {
				for _, h := range n.domain {
					dst = addOnce(dst, start, h)
				}
			}
		}
	}
	s.sortHits(dst[start:])
	return dst
}

// MatchAddr appends at most one hit per profile for an address: the rule
// with the longest matching prefix. IPv4-mapped IPv6 addresses match IPv4
// prefixes; zones are ignored. It does not allocate.
func (s *Set) MatchAddr(a netip.Addr, dst []Hit) []Hit {
	a = a.Unmap()
	t := &s.addr6
	switch {
	case a.Is4():
		t = &s.addr4
	case !a.Is6():
		return dst
	}
	return append(dst, t.lookup(toU128(a))...)
}

// MatchPort appends at most one hit per profile for a transport port
// (proto 6 is TCP, 17 UDP; others never match): the rule with the
// narrowest matching range. It does not allocate.
func (s *Set) MatchPort(proto uint8, port uint16, dst []Hit) []Hit {
	var list []portEntry
	switch proto {
	case ProtoTCP:
		list = s.tcp
	case ProtoUDP:
		list = s.udp
	default:
		return dst
	}
	start := len(dst)
	for i := range list {
		if e := &list[i]; port >= e.lo && port <= e.hi {
			dst = addOnce(dst, start, e.hit)
		}
	}
	s.sortHits(dst[start:])
	return dst
}

// sortHits puts hits (at most one per profile) in profile order.
func (s *Set) sortHits(h []Hit) {
	if len(h) < 2 {
		return
	}
	for i := 1; i < len(h); i++ {
		for j := i; j > 0 && s.index(h[j].Rule.Profile) < s.index(h[j-1].Rule.Profile); j-- {
			h[j], h[j-1] = h[j-1], h[j]
		}
	}
}

func (s *Set) index(p *Profile) int {
	for i, q := range s.profiles {
		if q == p {
			return i
		}
	}
	return len(s.profiles)
}
