package rules

import (
	"bufio"
	"cmp"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// The formats of Export and Import.
const (
	FormatZeekIntel = "zeek-intel" // Zeek Intelligence Framework file (export, import)
	FormatSuricata  = "suricata"   // Suricata rules (export)
	FormatHosts     = "hosts"      // hosts file, "0.0.0.0 name" (export, import)
	FormatRPZ       = "rpz"        // DNS Response Policy Zone (export)
	FormatSTIX      = "stix"       // STIX 2.1 bundle of indicators (import)
	FormatV2fly     = "v2fly"      // v2fly domain-list-community data file (import)
	FormatPlain     = "plain"      // one name or prefix per line (import)
)

// ExportFormats returns the formats Export writes.
func ExportFormats() []string {
	return []string{FormatZeekIntel, FormatSuricata, FormatHosts, FormatRPZ}
}

// Suricata rules get sids in [SuricataSIDBase, SuricataSIDBase+SuricataSIDCount).
const (
	SuricataSIDBase  = 9_100_000
	SuricataSIDCount = 100_000
)

// ExportOptions says what Export writes.
type ExportOptions struct {
	Format   string   // one of ExportFormats
	Profiles []string // ids of the profiles to export, in any order; none: every profile
	// Generator names the program in the header ("phonehome v1.4.0");
	// "phonehome" when empty. The output has no time stamp of its own, so
	// the same rules always export to the same bytes (but for Serial).
	Generator string
	// Serial is the SOA serial of an RPZ zone; 0 means the latest
	// last_reviewed date of the exported profiles as YYYYMMDD00.
	Serial uint32
}

// exportItem is one indicator that a format may express.
type exportItem struct {
	rule  *Rule
	kind  string // KindDomain, KindName, KindPattern or KindCIDR
	value string
	pfx   netip.Prefix // KindCIDR
}

// Export writes the plain rules of the chosen profiles in another tool's
// format. Every output starts with a comment naming the profiles and their
// versions, the generator, what the format makes of the indicators, and
// every indicator (and every combined rule) it cannot express. Domain
// suffixes become the domain itself in formats that match exact names
// only (zeek-intel, hosts); patterns are expressed by Suricata only;
// address prefixes by zeek-intel, Suricata and RPZ (rpz-ip triggers);
// ports, AS numbers, countries, JA4 and User-Agents, and combined rules, by
// none of them.
func (s *Set) Export(w io.Writer, opts ExportOptions) error {
	if !slices.Contains(ExportFormats(), opts.Format) {
		return fmt.Errorf("rules: export: unknown format %q; want one of %s", opts.Format, strings.Join(ExportFormats(), ", "))
	}
	profiles, err := s.selectProfiles(opts.Profiles)
	if err != nil {
		return err
	}
	if opts.Generator == "" {
		opts.Generator = "phonehome"
	}
	var items []exportItem
	var skipped []string
	for _, p := range profiles {
		for _, r := range s.rules {
			if r.Profile != p {
				continue
			}
			it, sk := exportRule(r, opts.Format)
			items = append(items, it...)
			skipped = append(skipped, sk...)
		}
	}
	bw := bufio.NewWriter(w)
	switch opts.Format {
	case FormatZeekIntel:
		writeZeek(bw, profiles, items, skipped, opts)
	case FormatSuricata:
		err = writeSuricata(bw, profiles, items, skipped, opts)
	case FormatHosts:
		writeHosts(bw, profiles, items, skipped, opts)
	case FormatRPZ:
		writeRPZ(bw, profiles, items, skipped, opts)
	}
	return errors.Join(err, bw.Flush())
}

// selectProfiles returns the profiles with the given ids, in load order;
// all of them when ids is empty.
func (s *Set) selectProfiles(ids []string) ([]*Profile, error) {
	if len(ids) == 0 {
		return slices.Clone(s.profiles), nil
	}
	var out []*Profile
	var loaded []string
	for _, p := range s.profiles {
		loaded = append(loaded, p.ID)
		if slices.Contains(ids, p.ID) {
			out = append(out, p)
		}
	}
	for _, id := range ids {
		if !slices.Contains(loaded, id) {
			return nil, fmt.Errorf("rules: export: no profile %q is loaded (loaded: %s)", id, strings.Join(loaded, ", "))
		}
	}
	return out, nil
}

// exportRule returns the indicators of r that format can express, and a
// line for each kind of indicator (or the combined condition) it cannot.
func exportRule(r *Rule, format string) ([]exportItem, []string) {
	where := r.Profile.ID + "/" + r.ID + ": "
	if r.Match.Combined() {
		comb := "all"
		switch {
		case r.Match.Any != nil:
			comb = "any"
		case r.Match.Not != nil:
			comb = "not"
		}
		return nil, []string{fmt.Sprintf("%scombined condition (%s, %d indicators)", where, comb, r.Match.Len())}
	}
	m := &r.Match
	var items []exportItem
	var skipped []string
	skip := func(what string, vals []string) {
		if len(vals) > 0 {
			skipped = append(skipped, where+what+" "+strings.Join(vals, ", "))
		}
	}
	for _, d := range m.Domains {
		items = append(items, exportItem{rule: r, kind: KindDomain, value: d})
	}
	for _, n := range m.Names {
		items = append(items, exportItem{rule: r, kind: KindName, value: n})
	}
	if format == FormatSuricata {
		for _, p := range m.Patterns {
			items = append(items, exportItem{rule: r, kind: KindPattern, value: p})
		}
	} else {
		skip("patterns", m.Patterns)
	}
	if format == FormatHosts {
		skip("cidrs", stringsOf(m.CIDRs))
	} else {
		for _, p := range m.CIDRs {
			items = append(items, exportItem{rule: r, kind: KindCIDR, value: p.String(), pfx: p})
		}
	}
	skip("ports", stringsOf(m.Ports))
	asns := make([]string, len(m.ASNs))
	for i, a := range m.ASNs {
		asns[i] = FormatASN(a)
	}
	skip("asns", asns)
	skip("countries", m.Countries)
	skip("ja4", m.JA4)
	skip("user_agents", m.UserAgents)
	return items, skipped
}

func stringsOf[T fmt.Stringer](vals []T) []string {
	out := make([]string, len(vals))
	for i, v := range vals {
		out[i] = v.String()
	}
	return out
}

// header writes the comment every export starts with, each line prefixed
// with c ("#" or ";").
func header(w *bufio.Writer, c, title string, profiles []*Profile, semantics []string, skipped []string, opts ExportOptions) {
	fmt.Fprintf(w, "%s %s\n", c, title)
	fmt.Fprintf(w, "%s generated by %s: rules export --format %s\n", c, opts.Generator, opts.Format)
	fmt.Fprintf(w, "%s profiles:\n", c)
	for _, p := range profiles {
		fmt.Fprintf(w, "%s   %s %q version %s, last reviewed %s (%s)\n", c, p.ID, p.Name, p.Version, p.LastReviewed.Format("2006-01-02"), p.File)
	}
	for _, l := range semantics {
		fmt.Fprintf(w, "%s %s\n", c, l)
	}
	if len(skipped) == 0 {
		fmt.Fprintf(w, "%s not expressed: nothing; every indicator of these profiles is in this file\n", c)
	} else {
		fmt.Fprintf(w, "%s not expressed in this format, left out:\n", c)
		for _, l := range skipped {
			fmt.Fprintf(w, "%s   %s\n", c, l)
		}
	}
}

// ruleSummary is "update, high, official".
func ruleSummary(r *Rule) string {
	return string(r.Category) + ", " + r.Severity.String() + ", " + r.Confidence
}

func writeZeek(w *bufio.Writer, profiles []*Profile, items []exportItem, skipped []string, opts ExportOptions) {
	header(w, "#", "phonehome vendor profiles as a Zeek Intelligence Framework file (Intel::read_files)", profiles, []string{
		"Intel::DOMAIN matches a name exactly: a domain suffix rule (the domain and every name below it) is",
		"exported as the domain itself only, so names below it do not match in Zeek. Patterns cannot be expressed.",
		"Address prefixes are Intel::SUBNET (Intel::ADDR for a single address).",
	}, skipped, opts)
	fmt.Fprintf(w, "#fields\tindicator\tindicator_type\tmeta.source\tmeta.desc\n")
	type key struct{ ind, typ, src string }
	seen := map[key]bool{}
	for _, it := range items {
		typ, desc := "Intel::DOMAIN", ""
		switch it.kind {
		case KindDomain:
			desc = fmt.Sprintf("domain suffix %q, exported as the domain alone", it.value)
		case KindName:
			desc = fmt.Sprintf("exact name %q", it.value)
		case KindCIDR:
			typ, desc = "Intel::SUBNET", "address in "+it.value
			if it.pfx.IsSingleIP() {
				typ = "Intel::ADDR"
			}
		}
		ind := it.value
		if typ == "Intel::ADDR" {
			ind = it.pfx.Addr().String()
		}
		src := "phonehome:" + it.rule.Profile.ID + "/" + it.rule.ID
		if k := (key{ind, typ, src}); !seen[k] {
			seen[k] = true
			fmt.Fprintf(w, "%s\t%s\t%s\t%s; %s\n", ind, typ, src, desc, ruleSummary(it.rule))
		}
	}
}

func writeHosts(w *bufio.Writer, profiles []*Profile, items []exportItem, skipped []string, opts ExportOptions) {
	header(w, "#", "phonehome vendor profiles as a hosts file (0.0.0.0 sinkhole)", profiles, []string{
		"A hosts file blocks exact names: a domain suffix rule (the domain and every name below it) is listed",
		"as the domain itself only, marked '# suffix'; exact names are marked '# exact'. Patterns and address",
		"prefixes cannot be expressed.",
	}, skipped, opts)
	seen := map[string]bool{}
	var last *Rule
	for _, it := range items {
		if seen[it.value] {
			continue
		}
		seen[it.value] = true
		if it.rule != last {
			fmt.Fprintf(w, "\n# %s/%s (%s)\n", it.rule.Profile.ID, it.rule.ID, ruleSummary(it.rule))
			last = it.rule
		}
		mark := "exact"
		if it.kind == KindDomain {
			mark = "suffix"
		}
		fmt.Fprintf(w, "0.0.0.0 %s # %s\n", it.value, mark)
	}
}

func writeRPZ(w *bufio.Writer, profiles []*Profile, items []exportItem, skipped []string, opts ExportOptions) {
	header(w, ";", "phonehome vendor profiles as a DNS Response Policy Zone (RPZ; BIND, Unbound, Knot Resolver, PowerDNS Recursor)", profiles, []string{
		"Every trigger answers NXDOMAIN (CNAME .). Owner names are relative to the zone's origin, set where",
		"the zone is loaded. A domain suffix rule is two triggers, the domain and *.domain; an exact name one.",
		"Address prefixes are rpz-ip triggers (answers holding an address in the prefix). Patterns cannot be",
		"expressed.",
	}, skipped, opts)
	serial := opts.Serial
	if serial == 0 {
		for _, p := range profiles {
			y, m, d := p.LastReviewed.Date()
			serial = max(serial, uint32(y*1000000+int(m)*10000+d*100))
		}
	}
	fmt.Fprintf(w, "$TTL 300\n")
	fmt.Fprintf(w, "@\tIN\tSOA\tlocalhost. hostmaster.localhost. %d 3600 600 604800 300\n", serial)
	fmt.Fprintf(w, "@\tIN\tNS\tlocalhost.\n")
	seen := map[string]bool{}
	var last *Rule
	emit := func(r *Rule, owner string) {
		if seen[owner] {
			return
		}
		seen[owner] = true
		if r != last {
			fmt.Fprintf(w, "; %s/%s (%s)\n", r.Profile.ID, r.ID, ruleSummary(r))
			last = r
		}
		fmt.Fprintf(w, "%s\tCNAME\t.\n", owner)
	}
	for _, it := range items {
		switch it.kind {
		case KindDomain:
			emit(it.rule, it.value)
			emit(it.rule, "*."+it.value)
		case KindName:
			emit(it.rule, it.value)
		case KindCIDR:
			emit(it.rule, rpzIP(it.pfx))
		}
	}
}

// rpzIP returns the rpz-ip owner name of a prefix: "21.0.176.74.77.rpz-ip",
// "33.zz.2480.2a03.rpz-ip" ("zz" standing for the longest run of zero
// groups, as "::" does).
func rpzIP(p netip.Prefix) string {
	bits := strconv.Itoa(p.Bits())
	if p.Addr().Is4() {
		a := p.Addr().As4()
		return fmt.Sprintf("%s.%d.%d.%d.%d.rpz-ip", bits, a[3], a[2], a[1], a[0])
	}
	a := p.Addr().As16()
	var g [8]uint16
	for i := range g {
		g[i] = uint16(a[2*i])<<8 | uint16(a[2*i+1])
	}
	// The longest run of two or more zero groups, the first one on a tie.
	zs, zl := -1, 1
	for i := 0; i < 8; {
		j := i
		for j < 8 && g[j] == 0 {
			j++
		}
		if j-i > zl {
			zs, zl = i, j-i
		}
		i = max(j, i+1)
	}
	parts := []string{bits}
	for i := 7; i >= 0; i-- {
		switch {
		case zs >= 0 && i >= zs && i < zs+zl:
			if i == zs+zl-1 {
				parts = append(parts, "zz")
			}
		default:
			parts = append(parts, strconv.FormatUint(uint64(g[i]), 16))
		}
	}
	return strings.Join(parts, ".") + ".rpz-ip"
}

// suricataRule is one rule before its sid is known.
type suricataRule struct {
	key  string // rule id, indicator and protocol: what the sid is derived from
	text string // the rule with sidMark for the sid
}

const sidMark = "\x00sid\x00"

func writeSuricata(w *bufio.Writer, profiles []*Profile, items []exportItem, skipped []string, opts ExportOptions) error {
	var rules []suricataRule
	var last *Rule
	for _, it := range items {
		if it.rule != last {
			rules = append(rules, suricataRule{text: fmt.Sprintf("\n# %s/%s (%s)", it.rule.Profile.ID, it.rule.ID, ruleSummary(it.rule))})
			last = it.rule
		}
		rules = append(rules, suricataRules(it)...)
	}
	sids, err := assignSIDs(rules)
	if err != nil {
		return err
	}
	header(w, "#", "phonehome vendor profiles as Suricata rules (7.0 and later)", profiles, []string{
		"Names are matched in DNS queries (dns.query), TLS SNI (tls.sni) and HTTP Host (http.host): a domain",
		"suffix with dotprefix + endswith (the domain and every name below it), an exact name with bsize,",
		"a pattern with pcre. Address prefixes are 'alert ip' rules, limited to one alert per source and hour.",
		fmt.Sprintf("sids are in %d-%d, derived from a hash of rule id, indicator and protocol, so they stay", SuricataSIDBase, SuricataSIDBase+SuricataSIDCount-1),
		"the same from one export to the next (on a collision the key first in byte order keeps the sid, the other rehashes).",
	}, skipped, opts)
	for i, r := range rules {
		if r.key == "" {
			fmt.Fprintln(w, r.text)
			continue
		}
		fmt.Fprintln(w, strings.Replace(r.text, sidMark, strconv.Itoa(sids[i]), 1))
	}
	return nil
}

// assignSIDs gives each rule with a key its sid: SuricataSIDBase plus a
// hash of the key modulo SuricataSIDCount. Keys whose sid is taken by
// another key with the same hash (the first in key order keeps it) take
// the first free one of further hashes of the key, salted 1, 2, …. So a
// sid changes from one export to the next only when a new key lands on the
// same sid and sorts first (about one chance in 100,000 per new key and
// old key), never because of the order of the rules.
func assignSIDs(rules []suricataRule) ([]int, error) {
	type k struct {
		i int
		h uint32
	}
	var keys []k
	for i, r := range rules {
		if r.key != "" {
			keys = append(keys, k{i, sidHash(r.key, 0)})
		}
	}
	if len(keys) > SuricataSIDCount {
		return nil, fmt.Errorf("rules: export: %d Suricata rules do not fit the %d sids from %d", len(keys), SuricataSIDCount, SuricataSIDBase)
	}
	slices.SortFunc(keys, func(a, b k) int { return cmp.Or(cmp.Compare(a.h, b.h), cmp.Compare(rules[a.i].key, rules[b.i].key)) })
	used := make([]bool, SuricataSIDCount)
	sids := make([]int, len(rules))
	var lost []k
	for _, x := range keys {
		if used[x.h] {
			lost = append(lost, x)
			continue
		}
		used[x.h] = true
		sids[x.i] = SuricataSIDBase + int(x.h)
	}
	for _, x := range lost {
		h := x.h
		for salt := uint32(1); used[h]; salt++ {
			if salt > 64 {
				for used[h] { // a nearly full range: take the next free sid
					h = (h + 1) % SuricataSIDCount
				}
				break
			}
			h = sidHash(rules[x.i].key, salt)
		}
		used[h] = true
		sids[x.i] = SuricataSIDBase + int(h)
	}
	return sids, nil
}

// sidHash is FNV-1a of the key and a salt, modulo SuricataSIDCount.
func sidHash(key string, salt uint32) uint32 {
	f := fnv.New32a()
	f.Write([]byte(key))
	if salt > 0 {
		f.Write([]byte{0, byte(salt)})
	}
	return f.Sum32() % SuricataSIDCount
}

// SuricataPriority maps a severity to a Suricata priority (1 highest), as
// the exported rules and the EVE output give it.
func SuricataPriority(s Severity) int {
	switch s {
	case SeverityCritical, SeverityHigh:
		return 1
	case SeverityMedium:
		return 2
	case SeverityLow:
		return 3
	}
	return 4
}

// suricataMeta renders the metadata of a rule: profile, rule, category,
// severity, confidence, and its sources (ids and URLs, with the characters
// metadata cannot hold percent-encoded).
func suricataMeta(r *Rule) string {
	m := []string{
		"phonehome_profile " + r.Profile.ID, "phonehome_rule " + r.ID, "phonehome_category " + string(r.Category),
		"phonehome_severity " + r.Severity.String(), "phonehome_confidence " + r.Confidence,
	}
	enc := strings.NewReplacer("%", "%25", ",", "%2C", ";", "%3B", " ", "%20", `"`, "%22", `\`, "%5C")
	for _, id := range r.Sources {
		m = append(m, "phonehome_source "+id)
		if src, ok := r.Profile.Sources[id]; ok && src.URL != "" {
			m = append(m, "source_url "+enc.Replace(src.URL))
		}
	}
	return strings.Join(m, ", ")
}

// suricataRules returns the rules of one indicator: one per protocol for
// names, one for an address prefix.
func suricataRules(it exportItem) []suricataRule {
	r := it.rule
	tail := fmt.Sprintf("classtype:policy-violation; priority:%d; metadata:%s; sid:%s; rev:1;)", SuricataPriority(r.Severity), suricataMeta(r), sidMark)
	msg := func(what string) string {
		return fmt.Sprintf("phonehome %s/%s %s: %s", r.Profile.ID, r.ID, r.Category, what)
	}
	key := func(proto string) string { return r.ID + "\x00" + it.kind + "\x00" + it.value + "\x00" + proto }
	if it.kind == KindCIDR {
		dst := it.value
		if it.pfx.Addr().Is6() {
			dst = "[" + dst + "]"
		}
		return []suricataRule{{key("ip"), fmt.Sprintf(`alert ip any any -> %s any (msg:"%s"; threshold:type limit, track by_src, count 1, seconds 3600; %s`,
			dst, msg("traffic to "+it.value), tail)}}
	}
	var out []suricataRule
	for _, p := range []struct{ proto, buf, what string }{
		{"dns", "dns.query", "DNS query"}, {"tls", "tls.sni", "TLS SNI"}, {"http", "http.host", "HTTP Host"},
	} {
		nocase := " nocase;"
		if p.buf == "http.host" {
			nocase = "" // the buffer is lower-cased by Suricata
		}
		var match, what string
		switch it.kind {
		case KindDomain:
			match = fmt.Sprintf(`dotprefix; content:".%s";%s endswith;`, it.value, nocase)
			what = it.value + " or below"
		case KindName:
			match = fmt.Sprintf(`content:"%s";%s bsize:%d;`, it.value, nocase, len(it.value))
			what = it.value
		case KindPattern:
			label, rest, _ := strings.Cut(it.value, ".")
			pre, suf, _ := strings.Cut(label, "*")
			star := "[^.]*"
			if pre == "" && suf == "" {
				star = "[^.]+"
			}
			re := "^" + regexpQuote(pre) + star + regexpQuote(suf) + `\.` + regexpQuote(rest) + "$"
			match = fmt.Sprintf(`content:".%s";%s endswith; pcre:"/%s/i";`, rest, nocase, re)
			what = it.value
		}
		out = append(out, suricataRule{key(p.proto), fmt.Sprintf(`alert %s any any -> any any (msg:"%s"; %s; %s %s`,
			p.proto, msg(p.what+" "+what), p.buf, match, tail)})
	}
	return out
}

// regexpQuote escapes the dots of a name (the only metacharacter an LDH
// name or pattern part can hold).
func regexpQuote(s string) string { return strings.ReplaceAll(s, ".", `\.`) }
