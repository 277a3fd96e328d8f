package rules

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// Combined conditions (all, any, not) are compiled per rule into a small
// tree that Set.Match evaluates after the indexes of plain rules. Every
// indicator of the tree that can be reported as a part of a hit, and every
// "not", is a leaf with a number; a hit records the numbers of the parts
// that held (Hit.parts), so that Reason can explain it later without the
// matcher allocating.

// maxDepth bounds the nesting of conditions; the match block itself is
// level 1.
const maxDepth = 4

// maxLeaves bounds the leaves of one combined rule (they are numbered with
// uint16).
const maxLeaves = 1 << 16

// ruleInfo is what a Set knows of one of its rules beyond the Rule itself.
type ruleInfo struct {
	ord    int       // position in Set.rules
	rule   *Rule     // for combined rules
	kind   string    // KindAll or KindAny; combined rules only
	cond   *condNode // combined rules only
	leaves []leaf
	// needs lists, for a combined rule, sets of contact fields (fieldBit)
	// of which at least one must be known for the rule to be able to hold;
	// Match skips the rule when one of them has none.
	needs []uint8
}

// Contact fields, for ruleInfo.needs.
const (
	fieldName uint8 = 1 << iota
	fieldAddr
	fieldPort
	fieldASN
	fieldCountry
	fieldJA4
	fieldUA
)

// fields returns the fields of c that are known.
func fields(c *Contact) uint8 {
	var f uint8
	if c.Name != "" {
		f |= fieldName
	}
	if c.Addr.IsValid() {
		f |= fieldAddr
	}
	if c.Port != 0 {
		f |= fieldPort
	}
	if c.ASN != 0 {
		f |= fieldASN
	}
	if c.Country != "" {
		f |= fieldCountry
	}
	if c.JA4 != "" {
		f |= fieldJA4
	}
	if c.UserAgent != "" {
		f |= fieldUA
	}
	return f
}

// needs returns what ruleInfo.needs holds for m: one set per block that
// must hold (the fields of its indicators), a single union for an any, and
// nothing for a not.
func needs(m *Match) []uint8 {
	switch {
	case m.All != nil:
		var out []uint8
		for i := range m.All {
			out = append(out, needs(&m.All[i])...)
		}
		return out
	case m.Any != nil:
		var u uint8
		for i := range m.Any {
			for _, f := range needs(&m.Any[i]) {
				u |= f
			}
		}
		return []uint8{u}
	case m.Not != nil:
		return nil
	}
	var f uint8
	for _, x := range []struct {
		n   int
		bit uint8
	}{
		{len(m.Domains) + len(m.Names) + len(m.Patterns), fieldName}, {len(m.CIDRs), fieldAddr}, {len(m.Ports), fieldPort},
		{len(m.ASNs), fieldASN}, {len(m.Countries), fieldCountry}, {len(m.JA4), fieldJA4}, {len(m.UserAgents), fieldUA},
	} {
		if x.n > 0 {
			f |= x.bit
		}
	}
	return []uint8{f}
}

// leaf is one reportable part of a combined rule: an indicator (kind, ind)
// or a negated condition (not, its text without the leading "not ").
type leaf struct {
	kind, ind string
	not       string
}

type condOp uint8

const (
	opBlock condOp = iota
	opAll
	opAny
	opNot
)

type condNode struct {
	op   condOp
	kids []*condNode // all, any; not: one
	id   uint16      // not: its leaf
	blk  *condBlock  // block
}

// condBlock is a compiled block of indicators: it holds when any of them
// matches, and reports the most specific one (an exact name before a
// pattern before the longest domain; the longest prefix; the narrowest
// port range; an exact JA4 or the one with most fixed sections; the
// User-Agent glob with most fixed characters), fields in the order name,
// JA4, User-Agent, address, ASN, country, port.
type condBlock struct {
	exact     nameIndex // values: leaf ids
	domains   nameIndex
	patterns  []condPattern
	cidrs     []condCIDR
	ports     []condPort
	asns      map[uint32]uint16
	countries []condString
	ja4       []condJA4
	uas       []condUA
}

type condPattern struct {
	pat  patEntry // hit unused
	rest string
	id   uint16
}

type condCIDR struct {
	pfx netip.Prefix
	id  uint16
}

type condPort struct {
	pr PortRange
	id uint16
}

type condString struct {
	s  string
	id uint16
}

type condJA4 struct {
	pat ja4Pat
	id  uint16
}

type condUA struct {
	g  glob
	id uint16
}

// parts accumulates the leaves of a combined hit while a tree is evaluated.
type parts struct {
	ids [maxParts]uint16
	n   int
}

func (p *parts) push(id uint16) {
	if p.n < len(p.ids) {
		p.ids[p.n] = id
	}
	p.n++
}

// contactView is a Contact with what the blocks need precomputed once.
type contactView struct {
	c          *Contact
	name       *wireName // the name prepared for look-ups
	a, b, cc   string    // JA4 sections
	ja4OK      bool
	addr       netip.Addr // unmapped
	hasCountry bool
}

// newView prepares c for the blocks; w is c.Name prepared (or zero when
// c.Name is empty).
func newView(c *Contact, w *wireName) contactView {
	v := contactView{c: c, name: w, addr: c.Addr.Unmap().WithZone("")}
	v.a, v.b, v.cc, v.ja4OK = splitJA4(c.JA4)
	v.hasCountry = c.Country != ""
	return v
}

func (n *condNode) eval(v *contactView, p *parts) bool {
	switch n.op {
	case opBlock:
		id, ok := n.blk.match(v)
		if ok {
			p.push(id)
		}
		return ok
	case opAll:
		mark := p.n
		for _, k := range n.kids {
			if !k.eval(v, p) {
				p.n = mark
				return false
			}
		}
		return true
	case opAny:
		for _, k := range n.kids {
			if k.eval(v, p) {
				return true
			}
		}
		return false
	case opNot:
		mark := p.n
		held := n.kids[0].eval(v, p)
		p.n = mark
		if held {
			return false
		}
		p.push(n.id)
		return true
	}
	return false
}

func (b *condBlock) match(v *contactView) (uint16, bool) {
	if w := v.name; w.ok && w.n > 0 {
		name := w.s
		if int(w.back[w.n-1]) == len(name) {
			if e := b.exact.find(w, w.n-1); e != nil {
				return uint16(e.val), true
			}
		}
		if len(b.patterns) > 0 {
			if dot := strings.IndexByte(name, '.'); dot >= 0 {
				label, rest := name[:dot], name[dot+1:]
				for i := range b.patterns {
					e := &b.patterns[i]
					if (e.rest == rest || w.upper && equalLower(rest, e.rest)) && e.pat.match(label, w.upper) {
						return e.id, true
					}
				}
			}
		}
		for k := w.n - 1; k >= 0 && b.domains.len() > 0; k-- {
			if e := b.domains.find(w, k); e != nil {
				return uint16(e.val), true
			}
		}
	}
	if v.ja4OK { // a fingerprint of another shape equals no valid indicator
		for i := range b.ja4 {
			if e := &b.ja4[i]; e.pat.match(v.a, v.b, v.cc) {
				return e.id, true
			}
		}
	}
	if v.c.UserAgent != "" {
		for i := range b.uas {
			if b.uas[i].g.match(v.c.UserAgent) {
				return b.uas[i].id, true
			}
		}
	}
	if v.addr.IsValid() {
		for i := range b.cidrs {
			if b.cidrs[i].pfx.Contains(v.addr) {
				return b.cidrs[i].id, true
			}
		}
	}
	if v.c.ASN != 0 && b.asns != nil {
		if id, ok := b.asns[v.c.ASN]; ok {
			return id, true
		}
	}
	if v.hasCountry {
		for i := range b.countries {
			if b.countries[i].s == v.c.Country {
				return b.countries[i].id, true
			}
		}
	}
	if v.c.Port != 0 {
		for i := range b.ports {
			if pr := &b.ports[i].pr; pr.Proto == v.c.Proto && v.c.Port >= pr.Lo && v.c.Port <= pr.Hi {
				return b.ports[i].id, true
			}
		}
	}
	return 0, false
}

// hit builds the Hit of a combined rule from the parts that held.
func (ri *ruleInfo) hit(p *parts) Hit {
	h := Hit{Rule: ri.rule, Kind: ri.kind, info: ri}
	n := min(p.n, maxParts)
	copy(h.parts[:], p.ids[:n])
	h.nParts = uint8(n)
	for _, id := range h.parts[:n] {
		if l := &ri.leaves[id]; l.not == "" {
			h.Indicator = l.ind
			break
		}
	}
	return h
}

// condCompiler builds the tree of one combined rule, checking it again (a
// hand-built Rule did not go through the parser).
type condCompiler struct {
	info *ruleInfo
	kind uint16 // kinds used, as kindBit
	bad  func(string, ...any)
}

// compileCond compiles a combined rule's condition. It reports problems
// through bad and returns nil if there were any.
func compileCond(m *Match, info *ruleInfo, bad func(string, ...any)) (*condNode, uint16) {
	ok := true
	report := func(format string, args ...any) {
		ok = false
		bad(format, args...)
	}
	cc := &condCompiler{info: info, bad: report}
	if m.Not != nil && m.All == nil && m.Any == nil {
		report("match: a lone not holds for almost every contact; combine it with a positive condition in all")
		return nil, 0
	}
	n := cc.node(m, 1)
	if !ok {
		return nil, 0
	}
	if k := countParts(m); k > maxParts {
		report("match: the condition can hold through %d parts; at most %d can be explained, so split the rule", k, maxParts)
		return nil, 0
	}
	if len(info.leaves) > maxLeaves {
		report("match: more than %d indicators in one combined rule", maxLeaves)
		return nil, 0
	}
	info.needs = slices.Compact(needs(m))
	return n, cc.kind
}

// countParts returns the most parts m can hold through.
func countParts(m *Match) int {
	switch {
	case m.All != nil:
		n := 0
		for i := range m.All {
			n += countParts(&m.All[i])
		}
		return n
	case m.Any != nil:
		n := 0
		for i := range m.Any {
			n = max(n, countParts(&m.Any[i]))
		}
		return n
	}
	return 1
}

// shapeProblem checks the combinators of m (not its indicators) and returns
// the first problem, or "". The parser reports the same problems with
// positions.
func shapeProblem(m *Match, depth int) string {
	combs := 0
	for _, b := range []bool{m.All != nil, m.Any != nil, m.Not != nil} {
		if b {
			combs++
		}
	}
	plain := m.Len()
	for i := range m.All {
		plain -= m.All[i].Len()
	}
	for i := range m.Any {
		plain -= m.Any[i].Len()
	}
	if m.Not != nil {
		plain -= m.Not.Len()
	}
	switch {
	case combs > 0 && depth >= maxDepth:
		return fmt.Sprintf("conditions nested more than %d deep", maxDepth)
	case combs > 1:
		return "only one of all, any, not per condition"
	case combs == 1 && plain > 0:
		return "indicators and a combinator in one condition; make the indicators a condition of their own"
	case combs == 0 && plain == 0:
		return "condition must list at least one indicator"
	case m.All != nil && len(m.All) < 2:
		return "all needs at least two conditions"
	case m.Any != nil && len(m.Any) < 2:
		return "any needs at least two conditions"
	case m.Not != nil && m.Not.Not != nil:
		return "double negation; write the condition itself"
	}
	if m.All != nil && !slices.ContainsFunc(m.All, func(c Match) bool { return c.Not == nil }) {
		return "all needs at least one condition that is not a not"
	}
	if slices.ContainsFunc(m.Any, func(c Match) bool { return c.Not != nil }) {
		return "a not cannot be a branch of any (it would hold for almost every contact); use it inside all"
	}
	return ""
}

func (cc *condCompiler) node(m *Match, depth int) *condNode {
	if prob := shapeProblem(m, depth); prob != "" {
		cc.bad("match: %s", prob)
		return nil
	}
	switch {
	case m.All != nil, m.Any != nil:
		n := &condNode{op: opAll}
		list := m.All
		if m.Any != nil {
			n.op, list = opAny, m.Any
		}
		for i := range list {
			n.kids = append(n.kids, cc.node(&list[i], depth+1))
		}
		return n
	case m.Not != nil:
		// The indicators under a not are never reported one by one.
		sub := &condCompiler{info: &ruleInfo{}, bad: cc.bad}
		kid := sub.node(m.Not, depth+1)
		cc.kind |= sub.kind
		return &condNode{op: opNot, kids: []*condNode{kid}, id: cc.leaf(leaf{not: describeCond(m.Not)})}
	}
	return &condNode{op: opBlock, blk: cc.block(m)}
}

func (cc *condCompiler) leaf(l leaf) uint16 {
	cc.info.leaves = append(cc.info.leaves, l)
	return uint16(len(cc.info.leaves) - 1)
}

// block compiles a block of indicators, checking each again. Within one
// block a value may appear once per kind; across blocks of a rule, and
// against plain rules of the profile, it may repeat.
func (cc *condCompiler) block(m *Match) *condBlock {
	b := &condBlock{}
	seen := map[string]bool{}
	once := func(kind, v string) bool {
		if seen[kind+"\x00"+v] {
			cc.bad("%s %q is listed twice in one condition", kind, v)
			return false
		}
		seen[kind+"\x00"+v] = true
		cc.kind |= kindBit(kind)
		return true
	}
	for _, d := range m.Names {
		if prob := checkName(d); prob != "" {
			cc.bad("name %q: %s", d, prob)
		} else if once(KindName, d) {
			e, _ := b.exact.insert(d)
			e.val = uint32(cc.leaf(leaf{kind: KindName, ind: d}))
		}
	}
	for _, pat := range m.Patterns {
		if prob := checkPattern(pat); prob != "" {
			cc.bad("pattern %q: %s", pat, prob)
		} else if once(KindPattern, pat) {
			label, rest, _ := strings.Cut(pat, ".")
			pre, suf, _ := strings.Cut(label, "*")
			b.patterns = append(b.patterns, condPattern{patEntry{pre: pre, suf: suf}, rest, cc.leaf(leaf{kind: KindPattern, ind: pat})})
		}
	}
	slices.SortStableFunc(b.patterns, func(x, y condPattern) int {
		return cmp.Compare(len(y.pat.pre)+len(y.pat.suf), len(x.pat.pre)+len(x.pat.suf))
	})
	for _, d := range m.Domains {
		if prob := checkName(d); prob != "" {
			cc.bad("domain %q: %s", d, prob)
		} else if once(KindDomain, d) {
			e, _ := b.domains.insert(d)
			e.val = uint32(cc.leaf(leaf{kind: KindDomain, ind: d}))
		}
	}
	for _, j := range m.JA4 {
		if prob := checkJA4(j); prob != "" {
			cc.bad("ja4 %q: %s", j, prob)
		} else if once(KindJA4, j) {
			b.ja4 = append(b.ja4, condJA4{compileJA4(j), cc.leaf(leaf{kind: KindJA4, ind: j})})
		}
	}
	slices.SortStableFunc(b.ja4, func(x, y condJA4) int { return cmp.Compare(y.pat.fixed, x.pat.fixed) })
	for _, ua := range m.UserAgents {
		if prob := checkUserAgent(ua); prob != "" {
			cc.bad("user_agent %q: %s", ua, prob)
		} else if once(KindUserAgent, strings.ToLower(ua)) {
			b.uas = append(b.uas, condUA{compileGlob(ua), cc.leaf(leaf{kind: KindUserAgent, ind: ua})})
		}
	}
	slices.SortStableFunc(b.uas, func(x, y condUA) int { return cmp.Compare(y.g.fixed, x.g.fixed) })
	for _, pfx := range m.CIDRs {
		if _, prob := parseCIDR(pfx.String()); prob != "" || !pfx.IsValid() {
			cc.bad("cidr %q: %s", pfx.String(), prob)
		} else if once(KindCIDR, pfx.String()) {
			b.cidrs = append(b.cidrs, condCIDR{pfx, cc.leaf(leaf{kind: KindCIDR, ind: pfx.String()})})
		}
	}
	slices.SortStableFunc(b.cidrs, func(x, y condCIDR) int { return cmp.Compare(y.pfx.Bits(), x.pfx.Bits()) })
	for _, a := range m.ASNs {
		if prob := checkASN(a); prob != "" {
			cc.bad("asn %q: %s", FormatASN(a), prob)
		} else if once(KindASN, FormatASN(a)) {
			if b.asns == nil {
				b.asns = map[uint32]uint16{}
			}
			b.asns[a] = cc.leaf(leaf{kind: KindASN, ind: FormatASN(a)})
		}
	}
	for _, c := range m.Countries {
		if prob := checkCountry(c); prob != "" {
			cc.bad("country %q: %s", c, prob)
		} else if once(KindCountry, c) {
			b.countries = append(b.countries, condString{c, cc.leaf(leaf{kind: KindCountry, ind: c})})
		}
	}
	for _, pr := range m.Ports {
		txt := pr.String()
		if _, prob := parsePort(txt); prob != "" {
			cc.bad("port %q: %s", txt, prob)
		} else if once(KindPort, txt) {
			b.ports = append(b.ports, condPort{pr, cc.leaf(leaf{kind: KindPort, ind: txt})})
		}
	}
	slices.SortStableFunc(b.ports, func(x, y condPort) int { return cmp.Compare(x.pr.Hi-x.pr.Lo, y.pr.Hi-y.pr.Lo) })
	b.exact.freeze()
	b.domains.freeze()
	return b
}

// describe renders a condition for the Reason of a not, e.g.
// `domain suffix "kaspersky.com"` or `(port 53/udp or port 53/tcp)`.
func describeCond(m *Match) string {
	switch {
	case m.All != nil, m.Any != nil:
		list, sep := m.All, " and "
		if m.Any != nil {
			list, sep = m.Any, " or "
		}
		parts := make([]string, len(list))
		for i := range list {
			parts[i] = describeCond(&list[i])
		}
		return "(" + strings.Join(parts, sep) + ")"
	case m.Not != nil:
		return "not " + describeCond(m.Not)
	}
	var parts []string
	add := func(kind string, vals []string) {
		for _, v := range vals {
			parts = append(parts, Hit{Kind: kind, Indicator: v}.Reason())
		}
	}
	add(KindName, m.Names)
	add(KindPattern, m.Patterns)
	add(KindDomain, m.Domains)
	add(KindJA4, m.JA4)
	add(KindUserAgent, m.UserAgents)
	for _, p := range m.CIDRs {
		add(KindCIDR, []string{p.String()})
	}
	for _, a := range m.ASNs {
		add(KindASN, []string{FormatASN(a)})
	}
	add(KindCountry, m.Countries)
	for _, p := range m.Ports {
		add(KindPort, []string{p.String()})
	}
	if len(parts) == 1 {
		return parts[0]
	}
	return "(" + strings.Join(parts, " or ") + ")"
}

// kind bits, for Set.UsesKind and Set.NeedsGeo.
var kindBits = []string{KindDomain, KindName, KindPattern, KindCIDR, KindPort, KindASN, KindCountry, KindJA4, KindUserAgent, KindAll, KindAny}

func kindBit(kind string) uint16 {
	for i, k := range kindBits {
		if k == kind {
			return 1 << i
		}
	}
	return 0
}
