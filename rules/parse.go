package rules

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Error is one problem in a rules file, with its position. Parse, Compile
// and Load return these joined with errors.Join; use errors.As to get one.
type Error struct {
	File   string
	Line   int // 1-based; 0 if unknown
	Column int // 1-based; 0 if unknown
	Msg    string
}

// Error formats the problem as "file:line:col: msg" (or "file:line: msg",
// or "file: msg" when the position is unknown).
func (e *Error) Error() string {
	switch {
	case e.Line > 0 && e.Column > 0:
		return e.File + ":" + strconv.Itoa(e.Line) + ":" + strconv.Itoa(e.Column) + ": " + e.Msg
	case e.Line > 0:
		return e.File + ":" + strconv.Itoa(e.Line) + ": " + e.Msg
	}
	return e.File + ": " + e.Msg
}

// maxErrors caps the errors reported for one file (or one Compile call), so
// that a file of the wrong shape does not produce thousands of lines.
const maxErrors = 20

// maxCollected bounds memory for pathological input; errors past it are
// only counted.
const maxCollected = 1000

type errList struct {
	errs    []*Error
	dropped int
}

func (l *errList) add(e *Error) {
	if len(l.errs) >= maxCollected {
		l.dropped++
		return
	}
	l.errs = append(l.errs, e)
}

func (l *errList) count() int { return len(l.errs) + l.dropped }

// sortByPosition orders the errors of one file by line and column; errors
// without a position come first.
func (l *errList) sortByPosition() {
	slices.SortStableFunc(l.errs, func(a, b *Error) int {
		return cmp.Or(cmp.Compare(a.Line, b.Line), cmp.Compare(a.Column, b.Column))
	})
}

// err joins the first maxErrors errors, noting how many more there were.
func (l *errList) err(file string) error {
	if len(l.errs) == 0 {
		return nil
	}
	n := min(len(l.errs), maxErrors)
	errs := make([]error, 0, n+1)
	for _, e := range l.errs[:n] {
		errs = append(errs, e)
	}
	if more := l.count() - n; more > 0 {
		errs = append(errs, &Error{File: file, Msg: fmt.Sprintf("too many errors; %d more not shown", more)})
	}
	return errors.Join(errs...)
}

// Keys of each mapping in the format, in documentation order.
var (
	topKeys     = []string{"profile", "rules"}
	profileKeys = []string{"id", "name", "version", "last_reviewed", "description", "sources"}
	sourceKeys  = []string{"title", "url"}
	ruleKeys    = []string{"id", "name", "category", "severity", "confidence", "sources", "note", "match"}
	// matchKeys are the indicator keys of a condition, in the order their
	// values are checked (and errors reported, before sorting).
	matchKeys      = []string{"domains", "names", "patterns", "cidrs", "ports", "asns", "countries", "ja4", "user_agents"}
	combinatorKeys = []string{"all", "any", "not"}
	conditionKeys  = slices.Concat(matchKeys, combinatorKeys)
	// reservedMatchKeys are indicator kinds planned for later versions of
	// the format; they get a clearer message than unknown keys.
	reservedMatchKeys = []string{"ja4s"}
	// matchKeyHints answer likely slips in a condition's keys.
	matchKeyHints = map[string]string{
		"domain": "domains", "name": "names", "pattern": "patterns", "cidr": "cidrs", "port": "ports",
		"asn": "asns", "country": "countries", "user_agent": "user_agents", "useragents": "user_agents",
		"user-agents": "user_agents", "and": "all", "or": "any",
	}
)

type parser struct {
	file string
	errList
}

// errf records a problem at node n; ctx ("profile", `rule "x"`) prefixes it.
func (p *parser) errf(n *yaml.Node, ctx, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if ctx != "" {
		msg = ctx + ": " + msg
	}
	e := &Error{File: p.file, Msg: msg}
	if n != nil {
		e.Line, e.Column = n.Line, n.Column
	}
	p.add(e)
}

// Parse parses and validates one profile file. file names the data in
// error messages and becomes Profile.File. On failure it returns every
// problem found (up to about 20), each as an *Error positioned at
// file:line:col, joined with errors.Join.
func Parse(file string, data []byte) (*Profile, []*Rule, error) {
	p := &parser{file: file}
	root := p.document(data)
	if root == nil {
		return nil, nil, p.err(file)
	}
	prof, rules := p.top(root)
	p.sortByPosition()
	if err := p.err(file); err != nil {
		return nil, nil, err
	}
	return prof, rules, nil
}

// document decodes exactly one YAML document and rejects aliases.
func (p *parser) document(data []byte) *yaml.Node {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if err == io.EOF {
			p.errf(nil, "", "empty file; want a mapping with keys profile and rules")
		} else {
			p.yamlError(err)
		}
		return nil
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case err == io.EOF:
	case err != nil:
		p.yamlError(err)
		return nil
	default:
		n := &extra
		if len(extra.Content) > 0 {
			n = extra.Content[0]
		}
		p.errf(n, "", "only one YAML document (one profile) per file")
		return nil
	}
	if len(doc.Content) == 0 {
		p.errf(nil, "", "empty file; want a mapping with keys profile and rules")
		return nil
	}
	if p.aliases(doc.Content[0]) {
		return nil
	}
	return doc.Content[0]
}

// yamlError turns a yaml.v3 syntax error ("yaml: line 3: msg") into an Error.
func (p *parser) yamlError(err error) {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	e := &Error{File: p.file, Msg: "invalid YAML: " + msg}
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if num, text, ok := strings.Cut(rest, ": "); ok {
			if line, err := strconv.Atoi(num); err == nil {
				e.Line, e.Msg = line, "invalid YAML: "+text
			}
		}
	}
	p.add(e)
}

func (p *parser) aliases(n *yaml.Node) bool {
	if n.Kind == yaml.AliasNode {
		p.errf(n, "", "YAML aliases (*%s) are not supported", n.Value)
		return true
	}
	found := false
	for _, c := range n.Content {
		found = p.aliases(c) || found
	}
	return found
}

// describe names a node's type for "must be X, got Y" messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!str":
			return "a string"
		case "!!int", "!!float":
			return "a number (" + n.Value + ")"
		case "!!bool":
			return "a boolean (" + n.Value + ")"
		case "!!null":
			return "nothing"
		case "!!timestamp":
			return "a date (" + n.Value + ")"
		}
		return "a value tagged " + strconv.Quote(n.Tag) // quoted: a tag may carry %-escaped line breaks
	}
	return "an unsupported YAML node"
}

// mapping checks that n is a mapping with string keys out of known, no
// duplicates and every key in required, and returns its values by key.
func (p *parser) mapping(n *yaml.Node, ctx, what string, known, required []string) map[string]*yaml.Node {
	if n.Kind != yaml.MappingNode {
		p.errf(n, ctx, "%s must be a mapping, got %s", what, describe(n))
		return nil
	}
	vals := make(map[string]*yaml.Node, len(n.Content)/2)
	keys := make(map[string]*yaml.Node, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode || k.ShortTag() != "!!str" {
			p.errf(k, ctx, "%s keys must be strings, got %s", what, describe(k))
			continue
		}
		if first, dup := keys[k.Value]; dup {
			p.errf(k, ctx, "duplicate key %q (first at line %d)", k.Value, first.Line)
			continue
		}
		keys[k.Value] = k
		if !contains(known, k.Value) {
			isCond := what == "match" || what == "condition"
			switch hint := matchKeyHints[k.Value]; {
			case isCond && contains(reservedMatchKeys, k.Value):
				p.errf(k, ctx, "%s key %q is reserved for a later version of the format and not supported yet", what, k.Value)
			case isCond && hint != "":
				p.errf(k, ctx, "unknown key %q in %s; did you mean %q?", k.Value, what, hint)
			default:
				p.errf(k, ctx, "unknown key %q in %s; want one of %s", k.Value, what, strings.Join(known, ", "))
			}
			continue
		}
		vals[k.Value] = v
	}
	for _, r := range required {
		if _, ok := keys[r]; !ok {
			p.errf(n, ctx, "missing required key %q in %s", r, what)
		}
	}
	return vals
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// str returns a string scalar. Missing optional keys give "", true.
func (p *parser) str(m map[string]*yaml.Node, key, ctx string, nonEmpty bool) (string, *yaml.Node, bool) {
	n := m[key]
	if n == nil {
		return "", nil, false
	}
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!str" {
		p.errf(n, ctx, "%s must be a string, got %s", key, describe(n))
		return "", n, false
	}
	if nonEmpty && strings.TrimSpace(n.Value) == "" {
		p.errf(n, ctx, "%s must not be empty", key)
		return "", n, false
	}
	return n.Value, n, true
}

// list returns the items of a non-empty sequence of string scalars.
func (p *parser) list(n *yaml.Node, key, ctx string) []*yaml.Node { return p.items(n, key, ctx, false) }

// items returns the items of a non-empty sequence of string scalars, or
// also of integers when intOK.
func (p *parser) items(n *yaml.Node, key, ctx string, intOK bool) []*yaml.Node {
	if n.Kind != yaml.SequenceNode {
		p.errf(n, ctx, "%s must be a list, got %s", key, describe(n))
		return nil
	}
	if len(n.Content) == 0 {
		p.errf(n, ctx, "%s must not be empty", key)
		return nil
	}
	items := make([]*yaml.Node, 0, len(n.Content))
	for _, it := range n.Content {
		if it.Kind != yaml.ScalarNode || it.ShortTag() != "!!str" && !(intOK && it.ShortTag() == "!!int") {
			want := "a string"
			if intOK {
				want = "a string or an integer"
			}
			p.errf(it, ctx, "%s: each item must be %s, got %s", key, want, describe(it))
			continue
		}
		items = append(items, it)
	}
	return items
}

func (p *parser) top(root *yaml.Node) (*Profile, []*Rule) {
	m := p.mapping(root, "", "the file", topKeys, topKeys)
	if m == nil {
		return nil, nil
	}
	var prof *Profile
	sourcesOK := false
	if n := m["profile"]; n != nil {
		prof, sourcesOK = p.profile(n)
	}
	var rules []*Rule
	if n := m["rules"]; n != nil {
		rules = p.rules(n, prof, sourcesOK)
	}
	return prof, rules
}

func (p *parser) profile(n *yaml.Node) (*Profile, bool) {
	const ctx = "profile"
	m := p.mapping(n, "", ctx, profileKeys, []string{"id", "name", "version", "last_reviewed", "sources"})
	if m == nil {
		return nil, false
	}
	prof := &Profile{File: p.file}
	if id, idn, ok := p.str(m, "id", ctx, true); ok {
		if !validID(id) {
			p.errf(idn, ctx, "id %q must match [a-z0-9-]+", id)
		}
		prof.ID, prof.line, prof.col = id, idn.Line, idn.Column
	}
	prof.Name, _, _ = p.str(m, "name", ctx, true)
	prof.Version, _, _ = p.str(m, "version", ctx, true)
	prof.Description, _, _ = p.str(m, "description", ctx, false)
	if dn := m["last_reviewed"]; dn != nil {
		tag := dn.ShortTag()
		if dn.Kind != yaml.ScalarNode || (tag != "!!timestamp" && tag != "!!str") {
			p.errf(dn, ctx, "last_reviewed must be a date YYYY-MM-DD, got %s", describe(dn))
		} else if t, err := time.Parse(time.DateOnly, dn.Value); err != nil {
			p.errf(dn, ctx, "last_reviewed %q must be a date YYYY-MM-DD", dn.Value)
		} else {
			prof.LastReviewed = t
		}
	}
	sourcesOK := false
	if sn := m["sources"]; sn != nil {
		sourcesOK = p.sources(sn, prof)
	}
	return prof, sourcesOK
}

func (p *parser) sources(n *yaml.Node, prof *Profile) bool {
	const ctx = "profile"
	before := p.count()
	if n.Kind != yaml.MappingNode {
		p.errf(n, ctx, "sources must be a mapping of id to {title, url}, got %s", describe(n))
		return false
	}
	if len(n.Content) == 0 {
		p.errf(n, ctx, "sources must not be empty")
		return false
	}
	prof.Sources = make(map[string]Source, len(n.Content)/2)
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode || k.ShortTag() != "!!str" {
			p.errf(k, ctx, "source ids must be strings, got %s", describe(k))
			continue
		}
		if line, dup := seen[k.Value]; dup {
			p.errf(k, ctx, "duplicate source %q (first at line %d)", k.Value, line)
			continue
		}
		seen[k.Value] = k.Line
		sctx := fmt.Sprintf("profile: source %q", k.Value)
		if !validSourceID(k.Value) {
			p.errf(k, ctx, "source id %q must match [A-Za-z0-9_-]+", k.Value)
			continue
		}
		sm := p.mapping(v, sctx, "source", sourceKeys, sourceKeys)
		if sm == nil {
			continue
		}
		var src Source
		src.Title, _, _ = p.str(sm, "title", sctx, true)
		if u, un, ok := p.str(sm, "url", sctx, true); ok {
			if pu, err := url.Parse(u); err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
				p.errf(un, sctx, "url %q must be an absolute http or https URL", u)
			}
			src.URL = u
		}
		prof.Sources[k.Value] = src
	}
	return p.count() == before
}

func validID(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

func validSourceID(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// seenIndicator remembers where an indicator was first listed in a profile.
type seenIndicator struct {
	rule      string
	line, col int
}

func (p *parser) rules(n *yaml.Node, prof *Profile, sourcesOK bool) []*Rule {
	if n.Kind != yaml.SequenceNode {
		p.errf(n, "", "rules must be a list, got %s", describe(n))
		return nil
	}
	if len(n.Content) == 0 {
		p.errf(n, "", "rules must not be empty")
		return nil
	}
	ids := map[string]*yaml.Node{}
	seen := map[string]seenIndicator{}
	rules := make([]*Rule, 0, len(n.Content))
	for i, rn := range n.Content {
		if r := p.rule(i, rn, prof, sourcesOK, ids, seen); r != nil {
			rules = append(rules, r)
		}
	}
	return rules
}

func (p *parser) rule(i int, n *yaml.Node, prof *Profile, sourcesOK bool, ids map[string]*yaml.Node, seen map[string]seenIndicator) *Rule {
	ctx := fmt.Sprintf("rule #%d", i+1)
	if n.Kind != yaml.MappingNode {
		p.errf(n, ctx, "must be a mapping, got %s", describe(n))
		return nil
	}
	// Find the id first so that every other message can name the rule.
	r := &Rule{Profile: prof}
	for j := 0; j+1 < len(n.Content); j += 2 {
		k, v := n.Content[j], n.Content[j+1]
		if k.Value == "id" && v.Kind == yaml.ScalarNode && v.ShortTag() == "!!str" && validID(v.Value) {
			ctx = fmt.Sprintf("rule %q", v.Value)
			break
		}
	}
	m := p.mapping(n, ctx, "rule", ruleKeys, []string{"id", "name", "category", "severity", "confidence", "sources", "match"})
	if id, idn, ok := p.str(m, "id", ctx, true); ok {
		switch first, dup := ids[id]; {
		case !validID(id):
			p.errf(idn, ctx, "id %q must match [a-z0-9-]+", id)
		case dup:
			p.errf(idn, ctx, "duplicate rule id (first at line %d)", first.Line)
		default:
			ids[id] = idn
		}
		r.ID, r.line, r.col = id, idn.Line, idn.Column
	}
	r.Name, _, _ = p.str(m, "name", ctx, true)
	r.Note, _, _ = p.str(m, "note", ctx, false)
	if c, cn, ok := p.str(m, "category", ctx, true); ok {
		r.Category = Category(c)
		if !r.Category.Valid() {
			p.errf(cn, ctx, "category %q is unknown; want one of %s", c, joinCategories())
		}
	}
	if s, sn, ok := p.str(m, "severity", ctx, true); ok {
		if err := r.Severity.UnmarshalText([]byte(s)); err != nil {
			p.errf(sn, ctx, "severity %q is unknown; want one of info, low, medium, high, critical", s)
		}
	}
	if c, cn, ok := p.str(m, "confidence", ctx, true); ok {
		r.Confidence = c
		if c != ConfidenceOfficial && c != ConfidenceCommunity && c != ConfidenceUnverified {
			p.errf(cn, ctx, "confidence %q is unknown; want one of official, community, unverified", c)
		}
	}
	if sn := m["sources"]; sn != nil {
		for _, it := range p.list(sn, "sources", ctx) {
			id := it.Value
			switch {
			case contains(r.Sources, id):
				p.errf(it, ctx, "source %q is listed twice", id)
			case sourcesOK && prof != nil:
				if _, ok := prof.Sources[id]; !ok {
					p.errf(it, ctx, "source %q is not defined in profile sources", id)
				}
			}
			r.Sources = append(r.Sources, id)
		}
	}
	if mn := m["match"]; mn != nil {
		p.match(mn, r, ctx, seen)
	}
	return r
}

func joinCategories() string {
	s := make([]string, len(categories))
	for i, c := range categories {
		s[i] = string(c)
	}
	return strings.Join(s, ", ")
}

// condKind classifies a parsed condition for the checks of its parent.
type condKind int

const (
	condBad   condKind = iota // errors were reported
	condPlain                 // a block of indicators
	condAll
	condAny
	condNot
)

// match parses a rule's match: a block of indicators or one combinator.
func (p *parser) match(n *yaml.Node, r *Rule, ctx string, seen map[string]seenIndicator) {
	before := p.count()
	m, kind := p.cond(n, r, ctx, 1, seen)
	if kind == condBad || p.count() != before {
		return
	}
	if (kind == condAll || kind == condAny) && countParts(&m) > maxParts {
		p.errf(n, ctx, "the condition can hold through %d parts; at most %d can be explained, so split the rule", countParts(&m), maxParts)
		return
	}
	r.Match = m
}

// cond parses one condition: the rule's match (depth 1) or a nested one.
// seen is the profile-wide map of the indicators of plain rules; nested
// blocks check for duplicates within themselves only, since a combined
// rule's indicators are conditions of that rule and may repeat what other
// rules list.
func (p *parser) cond(n *yaml.Node, r *Rule, ctx string, depth int, seen map[string]seenIndicator) (Match, condKind) {
	what := "condition"
	if depth == 1 {
		what = "match"
	}
	m := p.mapping(n, ctx, what, conditionKeys, nil)
	if m == nil {
		return Match{}, condBad
	}
	if len(n.Content) == 0 {
		p.errf(n, ctx, "%s must list at least one indicator", what)
		return Match{}, condBad
	}
	var comb *yaml.Node
	var indicatorKeys []string
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i]
		if m[k.Value] != n.Content[i+1] {
			continue // unknown or duplicate: reported by mapping
		}
		switch {
		case contains(combinatorKeys, k.Value) && comb != nil:
			p.errf(k, ctx, "only one of all, any, not per %s (%q is at line %d)", what, comb.Value, comb.Line)
			return Match{}, condBad
		case contains(combinatorKeys, k.Value):
			comb = k
		default:
			indicatorKeys = append(indicatorKeys, k.Value)
		}
	}
	if comb == nil {
		if depth > 1 {
			seen = map[string]seenIndicator{}
		}
		var out Match
		if !p.indicators(m, r, ctx, seen, &out, depth > 1) {
			return out, condBad
		}
		return out, condPlain
	}
	if len(indicatorKeys) > 0 {
		if comb.Value == "not" {
			p.errf(comb, ctx, "not cannot be mixed with indicator keys (%s) in one %s; write all: [{%s: ...}, {not: ...}]",
				strings.Join(indicatorKeys, ", "), what, indicatorKeys[0])
		} else {
			p.errf(comb, ctx, "%s cannot be mixed with indicator keys (%s) in one %s; make the indicators a condition of the list",
				comb.Value, strings.Join(indicatorKeys, ", "), what)
		}
		return Match{}, condBad
	}
	if depth >= maxDepth {
		p.errf(comb, ctx, "conditions nested more than %d deep (the match block is the first level)", maxDepth)
		return Match{}, condBad
	}
	v := m[comb.Value]
	if comb.Value == "not" {
		if v.Kind != yaml.MappingNode {
			p.errf(v, ctx, "not must be a condition (a mapping), got %s", describe(v))
			return Match{}, condBad
		}
		if depth == 1 {
			p.errf(comb, ctx, "a lone not holds for almost every contact; combine it with a positive condition: all: [{...}, {not: ...}]")
			return Match{}, condBad
		}
		sub, kind := p.cond(v, r, ctx, depth+1, nil)
		switch kind {
		case condBad:
			return Match{}, condBad
		case condNot:
			p.errf(v, ctx, "double negation; write the condition itself")
			return Match{}, condBad
		}
		return Match{Not: &sub}, condNot
	}
	key := comb.Value
	if v.Kind != yaml.SequenceNode {
		p.errf(v, ctx, "%s must be a list of conditions, got %s", key, describe(v))
		return Match{}, condBad
	}
	switch len(v.Content) {
	case 0:
		p.errf(v, ctx, "%s must not be empty", key)
		return Match{}, condBad
	case 1:
		p.errf(v, ctx, "%s needs at least two conditions; write the condition itself", key)
		return Match{}, condBad
	}
	list := make([]Match, 0, len(v.Content))
	ok, positive := true, false
	for _, it := range v.Content {
		if it.Kind != yaml.MappingNode {
			p.errf(it, ctx, "%s: each condition must be a mapping, got %s", key, describe(it))
			ok = false
			continue
		}
		sub, kind := p.cond(it, r, ctx, depth+1, nil)
		switch {
		case kind == condBad:
			ok = false
		case kind == condNot && key == "any":
			p.errf(it, ctx, "a not cannot be a branch of any (it would hold for almost every contact); use it inside all")
			ok = false
		case kind != condNot:
			positive = true
		}
		list = append(list, sub)
	}
	if !ok {
		return Match{}, condBad
	}
	if !positive {
		p.errf(comb, ctx, "all needs at least one condition that is not a not")
		return Match{}, condBad
	}
	if key == "all" {
		return Match{All: list}, condAll
	}
	return Match{Any: list}, condAny
}

// indicators parses the indicator lists of a block into out. It reports
// whether every value was valid.
func (p *parser) indicators(m map[string]*yaml.Node, r *Rule, ctx string, seen map[string]seenIndicator, out *Match, nested bool) bool {
	before := p.count()
	scope := "this profile"
	if nested {
		scope = "this condition"
	}
	// remember reports an indicator listed twice in one profile (or condition).
	remember := func(kind, canon string, it *yaml.Node) bool {
		key := kind + "\x00" + canon
		if first, dup := seen[key]; dup {
			where := fmt.Sprintf("line %d", first.line)
			if first.rule != r.ID {
				where += fmt.Sprintf(", rule %q", first.rule)
			}
			p.errf(it, ctx, "%s %q is listed twice in %s (first at %s)", kind, it.Value, scope, where)
			return false
		}
		seen[key] = seenIndicator{r.ID, it.Line, it.Column}
		return true
	}
	for _, key := range matchKeys {
		ln := m[key]
		if ln == nil {
			continue
		}
		for _, it := range p.items(ln, key, ctx, key == "asns") {
			s := it.Value
			switch key {
			case "domains":
				if canon, prob := canonName(s); prob != "" {
					p.errf(it, ctx, "domain %q: %s", s, prob)
				} else if remember(KindDomain, canon, it) {
					out.Domains = append(out.Domains, canon)
				}
			case "names":
				if canon, prob := canonName(s); prob != "" {
					p.errf(it, ctx, "name %q: %s", s, prob)
				} else if remember(KindName, canon, it) {
					out.Names = append(out.Names, canon)
				}
			case "patterns":
				if canon, prob := canonPattern(s); prob != "" {
					p.errf(it, ctx, "pattern %q: %s", s, prob)
				} else if remember(KindPattern, canon, it) {
					out.Patterns = append(out.Patterns, canon)
				}
			case "cidrs":
				if pfx, prob := parseCIDR(s); prob != "" {
					p.errf(it, ctx, "cidr %q: %s", s, prob)
				} else if remember(KindCIDR, s, it) {
					out.CIDRs = append(out.CIDRs, pfx)
				}
			case "ports":
				if pr, prob := parsePort(s); prob != "" {
					p.errf(it, ctx, "port %q: %s", s, prob)
				} else if remember(KindPort, s, it) {
					out.Ports = append(out.Ports, pr)
				}
			case "asns":
				if v, prob := parseASN(s); prob != "" {
					p.errf(it, ctx, "asn %q: %s", s, prob)
				} else if remember(KindASN, FormatASN(v), it) {
					out.ASNs = append(out.ASNs, v)
				}
			case "countries":
				if prob := checkCountry(s); prob != "" {
					p.errf(it, ctx, "country %q: %s", s, prob)
				} else if remember(KindCountry, s, it) {
					out.Countries = append(out.Countries, s)
				}
			case "ja4":
				if prob := checkJA4(s); prob != "" {
					p.errf(it, ctx, "ja4 %q: %s", s, prob)
				} else if remember(KindJA4, s, it) {
					out.JA4 = append(out.JA4, s)
				}
			case "user_agents":
				if prob := checkUserAgent(s); prob != "" {
					p.errf(it, ctx, "user_agent %q: %s", s, prob)
				} else if remember(KindUserAgent, strings.ToLower(s), it) {
					out.UserAgents = append(out.UserAgents, s)
				}
			}
		}
	}
	return p.count() == before
}

func hasUpper(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 'A' && s[i] <= 'Z' {
			return true
		}
	}
	return false
}

// checkLabel validates one LDH label (letters, digits, hyphens).
func checkLabel(l string) string {
	if l == "" {
		return "empty label"
	}
	if len(l) > 63 {
		return fmt.Sprintf("label %q is longer than 63 characters", l)
	}
	for _, c := range l {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return fmt.Sprintf("invalid character %q in label %q", c, l)
		}
	}
	if l[0] == '-' || l[len(l)-1] == '-' {
		return fmt.Sprintf("label %q must not start or end with '-'", l)
	}
	return ""
}

// checkPattern validates a canonical name pattern: exactly one '*', in the
// leftmost label, followed by a fixed name of at least two labels.
func checkPattern(s string) string {
	_, prob := normPattern(s, false)
	return prob
}

// canonPattern validates a pattern as written in a rules file and returns
// its canonical form (U-labels of the fixed part converted to A-labels).
func canonPattern(s string) (string, string) { return normPattern(s, true) }

func normPattern(s string, unicodeOK bool) (string, string) {
	switch n := strings.Count(s, "*"); {
	case s == "":
		return s, "must not be empty"
	case n == 0:
		return s, "must contain one '*' (use names for exact names)"
	case n > 1:
		return s, "must contain exactly one '*'"
	case s[0] == '.':
		return s, "must not start with a dot"
	case s[len(s)-1] == '.':
		return s, "must not end with a dot"
	case hasUpper(s):
		return s, "must be lower-case"
	}
	dot := strings.IndexByte(s, '.')
	star := strings.IndexByte(s, '*')
	if dot < 0 {
		return s, "must have a fixed name after the '*' label, as in \"ksn-*.example.com\""
	}
	if star > dot {
		return s, "'*' is allowed only in the leftmost label"
	}
	label, rest := s[:dot], s[dot+1:]
	if len(label) > 63 {
		return s, fmt.Sprintf("label %q is longer than 63 characters", label)
	}
	for _, c := range label {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '*') {
			return s, fmt.Sprintf("invalid character %q in label %q", c, label)
		}
	}
	if label[0] == '-' || label[len(label)-1] == '-' {
		return s, fmt.Sprintf("label %q must not start or end with '-'", label)
	}
	canon, prob := normName(rest, unicodeOK)
	if prob != "" {
		return s, fmt.Sprintf("fixed part %q: %s", rest, prob)
	}
	return label + "." + canon, ""
}

// parseCIDR parses a prefix written in canonical form with no host bits.
func parseCIDR(s string) (netip.Prefix, string) {
	pfx, err := netip.ParsePrefix(s)
	switch {
	case err != nil:
		return pfx, "not an address prefix like 192.0.2.0/24 or 2001:db8::/32"
	case pfx.Addr().Is4In6():
		return pfx, "IPv4-mapped prefix; write the IPv4 prefix"
	case pfx.Bits() == 0:
		return pfx, "matches every address"
	case pfx.Masked() != pfx:
		return pfx, fmt.Sprintf("host bits set; did you mean %q?", pfx.Masked().String())
	case pfx.String() != s:
		return pfx, fmt.Sprintf("not in canonical form; write %q", pfx.String())
	}
	return pfx, ""
}

// parsePort parses "PORT/PROTO" or "LO-HI/PROTO" (PROTO tcp or udp).
func parsePort(s string) (PortRange, string) {
	const shape = `must be PORT/PROTO or LO-HI/PROTO, as in "13000/tcp" or "27200-27299/tcp"`
	var pr PortRange
	num, proto, ok := strings.Cut(s, "/")
	if !ok {
		return pr, shape
	}
	switch proto {
	case "tcp":
		pr.Proto = ProtoTCP
	case "udp":
		pr.Proto = ProtoUDP
	default:
		return pr, fmt.Sprintf("unknown protocol %q; want tcp or udp", proto)
	}
	loS, hiS, isRange := strings.Cut(num, "-")
	if !isRange {
		hiS = loS
	}
	for i, t := range []string{loS, hiS} {
		if t == "" || strings.Trim(t, "0123456789") != "" {
			return pr, shape
		}
		if t[0] == '0' {
			if t == "0" {
				return pr, "port 0 is out of range 1-65535"
			}
			return pr, fmt.Sprintf("port %q has leading zeros", t)
		}
		v, err := strconv.ParseUint(t, 10, 16)
		if err != nil || v == 0 {
			return pr, fmt.Sprintf("port %s is out of range 1-65535", t)
		}
		if i == 0 {
			pr.Lo = uint16(v)
		} else {
			pr.Hi = uint16(v)
		}
	}
	if isRange {
		if pr.Lo > pr.Hi {
			return pr, "range is reversed"
		}
		if pr.Lo == pr.Hi {
			return pr, fmt.Sprintf("single port; write %q", pr.String())
		}
	}
	return pr, ""
}
