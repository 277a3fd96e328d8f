package rules

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/gaissmai/bart"
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

	// Indexes of plain rules (a block of indicators, any one matching).
	// names maps a domain, an exact name, or the fixed part of a pattern to
	// a nameRef: most names carry one indicator of one rule (a direct
	// reference to a hit template in nameRefs, the indicator being the key
	// itself); the others a node in nameNodes.
	names     nameIndex
	nameRefs  []Hit      // hit templates, one per rule and kind; Indicator unset
	nameNodes []nameNode // names with several indicators, or patterns
	addr4     addrTable
	addr6     addrTable
	tcp       []portEntry // narrowest range first
	udp       []portEntry
	asns      map[uint32][]Hit // one hit per profile, in profile order
	countryIx [26 * 26]uint16  // countryIndex -> 1 + index into countries; 0: none
	countries [][]Hit          // one hit per profile, in profile order
	ja4       map[string][]Hit // exact fingerprints; one hit per profile, in profile order
	ja4Wild   []ja4Entry       // with '*' sections; most fixed sections first
	uas       []uaEntry        // most fixed characters first

	combined []*ruleInfo // rules whose match is a combinator, in rule order
	kinds    uint16      // kindBit of every kind used by any rule
}

type ja4Entry struct {
	pat ja4Pat
	hit Hit
}

type uaEntry struct {
	g   glob
	hit Hit
}

// nodeBit marks a nameEntry value that indexes Set.nameNodes; without it
// the value indexes Set.nameRefs.
const nodeBit = 1 << 31

// noRef is the value of a name just inserted, before it gets one.
const noRef = ^uint32(0)

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

// match reports whether the leftmost label of a name matches; with fold,
// ignoring ASCII case (pre and suf are lower case).
func (e *patEntry) match(label string, fold bool) bool {
	if len(label) == 0 || len(label) < len(e.pre)+len(e.suf) {
		return false
	}
	if fold {
		return equalLower(label[:len(e.pre)], e.pre) && equalLower(label[len(label)-len(e.suf):], e.suf)
	}
	return strings.HasPrefix(label, e.pre) && strings.HasSuffix(label, e.suf)
}

// addrTable is the prefix index of one address family: a bart table
// (github.com/gaissmai/bart, a multibit trie with popcount-compressed
// nodes) whose value at each prefix is the hit list of the addresses whose
// longest matching prefix it is: for every profile, that profile's longest
// prefix among the prefix itself and the prefixes containing it, in profile
// order. A look-up is one longest-prefix match, about 50 ns with a million
// prefixes (BenchmarkMatchAddr1M); the sorted-segment table it replaced
// took 370 ns there.
type addrTable struct {
	prefixes []addrPrefix // collected while compiling
	tbl      bart.Table[[]Hit]
}

type addrPrefix struct {
	first, last u128
	pfx         netip.Prefix
	pidx        int
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
	t.prefixes = append(t.prefixes, addrPrefix{toU128(p.Addr()), lastOf(p), p, pidx, h})
}

// build computes each prefix's hit list in O(n log n + n·depth) and fills
// the trie. Address prefixes are either nested or disjoint, so visiting
// them by first address (outermost first) with a stack of the open ones
// gives, at each prefix, exactly the prefixes that contain it; the deepest
// one of each profile is that profile's longest match. The lists share one
// backing array.
func (t *addrTable) build() {
	slices.SortFunc(t.prefixes, func(a, b addrPrefix) int {
		return cmp.Or(a.first.cmp(b.first), cmp.Compare(a.pfx.Bits(), b.pfx.Bits()), cmp.Compare(a.pidx, b.pidx))
	})
	var stack, best []addrPrefix
	var all []Hit
	type span struct {
		pfx        netip.Prefix
		start, end int
	}
	var spans []span
	for i := 0; i < len(t.prefixes); {
		p := t.prefixes[i]
		for len(stack) > 0 && stack[len(stack)-1].last.cmp(p.first) < 0 {
			stack = stack[:len(stack)-1]
		}
		// The same prefix in several profiles: push them all first.
		j := i
		for ; j < len(t.prefixes) && t.prefixes[j].pfx == p.pfx; j++ {
			stack = append(stack, t.prefixes[j])
		}
		i = j
		best = best[:0]
		for k := len(stack) - 1; k >= 0; k-- {
			q := stack[k]
			if !slices.ContainsFunc(best, func(b addrPrefix) bool { return b.pidx == q.pidx }) {
				best = append(best, q)
			}
		}
		slices.SortFunc(best, func(a, b addrPrefix) int { return cmp.Compare(a.pidx, b.pidx) })
		start := len(all)
		for _, b := range best {
			all = append(all, b.hit)
		}
		spans = append(spans, span{p.pfx, start, len(all)})
	}
	for _, sp := range spans {
		t.tbl.Insert(sp.pfx, all[sp.start:sp.end:sp.end])
	}
	t.prefixes = nil
}

// lookup returns the hits of the longest prefix holding a (of the table's
// family, unmapped).
func (t *addrTable) lookup(a netip.Addr) []Hit {
	hits, _ := t.tbl.Lookup(a)
	return hits
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
	s := &Set{asns: map[uint32][]Hit{}, ja4: map[string][]Hit{}}
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
			info := &ruleInfo{ord: len(s.rules), rule: r}
			s.rules = append(s.rules, r)
			if r.Match.Combined() {
				cond, kinds := compileCond(&r.Match, info, bad)
				if cond != nil {
					info.cond, info.kind = cond, KindAll
					if r.Match.Any != nil {
						info.kind = KindAny
					}
					s.kinds |= kinds | kindBit(info.kind)
					s.combined = append(s.combined, info)
				}
				continue
			}
			s.addRule(r, info, seen, bad)
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

// addName indexes a domain or exact name (kind) of a rule, given its hit.
// ref holds the rule's template for the kind in nameRefs (-1: none yet).
// It reports false if the profile lists the value twice.
func (s *Set) addName(h Hit, ref *int) bool {
	e, added := s.names.insert(h.Indicator)
	if added {
		if *ref < 0 {
			t := h
			t.Indicator = ""
			s.nameRefs = append(s.nameRefs, t)
			*ref = len(s.nameRefs) - 1
		}
		e.val = uint32(*ref)
		return true
	}
	n := s.promote(e)
	list := &n.domain
	if h.Kind == KindName {
		list = &n.exact
	}
	for _, o := range *list {
		if o.Rule.Profile == h.Rule.Profile {
			return false
		}
	}
	*list = append(*list, h)
	return true
}

// addPattern indexes a pattern under its fixed part (rest). It reports
// false if the profile lists the pattern twice.
func (s *Set) addPattern(rest string, pe patEntry) bool {
	e, _ := s.names.insert(rest)
	n := s.promote(e)
	for _, o := range n.patterns {
		if o.hit.Indicator == pe.hit.Indicator && o.hit.Rule.Profile == pe.hit.Rule.Profile {
			return false
		}
	}
	n.patterns = append(n.patterns, pe)
	return true
}

// promote turns a name's direct reference into a node (or makes a node for
// a name just added) and returns the node. The pointer is valid until the
// next promote.
func (s *Set) promote(e *nameSlot) *nameNode {
	if e.val != noRef && e.val&nodeBit != 0 {
		return &s.nameNodes[e.val&^nodeBit]
	}
	var n nameNode
	if e.val != noRef {
		h := s.nameRefs[e.val]
		h.Indicator = e.key
		if h.Kind == KindName {
			n.exact = []Hit{h}
		} else {
			n.domain = []Hit{h}
		}
	}
	s.nameNodes = append(s.nameNodes, n)
	e.val = nodeBit | uint32(len(s.nameNodes)-1)
	return &s.nameNodes[len(s.nameNodes)-1]
}

// addRule indexes the indicators of a plain rule, re-validating them
// (cheap) so that a Set never holds an indicator the parser would reject.
func (s *Set) addRule(r *Rule, info *ruleInfo, seen map[string]bool, bad func(string, ...any)) {
	once := func(kind, v string) bool {
		if seen[kind+"\x00"+v] {
			bad("%s %q is listed twice in this profile", kind, v)
			return false
		}
		seen[kind+"\x00"+v] = true
		s.kinds |= kindBit(kind)
		return true
	}
	hit := func(kind, v string) Hit { return Hit{Rule: r, Kind: kind, Indicator: v, info: info} }
	// Names are checked for duplicates by the name index itself: a
	// million-name feed needs no second map.
	refDomain, refName := -1, -1
	for _, list := range []struct {
		kind string
		vals []string
		ref  *int
	}{{KindDomain, r.Match.Domains, &refDomain}, {KindName, r.Match.Names, &refName}} {
		for _, d := range list.vals {
			switch {
			case checkName(d) != "":
				bad("%s %q: %s", list.kind, d, checkName(d))
			case !s.addName(hit(list.kind, d), list.ref):
				bad("%s %q is listed twice in this profile", list.kind, d)
			default:
				s.kinds |= kindBit(list.kind)
			}
		}
	}
	for _, pat := range r.Match.Patterns {
		if prob := checkPattern(pat); prob != "" {
			bad("pattern %q: %s", pat, prob)
			continue
		}
		label, rest, _ := strings.Cut(pat, ".")
		pre, suf, _ := strings.Cut(label, "*")
		if !s.addPattern(rest, patEntry{pre, suf, hit(KindPattern, pat)}) {
			bad("%s %q is listed twice in this profile", KindPattern, pat)
		} else {
			s.kinds |= kindBit(KindPattern)
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
			t.add(pfx, len(s.profiles)-1, hit(KindCIDR, pfx.String()))
		}
	}
	for _, pr := range r.Match.Ports {
		txt := pr.String()
		if _, prob := parsePort(txt); prob != "" {
			bad("port %q: %s", txt, prob)
		} else if once(KindPort, txt) {
			e := portEntry{pr.Lo, pr.Hi, hit(KindPort, txt)}
			if pr.Proto == ProtoTCP {
				s.tcp = append(s.tcp, e)
			} else {
				s.udp = append(s.udp, e)
			}
		}
	}
	for _, a := range r.Match.ASNs {
		txt := FormatASN(a)
		if prob := checkASN(a); prob != "" {
			bad("asn %q: %s", txt, prob)
		} else if once(KindASN, txt) {
			s.asns[a] = append(s.asns[a], hit(KindASN, txt))
		}
	}
	for _, c := range r.Match.Countries {
		if prob := checkCountry(c); prob != "" {
			bad("country %q: %s", c, prob)
		} else if once(KindCountry, c) {
			i := countryIndex(c)
			if s.countryIx[i] == 0 {
				s.countries = append(s.countries, nil)
				s.countryIx[i] = uint16(len(s.countries))
			}
			s.countries[s.countryIx[i]-1] = append(s.countries[s.countryIx[i]-1], hit(KindCountry, c))
		}
	}
	for _, j := range r.Match.JA4 {
		if prob := checkJA4(j); prob != "" {
			bad("ja4 %q: %s", j, prob)
		} else if once(KindJA4, j) {
			if pat := compileJA4(j); pat.fixed == 3 {
				s.ja4[j] = append(s.ja4[j], hit(KindJA4, j))
			} else {
				s.ja4Wild = append(s.ja4Wild, ja4Entry{pat, hit(KindJA4, j)})
			}
		}
	}
	for _, ua := range r.Match.UserAgents {
		if prob := checkUserAgent(ua); prob != "" {
			bad("user_agent %q: %s", ua, prob)
		} else if once(KindUserAgent, strings.ToLower(ua)) {
			s.uas = append(s.uas, uaEntry{compileGlob(ua), hit(KindUserAgent, ua)})
		}
	}
}

// finish orders the indexes so that the first hit found for a profile is
// the most specific one.
func (s *Set) finish() {
	for i := range s.nameNodes {
		slices.SortStableFunc(s.nameNodes[i].patterns, func(a, b patEntry) int {
			return cmp.Compare(len(b.pre)+len(b.suf), len(a.pre)+len(a.suf))
		})
	}
	s.names.freeze()
	s.addr4.build()
	s.addr6.build()
	for _, l := range [][]portEntry{s.tcp, s.udp} {
		slices.SortStableFunc(l, func(a, b portEntry) int {
			return cmp.Or(cmp.Compare(a.hi-a.lo, b.hi-b.lo), cmp.Compare(a.lo, b.lo))
		})
	}
	slices.SortStableFunc(s.ja4Wild, func(a, b ja4Entry) int { return cmp.Compare(b.pat.fixed, a.pat.fixed) })
	slices.SortStableFunc(s.uas, func(a, b uaEntry) int { return cmp.Compare(b.g.fixed, a.g.fixed) })
}

// NeedsGeo reports whether any rule uses countries or asns, that is
// whether Match can use Contact.Country and Contact.ASN. A sensor can skip
// GeoIP look-ups when it does not.
func (s *Set) NeedsGeo() bool {
	return s.kinds&(kindBit(KindASN)|kindBit(KindCountry)) != 0
}

// UsesKind reports whether any rule, plain or combined, uses indicators of
// the given kind (KindDomain … KindUserAgent; KindAll and KindAny for
// combined rules). A sensor can skip work for fields no rule reads, e.g.
// computing JA4 fingerprints when UsesKind(KindJA4) is false.
func (s *Set) UsesKind(kind string) bool { return s.kinds&kindBit(kind) != 0 }

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
// "a.kaspersky.com", never "notkaspersky.com". ASCII case is ignored and
// one trailing dot is removed. A name is never decoded: an internationalised
// rule matches the A-label ("xn--…"), and a name holding a control byte, a
// space, a byte of 0x7f or above or a backslash (the sensor's \DDD escapes)
// matches nothing. Hits come in profile order. It hashes the name once and
// does one table look-up per label, without allocating.
func (s *Set) MatchName(name string, dst []Hit) []Hit {
	if s.names.len() == 0 {
		return dst
	}
	var buf wireBuf
	w := buf.wire()
	if !w.prepare(name) {
		return s.matchLongName(name, dst)
	}
	return s.matchName(&w, dst)
}

// matchLongName is MatchName for a name of more than shortLabels labels.
func (s *Set) matchLongName(name string, dst []Hit) []Hit {
	var long wireBufLong
	w := long.wire()
	w.prepare(name)
	return s.matchName(&w, dst)
}

func (s *Set) matchName(w *wireName, dst []Hit) []Hit {
	if !w.ok || w.n == 0 || s.names.len() == 0 {
		return dst
	}
	// The filter first, for every suffix at once: its look-ups do not
	// depend on each other, so their cache misses overlap, and a name no
	// rule can hold, the common case, ends here.
	var maybe uint64 // bit k: suffix k may be a key (k < 64; beyond, always)
	for k := range min(w.n, 64) {
		if s.names.mayHave(w.h[k]) {
			maybe |= 1 << k
		}
	}
	if maybe == 0 && w.n <= 64 {
		return dst
	}
	find := func(k int) *nameEntry {
		if k < 64 && maybe&(1<<k) == 0 {
			return nil
		}
		return s.names.find(w, k)
	}
	start := len(dst)
	// The name itself and its parent, when short enough to be keys.
	full, parent := -1, -1
	next := w.n - 1 // the longest suffix not looked at yet
	if int(w.back[next]) == len(w.s) {
		full = next
		next--
	}
	dot := strings.IndexByte(w.s, '.')
	if dot >= 0 && next >= 0 && int(w.back[next]) == len(w.s)-dot-1 {
		parent = next
		next--
	}
	var e0, e1 *nameEntry
	if full >= 0 {
		e0 = find(full)
	}
	if parent >= 0 {
		e1 = find(parent)
	}
	if e0 != nil {
		dst = s.nameHits(e0, KindName, dst, start)
	}
	if e1 != nil && e1.val&nodeBit != 0 {
		label := w.s[:dot]
		pats := s.nameNodes[e1.val&^nodeBit].patterns
		for i := range pats {
			if e := &pats[i]; e.match(label, w.upper) {
				dst = addOnce(dst, start, e.hit)
			}
		}
	}
	// Domain suffixes, longest first.
	if e0 != nil {
		dst = s.nameHits(e0, KindDomain, dst, start)
	}
	if e1 != nil {
		dst = s.nameHits(e1, KindDomain, dst, start)
	}
	for k := next; k >= 0; k-- {
		if e := find(k); e != nil {
			dst = s.nameHits(e, KindDomain, dst, start)
		}
	}
	s.sortHits(dst[start:])
	return dst
}

// nameHits offers the hits of kind (KindName or KindDomain) of a name.
func (s *Set) nameHits(e *nameEntry, kind string, dst []Hit, start int) []Hit {
	if e.val&nodeBit == 0 {
		if t := &s.nameRefs[e.val]; t.Kind == kind {
			h := *t
			h.Indicator = s.names.key(e)
			dst = addOnce(dst, start, h)
		}
		return dst
	}
	n := &s.nameNodes[e.val&^nodeBit]
	list := n.domain
	if kind == KindName {
		list = n.exact
	}
	for _, h := range list {
		dst = addOnce(dst, start, h)
	}
	return dst
}

// MatchAddr appends at most one hit per profile for an address: the rule
// with the longest matching prefix. IPv4-mapped IPv6 addresses match IPv4
// prefixes; zones are ignored. It does one longest-prefix look-up in a
// trie and does not allocate.
func (s *Set) MatchAddr(a netip.Addr, dst []Hit) []Hit {
	a = a.Unmap()
	t := &s.addr6
	switch {
	case a.Is4():
		t = &s.addr4
	case !a.Is6():
		return dst
	}
	return append(dst, t.lookup(a)...)
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

// matchJA4 appends at most one hit per profile for a JA4 fingerprint: an
// exact one, else the one with most fixed sections.
func (s *Set) matchJA4(fp string, dst []Hit) []Hit {
	start := len(dst)
	dst = append(dst, s.ja4[fp]...)
	if len(s.ja4Wild) > 0 {
		if a, b, c, ok := splitJA4(fp); ok {
			for i := range s.ja4Wild {
				if e := &s.ja4Wild[i]; e.pat.match(a, b, c) {
					dst = addOnce(dst, start, e.hit)
				}
			}
		}
	}
	s.sortHits(dst[start:])
	return dst
}

// matchUA appends at most one hit per profile for a User-Agent: the glob
// with most fixed characters.
func (s *Set) matchUA(ua string, dst []Hit) []Hit {
	start := len(dst)
	for i := range s.uas {
		if e := &s.uas[i]; e.g.match(ua) {
			dst = addOnce(dst, start, e.hit)
		}
	}
	s.sortHits(dst[start:])
	return dst
}

// Match appends a hit for every rule whose condition holds for c, at most
// one per rule, in rule order (profile by profile, in file order), and
// returns the extended slice. It allocates nothing beyond growing dst.
//
// A plain rule (a block of indicators) holds when one of the contact's
// fields selects it. Each field selects at most one rule per profile, the
// most specific, exactly as MatchName, MatchAddr and MatchPort do: for a
// name an exact name beats a pattern beats the longest domain suffix, so
// "s01.upd.kaspersky.com" selects kaspersky-update and not also the brand
// rule; for an address the longest prefix; for a port the narrowest range;
// for a JA4 an exact fingerprint, then the one with most fixed sections;
// for a User-Agent the glob with most fixed characters. ASNs and countries
// appear at most once per profile. A rule selected by several fields is
// reported once, for the first of name, JA4, User-Agent, address, ASN,
// country, port.
//
// A combined rule (all, any, not) holds when its condition does; each of
// its indicators matches on its own, whatever other rules hold, so a
// combined rule can hold together with plain rules of the same profile.
// Its hit has Kind KindAll or KindAny; Reason explains every part.
//
// Empty fields of c match nothing; a Port matches only with its Proto.
// Name is matched as MatchName does (ASCII case ignored, one trailing dot
// removed, never decoded); Country is upper case, as the indicators are.
func (s *Set) Match(c *Contact, dst []Hit) []Hit {
	if c == nil {
		return dst
	}
	var buf wireBuf
	w := buf.wire()
	if c.Name != "" && !w.prepare(c.Name) {
		return s.matchLongContact(c, dst)
	}
	return s.match(c, &w, dst)
}

// matchLongContact is Match for a name of more than shortLabels labels.
func (s *Set) matchLongContact(c *Contact, dst []Hit) []Hit {
	var long wireBufLong
	w := long.wire()
	w.prepare(c.Name)
	return s.match(c, &w, dst)
}

// match is Match with c.Name prepared as w.
func (s *Set) match(c *Contact, w *wireName, dst []Hit) []Hit {
	start := len(dst)
	if c.Name != "" {
		dst = s.matchName(w, dst)
	}
	if c.JA4 != "" && s.kinds&kindBit(KindJA4) != 0 {
		dst = s.matchJA4(c.JA4, dst)
	}
	if c.UserAgent != "" && len(s.uas) > 0 {
		dst = s.matchUA(c.UserAgent, dst)
	}
	if c.Addr.IsValid() {
		dst = s.MatchAddr(c.Addr, dst)
	}
	if c.ASN != 0 {
		dst = append(dst, s.asns[c.ASN]...)
	}
	if i := countryIndex(c.Country); i >= 0 && s.countryIx[i] != 0 {
		dst = append(dst, s.countries[s.countryIx[i]-1]...)
	}
	if c.Port != 0 {
		dst = s.MatchPort(c.Proto, c.Port, dst)
	}
	// One hit per rule: the first field wins.
	n := start
	for i := start; i < len(dst); i++ {
		dup := false
		for j := start; j < n; j++ {
			if dst[j].Rule == dst[i].Rule {
				dup = true
				break
			}
		}
		if !dup {
			dst[n] = dst[i]
			n++
		}
	}
	dst = dst[:n]
	if len(s.combined) > 0 {
		v := newView(c, w)
		known := fields(c)
	rules:
		for _, ri := range s.combined {
			for _, f := range ri.needs {
				if f&known == 0 {
					continue rules
				}
			}
			var p parts
			if ri.cond.eval(&v, &p) {
				dst = append(dst, ri.hit(&p))
			}
		}
	}
	// Rule order (insertion sort: a handful of hits).
	h := dst[start:]
	for i := 1; i < len(h); i++ {
		for j := i; j > 0 && h[j].info.ord < h[j-1].info.ord; j-- {
			h[j], h[j-1] = h[j-1], h[j]
		}
	}
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
