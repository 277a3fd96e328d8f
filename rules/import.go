package rules

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/net/idna"
)

// ImportFormats returns the formats Import reads.
func ImportFormats() []string {
	return []string{FormatZeekIntel, FormatHosts, FormatSTIX, FormatV2fly, FormatPlain}
}

// ImportOptions describe the profile Import writes: one profile with one
// rule holding every indicator of the feed.
type ImportOptions struct {
	Format     string // one of ImportFormats
	ID         string // profile and rule id, [a-z0-9-]+
	Name       string // profile and rule name
	Category   Category
	Severity   Severity
	Confidence string // ConfidenceOfficial, ConfidenceCommunity or ConfidenceUnverified
	SourceURL  string // where the feed comes from: the profile's one source
	// SourceTitle titles the source; empty: "FORMAT feed FILE".
	SourceTitle string
	// Exact imports the names of formats that do not say whether the names
	// below them are meant (zeek-intel, hosts, STIX, plain) as exact names;
	// by default they are domain suffixes, which also match the name
	// itself. A name phonehome exported itself keeps its kind (zeek-intel
	// meta.desc, the hosts file's "# exact"/"# suffix" marks), and v2fly
	// says it always (full: is exact, domain: and bare names are suffixes).
	Exact bool
	// Date is the profile's version and last_reviewed date; zero: today.
	Date time.Time
	// Generator names the program in the file's header comment.
	Generator string
}

// ImportResult is what Import made of a feed.
type ImportResult struct {
	YAML                   []byte // the profile; valid (Parse accepts it) when Domains+Names+CIDRs > 0
	Domains, Names, CIDRs  int    // indicators imported, duplicates removed
	Duplicates             int    // entries dropped as repeats of an earlier one
	Skipped                []*Error
	Entries, SkippedHidden int // lines or objects read; skipped entries beyond the first maxSkipped
}

// maxSkipped bounds the skipped entries an ImportResult lists.
const maxSkipped = 1000

// ErrNothingImported is returned (wrapped) by Import when no entry of the
// feed could be imported.
var ErrNothingImported = errors.New("nothing imported")

// feedEntry is one indicator read from a feed, before normalisation.
type feedEntry struct {
	line  int
	kind  string // KindDomain, KindName or KindCIDR; "" for a name of unstated kind
	value string
}

// importer collects entries and problems of one feed.
type importer struct {
	file    string
	opts    *ImportOptions
	res     *ImportResult
	seen    map[string]bool
	domains []string
	names   []string
	cidrs   []string
}

func (im *importer) skip(line int, format string, args ...any) {
	if len(im.res.Skipped) >= maxSkipped {
		im.res.SkippedHidden++
		return
	}
	im.res.Skipped = append(im.res.Skipped, &Error{File: im.file, Line: line, Msg: fmt.Sprintf(format, args...) + "; skipped"})
}

// add normalises an entry and keeps it unless it repeats an earlier one.
func (im *importer) add(e feedEntry) {
	kind := e.kind
	var value, prob string
	if kind == KindCIDR {
		value, prob = importCIDR(e.value)
	} else {
		var wild bool
		value, wild, prob = importName(e.value)
		switch {
		case wild:
			kind = KindDomain // "*.example.com": every name below; the name itself matches too
		case kind == "" && im.opts.Exact:
			kind = KindName
		case kind == "":
			kind = KindDomain
		}
	}
	if prob != "" {
		im.skip(e.line, "%q: %s", e.value, prob)
		return
	}
	if im.seen[kind+"\x00"+value] {
		im.res.Duplicates++
		return
	}
	im.seen[kind+"\x00"+value] = true
	switch kind {
	case KindDomain:
		im.domains = append(im.domains, value)
	case KindName:
		im.names = append(im.names, value)
	case KindCIDR:
		im.cidrs = append(im.cidrs, value)
	}
}

// importName normalises a name from a feed: one trailing dot removed, a
// leading "*." taken as "this domain and the names below it" (wild),
// U-labels mapped and converted to A-labels (IDNA2008 look-up profile,
// which also lower-cases them), ASCII lower-cased.
func importName(s string) (name string, wild bool, prob string) {
	s = strings.TrimSuffix(s, ".")
	if rest, ok := strings.CutPrefix(s, "*."); ok {
		s, wild = rest, true
	}
	if !isASCII(s) {
		a, err := idna.Lookup.ToASCII(s)
		if err != nil {
			return s, wild, "not a valid internationalised name (IDNA2008): " + strings.TrimPrefix(err.Error(), "idna: ")
		}
		s = a
	}
	s = strings.ToLower(s)
	if _, err := netip.ParseAddr(s); err == nil {
		return s, wild, "an address where a name was expected"
	}
	canon, prob := normName(s, false)
	return canon, wild, prob
}

// importCIDR normalises an address or prefix from a feed: a single
// address becomes a /32 or /128; IPv4-mapped IPv6 is unmapped.
func importCIDR(s string) (string, string) {
	if a, err := netip.ParseAddr(s); err == nil {
		if a.Zone() != "" {
			return s, "an address with a zone"
		}
		a = a.Unmap()
		return netip.PrefixFrom(a, a.BitLen()).String(), ""
	}
	p, err := netip.ParsePrefix(s)
	if err == nil && p.Addr().Is4In6() && p.Bits() >= 96 {
		p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		s = p.String()
	}
	if _, prob := parseCIDR(s); prob != "" {
		return s, prob
	}
	return p.String(), ""
}

// Import reads a feed of names and addresses in one of ImportFormats and
// writes a complete profile (YAML, in the format of this package) holding
// them in one rule. Entries that cannot be imported are listed in the
// result's Skipped, each with its file and line, and left out; duplicates
// are dropped. The error is non-nil when the options are invalid, the
// feed cannot be read, or nothing at all was imported (ErrNothingImported);
// the result is still returned in the last case.
func Import(file string, r io.Reader, opts ImportOptions) (*ImportResult, error) {
	if err := opts.check(); err != nil {
		return nil, err
	}
	if opts.Date.IsZero() {
		opts.Date = time.Now()
	}
	if opts.Generator == "" {
		opts.Generator = "phonehome"
	}
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("rules: import: reading %s: %w", file, err)
	}
	res := &ImportResult{}
	im := &importer{file: file, opts: &opts, res: res, seen: map[string]bool{}}
	switch opts.Format {
	case FormatZeekIntel:
		im.zeek(data)
	case FormatHosts:
		im.hosts(data)
	case FormatSTIX:
		if err := im.stix(data); err != nil {
			return nil, err
		}
	case FormatV2fly:
		im.v2fly(data)
	case FormatPlain:
		im.plain(data)
	}
	res.Domains, res.Names, res.CIDRs = len(im.domains), len(im.names), len(im.cidrs)
	if res.Domains+res.Names+res.CIDRs == 0 {
		return res, fmt.Errorf("rules: import: %s: %w (%d entries read, %d skipped)", file, ErrNothingImported, res.Entries, len(res.Skipped)+res.SkippedHidden)
	}
	res.YAML = im.profile()
	// The output must be a valid profile: check it as Load would.
	prof, rules, err := Parse(file+" (imported)", res.YAML)
	if err == nil {
		_, err = Compile(ParsedFile{prof, rules})
	}
	if err != nil {
		return nil, fmt.Errorf("rules: import: the profile written is not valid (a bug): %w", err)
	}
	return res, nil
}

func (o *ImportOptions) check() error {
	var probs []string
	if !slices.Contains(ImportFormats(), o.Format) {
		probs = append(probs, fmt.Sprintf("unknown format %q; want one of %s", o.Format, strings.Join(ImportFormats(), ", ")))
	}
	if !validID(o.ID) {
		probs = append(probs, fmt.Sprintf("id %q must match [a-z0-9-]+", o.ID))
	}
	if strings.TrimSpace(o.Name) == "" {
		probs = append(probs, "name must not be empty")
	}
	if !o.Category.Valid() {
		probs = append(probs, fmt.Sprintf("category %q is unknown; want one of %s", o.Category, joinCategories()))
	}
	if !o.Severity.Valid() {
		probs = append(probs, "severity must be one of info, low, medium, high, critical")
	}
	if o.Confidence != ConfidenceOfficial && o.Confidence != ConfidenceCommunity && o.Confidence != ConfidenceUnverified {
		probs = append(probs, fmt.Sprintf("confidence %q is unknown; want one of official, community, unverified", o.Confidence))
	}
	if u, err := url.Parse(o.SourceURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		probs = append(probs, fmt.Sprintf("source url %q must be an absolute http or https URL", o.SourceURL))
	}
	if len(probs) > 0 {
		return errors.New("rules: import: " + strings.Join(probs, "; "))
	}
	return nil
}

// lines calls f for every line of data (1-based numbers), without its line
// ending and with surrounding white space removed.
func lines(data []byte, f func(n int, line string)) {
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for n := 1; sc.Scan(); n++ {
		f(n, strings.TrimSpace(sc.Text()))
	}
}

// zeek reads a Zeek intel file: a "#fields" line naming the tab-separated
// columns (indicator and indicator_type are needed), other '#' lines
// comments. Intel::DOMAIN gives names, Intel::ADDR and Intel::SUBNET
// prefixes; a meta.desc starting "exact name" or "domain suffix" (as
// phonehome exports) says the kind of a name.
func (im *importer) zeek(data []byte) {
	cols := map[string]int{}
	lines(data, func(n int, line string) {
		if line == "" {
			return
		}
		if rest, ok := strings.CutPrefix(line, "#fields\t"); ok {
			clear(cols)
			for i, c := range strings.Split(rest, "\t") {
				cols[c] = i
			}
			if _, ok := cols["indicator"]; !ok {
				im.skip(n, "#fields without an indicator column")
			}
			return
		}
		if line[0] == '#' {
			return
		}
		im.res.Entries++
		ii, ok1 := cols["indicator"]
		ti, ok2 := cols["indicator_type"]
		if !ok1 || !ok2 {
			im.skip(n, "no #fields line naming indicator and indicator_type before this one")
			return
		}
		f := strings.Split(line, "\t")
		if len(f) <= max(ii, ti) {
			im.skip(n, "want at least %d tab-separated fields, got %d", max(ii, ti)+1, len(f))
			return
		}
		ind, typ := f[ii], f[ti]
		switch typ {
		case "Intel::DOMAIN":
			kind := ""
			if di, ok := cols["meta.desc"]; ok && di < len(f) {
				switch {
				case strings.HasPrefix(f[di], "exact name"):
					kind = KindName
				case strings.HasPrefix(f[di], "domain suffix"):
					kind = KindDomain
				}
			}
			im.add(feedEntry{n, kind, ind})
		case "Intel::ADDR", "Intel::SUBNET":
			im.add(feedEntry{n, KindCIDR, ind})
		default:
			im.skip(n, "indicator type %s is not imported (only Intel::DOMAIN, Intel::ADDR, Intel::SUBNET)", typ)
		}
	})
}

// localHosts are the names of a hosts file's own entries, not indicators.
var localHosts = []string{"localhost", "localhost.localdomain", "local", "broadcasthost", "ip6-localhost",
	"ip6-loopback", "ip6-localnet", "ip6-mcastprefix", "ip6-allnodes", "ip6-allrouters", "ip6-allhosts", "0.0.0.0"}

// hosts reads a hosts file: "ADDRESS NAME [NAME…]" lines, '#' comments. A
// line ending in "# exact" or "# suffix" (as phonehome exports) says the
// kind of its names.
func (im *importer) hosts(data []byte) {
	lines(data, func(n int, line string) {
		body, comment, _ := strings.Cut(line, "#")
		f := strings.Fields(body)
		if len(f) == 0 {
			return
		}
		im.res.Entries++
		if _, err := netip.ParseAddr(f[0]); err != nil {
			im.skip(n, "%q: a hosts line starts with an address", f[0])
			return
		}
		if len(f) == 1 {
			im.skip(n, "an address without a name")
			return
		}
		kind := ""
		switch strings.TrimSpace(comment) {
		case "exact":
			kind = KindName
		case "suffix":
			kind = KindDomain
		}
		for _, name := range f[1:] {
			if !slices.Contains(localHosts, strings.ToLower(name)) {
				im.add(feedEntry{n, kind, name})
			}
		}
	})
}

// v2fly reads a v2fly domain-list-community data file.
func (im *importer) v2fly(data []byte) {
	lines(data, func(n int, line string) {
		line, _, _ = strings.Cut(line, "#")
		f := strings.Fields(line)
		if len(f) == 0 {
			return
		}
		im.res.Entries++
		for _, attr := range f[1:] {
			if attr[0] != '@' && attr[0] != '&' {
				im.skip(n, "%q: want one rule per line, then @attributes", attr)
				return
			}
		}
		typ, value, ok := strings.Cut(f[0], ":")
		if !ok {
			typ, value = "domain", f[0]
		}
		switch typ {
		case "domain":
			im.add(feedEntry{n, KindDomain, value})
		case "full":
			im.add(feedEntry{n, KindName, value})
		case "include":
			im.skip(n, "include:%s not followed; import that list too", value)
		case "keyword":
			im.skip(n, "keyword:%s matches any name containing the text; not expressible", value)
		case "regexp", "regex":
			im.skip(n, "%s:%s: regular expressions are not imported", typ, value)
		default:
			im.skip(n, "unknown rule type %q", typ)
		}
	})
}

// plain reads one name, address or prefix per line; '#' starts a comment.
func (im *importer) plain(data []byte) {
	lines(data, func(n int, line string) {
		line, _, _ = strings.Cut(line, "#")
		line = strings.TrimSpace(line)
		if line == "" {
			return
		}
		im.res.Entries++
		if strings.ContainsAny(line, " \t") {
			im.skip(n, "%q: one name or prefix per line", line)
			return
		}
		if _, err := netip.ParseAddr(line); err == nil || strings.Contains(line, "/") {
			im.add(feedEntry{n, KindCIDR, line})
			return
		}
		im.add(feedEntry{n, "", line})
	})
}

// stixObject is what Import reads of a STIX object.
type stixObject struct {
	Type        string `json:"type"`
	ID          string `json:"id"`
	Pattern     string `json:"pattern"`
	PatternType string `json:"pattern_type"`
	Revoked     bool   `json:"revoked"`
}

// stix reads a STIX 2.1 bundle (or one object, or a list of objects) and
// imports the indicators whose pattern compares domain-name, ipv4-addr or
// ipv6-addr values for equality, alone or ORed.
func (im *importer) stix(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	lineAt := func(off int64) int {
		for off < int64(len(data)) && strings.IndexByte(" \t\r\n,", data[off]) >= 0 {
			off++
		}
		return 1 + bytes.Count(data[:off], []byte("\n"))
	}
	bad := func(err error) error {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return fmt.Errorf("rules: import: %s:%d: invalid JSON: %v", im.file, lineAt(se.Offset), err)
		}
		return fmt.Errorf("rules: import: %s: not a STIX bundle: %v", im.file, err)
	}
	tok, err := dec.Token()
	if err != nil {
		return bad(err)
	}
	// objects reads the array the decoder is at (after its '[').
	objects := func() error {
		for dec.More() {
			line := lineAt(dec.InputOffset())
			var raw json.RawMessage
			if err := dec.Decode(&raw); err != nil {
				return bad(err)
			}
			im.stixObject(line, raw)
		}
		_, err := dec.Token()
		return err
	}
	switch tok {
	case json.Delim('['):
		if err := objects(); err != nil {
			return bad(err)
		}
	case json.Delim('{'):
		// A bundle, or one object: read its members, the objects of a
		// bundle in place (with their lines).
		one := map[string]json.RawMessage{}
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return bad(err)
			}
			key, _ := kt.(string)
			if key == "objects" {
				if t, err := dec.Token(); err != nil || t != json.Delim('[') {
					return fmt.Errorf("rules: import: %s: objects must be a list", im.file)
				}
				if err := objects(); err != nil {
					return bad(err)
				}
				continue
			}
			var v json.RawMessage
			if err := dec.Decode(&v); err != nil {
				return bad(err)
			}
			one[key] = v
		}
		if _, isBundle := one["objects"]; !isBundle && string(one["type"]) != `"bundle"` {
			b, _ := json.Marshal(one)
			im.stixObject(1, b)
		}
	default:
		return fmt.Errorf("rules: import: %s: want a STIX bundle, object or list of objects", im.file)
	}
	return nil
}

func (im *importer) stixObject(line int, raw json.RawMessage) {
	var o stixObject
	if err := json.Unmarshal(raw, &o); err != nil || o.Type != "indicator" {
		return // other objects (identities, relationships, …) say nothing to import
	}
	im.res.Entries++
	what := o.ID
	if what == "" {
		what = "indicator"
	}
	switch {
	case o.Revoked:
		im.skip(line, "%s: revoked", what)
		return
	case o.PatternType != "" && o.PatternType != "stix":
		im.skip(line, "%s: pattern_type %q is not imported (only stix)", what, o.PatternType)
		return
	}
	comps, prob := parseSTIXPattern(o.Pattern)
	if prob != "" {
		im.skip(line, "%s: pattern %q: %s", what, o.Pattern, prob)
		return
	}
	for _, c := range comps {
		kind := KindCIDR
		if c.object == "domain-name" {
			kind = ""
		}
		im.add(feedEntry{line, kind, c.value})
	}
}

type stixComparison struct{ object, value string }

// parseSTIXPattern reads the patterns Import understands: observation
// expressions "[domain-name:value = 'x']", "[ipv4-addr:value = '…']" and
// "[ipv6-addr:value = '…']", whose comparisons and the observations
// themselves may be joined with OR. Anything else (AND, other objects,
// properties or operators, qualifiers such as WITHIN) is reported.
func parseSTIXPattern(p string) ([]stixComparison, string) {
	s := strings.TrimSpace(p)
	var out []stixComparison
	for first := true; ; first = false {
		if !first {
			rest, ok := cutKeyword(s, "OR")
			if !ok {
				return nil, "only observations joined with OR are imported" + near(s)
			}
			s = rest
		}
		if !strings.HasPrefix(s, "[") {
			return nil, "want an observation in brackets" + near(s)
		}
		s = strings.TrimSpace(s[1:])
		for firstComp := true; ; firstComp = false {
			if !firstComp {
				rest, ok := cutKeyword(s, "OR")
				if !ok {
					return nil, "only comparisons joined with OR are imported" + near(s)
				}
				s = rest
			}
			path, rest, ok := strings.Cut(s, "=")
			if !ok {
				return nil, "only '=' comparisons are imported" + near(s)
			}
			path = strings.TrimSpace(path)
			obj, prop, _ := strings.Cut(path, ":")
			if strings.ContainsAny(path, " !<>") {
				return nil, "only '=' comparisons are imported" + near(s)
			}
			if prop != "value" || obj != "domain-name" && obj != "ipv4-addr" && obj != "ipv6-addr" {
				return nil, fmt.Sprintf("%s is not imported (only domain-name:value, ipv4-addr:value, ipv6-addr:value)", path)
			}
			val, rest, prob := stixString(strings.TrimSpace(rest))
			if prob != "" {
				return nil, prob
			}
			out = append(out, stixComparison{obj, val})
			s = strings.TrimSpace(rest)
			if strings.HasPrefix(s, "]") {
				s = strings.TrimSpace(s[1:])
				break
			}
		}
		if s == "" {
			return out, ""
		}
	}
}

// cutKeyword removes a leading keyword (case-sensitive, as STIX writes it)
// followed by white space or a bracket.
func cutKeyword(s, kw string) (string, bool) {
	rest, ok := strings.CutPrefix(s, kw)
	if !ok || rest == "" || rest[0] != ' ' && rest[0] != '[' {
		return s, false
	}
	return strings.TrimSpace(rest), true
}

func near(s string) string {
	if s == "" {
		return ""
	}
	if r := []rune(s); len(r) > 30 {
		s = string(r[:30]) + "…"
	}
	return fmt.Sprintf(" (at %q)", s)
}

// stixString reads a quoted string literal ('…', with \' and \\ escapes).
func stixString(s string) (val, rest, prob string) {
	if !strings.HasPrefix(s, "'") {
		return "", "", "want a quoted string" + near(s)
	}
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\':
			if i+1 < len(s) && (s[i+1] == '\'' || s[i+1] == '\\') {
				b.WriteByte(s[i+1])
				i++
				continue
			}
			return "", "", "invalid escape in a string" + near(s[i:])
		case '\'':
			return b.String(), s[i+1:], ""
		default:
			b.WriteByte(c)
		}
	}
	return "", "", "unterminated string" + near(s)
}

// profile writes the imported indicators as a profile.
func (im *importer) profile() []byte {
	o := im.opts
	date := o.Date.Format(time.DateOnly)
	title := o.SourceTitle
	if title == "" {
		title = o.Format + " feed " + im.file
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "# Imported by %s (rules import --format %s) from %s:\n", o.Generator, o.Format, im.file)
	fmt.Fprintf(&b, "# %d domains, %d names, %d cidrs; %d entries skipped, %d duplicates dropped.\n",
		len(im.domains), len(im.names), len(im.cidrs), len(im.res.Skipped)+im.res.SkippedHidden, im.res.Duplicates)
	if !o.Exact && o.Format != FormatV2fly {
		fmt.Fprintf(&b, "# Names the feed did not mark as exact are domain suffixes (the name and every name below it).\n")
	}
	fmt.Fprintf(&b, "profile:\n")
	fmt.Fprintf(&b, "  id: %s\n", o.ID)
	fmt.Fprintf(&b, "  name: %s\n", strconv.Quote(o.Name))
	fmt.Fprintf(&b, "  version: %q\n", strings.ReplaceAll(date, "-", "."))
	fmt.Fprintf(&b, "  last_reviewed: %s\n", date)
	fmt.Fprintf(&b, "  description: %s\n", strconv.Quote(fmt.Sprintf("Imported from %s (%s).", im.file, o.Format)))
	fmt.Fprintf(&b, "  sources:\n")
	fmt.Fprintf(&b, "    F1: {title: %s, url: %s}\n", strconv.Quote(title), strconv.Quote(o.SourceURL))
	fmt.Fprintf(&b, "rules:\n")
	fmt.Fprintf(&b, "  - id: %s\n", o.ID)
	fmt.Fprintf(&b, "    name: %s\n", strconv.Quote(o.Name))
	fmt.Fprintf(&b, "    category: %s\n", o.Category)
	fmt.Fprintf(&b, "    severity: %s\n", o.Severity)
	fmt.Fprintf(&b, "    confidence: %s\n", o.Confidence)
	fmt.Fprintf(&b, "    sources: [F1]\n")
	fmt.Fprintf(&b, "    match:\n")
	for _, l := range []struct {
		key  string
		vals []string
	}{{"domains", im.domains}, {"names", im.names}, {"cidrs", im.cidrs}} {
		if len(l.vals) == 0 {
			continue
		}
		fmt.Fprintf(&b, "      %s:\n", l.key)
		for _, v := range l.vals {
			if v[0] < 'a' || v[0] > 'z' || l.key == "cidrs" {
				v = strconv.Quote(v) // digits first could read as a number; prefixes hold ':'
			}
			fmt.Fprintf(&b, "        - %s\n", v)
		}
	}
	return b.Bytes()
}
