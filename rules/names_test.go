package rules

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// idnProfile is a profile with internationalised names, written as
// U-labels where the format allows it.
const idnProfile = `profile:
  id: idn
  name: IDN test
  version: "1"
  last_reviewed: 2026-11-28
  sources:
    S: {title: "Test", url: "https://example.com/"}
rules:
  - id: idn-brand
    name: Cyrillic brand domain
    category: brand
    severity: low
    confidence: unverified
    sources: [S]
    match:
      domains: [касперский.рф, kaspersky.com]
      names: [обновление.касперский.рф]
      patterns: ["ksn-*.испытание.рф"]
  - id: idn-combined
    name: Cyrillic name and a port
    category: update
    severity: medium
    confidence: unverified
    sources: [S]
    match:
      all:
        - domains: [касперский.рф]
        - ports: [443/tcp]
`

func loadIDN(t testing.TB) *Set {
	t.Helper()
	prof, rules, err := Parse("idn.yaml", []byte(idnProfile))
	if err != nil {
		t.Fatal(err)
	}
	s, err := Compile(ParsedFile{prof, rules})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestIDNA: U-labels in a rules file are stored as A-labels, names on the
// wire match in their A-label form (any ASCII case), and are never decoded.
func TestIDNA(t *testing.T) {
	s := loadIDN(t)
	m := s.Rules()[0].Match
	if want := []string{"xn--80akjebc7ajgd.xn--p1ai", "kaspersky.com"}; !slices.Equal(m.Domains, want) {
		t.Errorf("domains = %q, want %q", m.Domains, want)
	}
	if want := []string{"xn--90acjaoqmddc.xn--80akjebc7ajgd.xn--p1ai"}; !slices.Equal(m.Names, want) {
		t.Errorf("names = %q, want %q", m.Names, want)
	}
	if want := []string{"ksn-*.xn--80akhbyknj4f.xn--p1ai"}; !slices.Equal(m.Patterns, want) {
		t.Errorf("patterns = %q, want %q", m.Patterns, want)
	}
	tests := []struct{ name, want string }{
		{"xn--80akjebc7ajgd.xn--p1ai", "idn-brand domain xn--80akjebc7ajgd.xn--p1ai"},
		{"www.xn--80akjebc7ajgd.xn--p1ai.", "idn-brand domain xn--80akjebc7ajgd.xn--p1ai"},
		{"WWW.XN--80AKJEBC7AJGD.xn--P1AI", "idn-brand domain xn--80akjebc7ajgd.xn--p1ai"},
		{"xn--90acjaoqmddc.xn--80akjebc7ajgd.xn--p1ai", "idn-brand name xn--90acjaoqmddc.xn--80akjebc7ajgd.xn--p1ai"},
		{"ksn-url.xn--80akhbyknj4f.xn--p1ai", "idn-brand pattern ksn-*.xn--80akhbyknj4f.xn--p1ai"},
		{"KSN-URL.XN--80AKHBYKNJ4F.XN--P1AI", "idn-brand pattern ksn-*.xn--80akhbyknj4f.xn--p1ai"},
		// Never decoded: the U-label form, raw or as the sensor escapes it.
		{"касперский.рф", ""},
		{"www.касперский.рф", ""},
		{`\208\186\208\176\209\129\208\191\208\181\209\128\209\129\208\186\208\184\208\185.\209\128\209\132`, ""},
		// The A-label of another name, and a label-boundary look-alike.
		{"xn--80akhbyknj4f.xn--p1ai", ""},
		{"axn--80akjebc7ajgd.xn--p1ai", ""},
	}
	for _, tt := range tests {
		var want []string
		if tt.want != "" {
			want = []string{tt.want}
		}
		if got := hitIDs(s.MatchName(tt.name, nil)); !slices.Equal(got, want) {
			t.Errorf("MatchName(%q) = %q, want %q", tt.name, got, want)
		}
	}
	// Combined rules see the same normalised name.
	c := Contact{Name: "Update.XN--80AKJEBC7AJGD.xn--p1ai.", Port: 443, Proto: ProtoTCP}
	want := []string{"idn-brand domain xn--80akjebc7ajgd.xn--p1ai", "idn-combined all xn--80akjebc7ajgd.xn--p1ai"}
	if got := hitIDs(s.Match(&c, nil)); !slices.Equal(got, want) {
		t.Errorf("Match(%+v) = %q, want %q", c, got, want)
	}
	c.Name = "update.касперский.рф"
	if got := s.Match(&c, nil); len(got) != 0 {
		t.Errorf("Match(%+v) = %q, want none", c, hitIDs(got))
	}
}

// TestCanonName pins the normalisation of names in rules files.
func TestCanonName(t *testing.T) {
	tests := []struct{ in, canon, prob string }{
		{"kaspersky.com", "kaspersky.com", ""},
		{"касперский.рф", "xn--80akjebc7ajgd.xn--p1ai", ""},
		{"xn--80akjebc7ajgd.xn--p1ai", "xn--80akjebc7ajgd.xn--p1ai", ""},
		{"обновление.kaspersky.com", "xn--90acjaoqmddc.kaspersky.com", ""},
		{"bücher.de", "xn--bcher-kva.de", ""},
		{"faß.de", "xn--fa-hia.de", ""}, // IDNA2008: ß is kept, not mapped to ss
		{"Kaspersky.com", "Kaspersky.com", "must be lower-case"},
		{"kaspersky.com.", "kaspersky.com.", "must not end with a dot"},
		{"Касперский.рф", "Касперский.рф", `not a valid internationalised name (IDNA2008): disallowed rune U+041A; did you mean "касперский.рф"?`},
		{"xn--zz.com", "xn--zz.com", `not a valid A-label: invalid label "zz"`},
		{"рф", "xn--p1ai", "must have at least two labels"},
	}
	for _, tt := range tests {
		canon, prob := canonName(tt.in)
		if canon != tt.canon || prob != tt.prob {
			t.Errorf("canonName(%q) = %q, %q; want %q, %q", tt.in, canon, prob, tt.canon, tt.prob)
		}
	}
	// Compile wants the canonical form: a hand-built rule with a U-label is
	// refused with the A-label to write.
	p := &Profile{ID: "h", File: "h.yaml", Sources: map[string]Source{"S": {"t", "https://example.com/"}}}
	r := &Rule{ID: "h-1", Profile: p, Category: CategoryBrand, Severity: SeverityLow, Confidence: ConfidenceUnverified,
		Sources: []string{"S"}, Match: Match{Domains: []string{"касперский.рф"}, Patterns: []string{"a*.касперский.рф"}}}
	_, err := Compile(ParsedFile{p, []*Rule{r}})
	want := `h.yaml: rule "h-1": domain "касперский.рф": internationalised name; write its A-label "xn--80akjebc7ajgd.xn--p1ai"
h.yaml: rule "h-1": pattern "a*.касперский.рф": fixed part "касперский.рф": internationalised name; write its A-label "xn--80akjebc7ajgd.xn--p1ai"`
	if err == nil || err.Error() != want {
		t.Errorf("Compile error:\n%v\nwant:\n%s", err, want)
	}
}

// TestWireNames: names on the wire are lower-cased (ASCII) and lose one
// trailing dot; a name with an escaped or raw byte that cannot be in a
// host name never matches, not even by suffix.
func TestWireNames(t *testing.T) {
	p := &Profile{ID: "w", File: "w.yaml", Sources: map[string]Source{"S": {"t", "https://example.com/"}}}
	rules := []*Rule{
		{ID: "w-domain", Profile: p, Category: CategoryBrand, Severity: SeverityLow, Confidence: ConfidenceUnverified,
			Sources: []string{"S"}, Match: Match{Domains: []string{"kaspersky.com", "avp.ru"}}},
		{ID: "w-name", Profile: p, Category: CategoryUpdate, Severity: SeverityHigh, Confidence: ConfidenceUnverified,
			Sources: []string{"S"}, Match: Match{Names: []string{"upd.kaspersky.com"}}},
	}
	s, err := Compile(ParsedFile{p, rules})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ name, want string }{
		{"kaspersky.com", "w-domain domain kaspersky.com"},
		{"KASPERSKY.COM.", "w-domain domain kaspersky.com"},
		{"Www.Kaspersky.Com", "w-domain domain kaspersky.com"},
		{"UPD.kaspersky.com", "w-name name upd.kaspersky.com"},
		{"_ldap._tcp.kaspersky.com", "w-domain domain kaspersky.com"}, // printable: fine
		// Label boundaries.
		{"tfvanrafeseaavp.ru", ""},
		{"kasperskyupdate.com", ""},
		{"kaspersky-lab.org", ""},
		{"kaspersky.com.example", ""},
		{"notkaspersky.com", ""},
		{"kaspersky.com.", "w-domain domain kaspersky.com"},
		{"kaspersky.com..", ""},
		{".kaspersky.com", "w-domain domain kaspersky.com"}, // an empty label in front is still below the domain
		// Escaped by the sensor (\DDD) or raw: never a match.
		{`kaspersky\000.com`, ""},
		{`kaspersky.com\000`, ""},
		{`x\000.kaspersky.com`, ""},
		{`x\032y.kaspersky.com`, ""},
		{`x\092.kaspersky.com`, ""},
		{`upd\.kaspersky.com`, ""},
		{"x\x00.kaspersky.com", ""},
		{"kaspersky.com\x00", ""},
		{"x y.kaspersky.com", ""},
		{"x\tkaspersky.com", ""},
		{"x\x7f.kaspersky.com", ""},
		{"x\xff.kaspersky.com", ""},
		{"\xc3\x28.kaspersky.com", ""},     // invalid UTF-8
		{"kaspersky.com\xed\xa0\x80", ""},  // a surrogate, invalid UTF-8
		{"kаspersky.com", ""},              // Cyrillic а, valid UTF-8
		{"www.kaspersky.com\u200b", ""},    // zero-width space
		{"www.kaspersky.com\u3002com", ""}, // ideographic full stop is not a dot
	}
	for _, tt := range tests {
		var want []string
		if tt.want != "" {
			want = []string{tt.want}
		}
		if got := hitIDs(s.MatchName(tt.name, nil)); !slices.Equal(got, want) {
			t.Errorf("MatchName(%q) = %q, want %q", tt.name, got, want)
		}
		c := Contact{Name: tt.name}
		if got := hitIDs(s.Match(&c, nil)); !slices.Equal(got, want) {
			t.Errorf("Match(Name %q) = %q, want %q", tt.name, got, want)
		}
	}
	// Upper case, escapes and bad bytes cost no allocation either.
	dst := make([]Hit, 0, 4)
	for _, n := range []string{"WWW.KASPERSKY.COM", `x\000.kaspersky.com`, "x\xff.kaspersky.com", strings.Repeat("a.", 200) + "kaspersky.com"} {
		if a := testing.AllocsPerRun(100, func() { dst = s.MatchName(n, dst[:0]) }); a != 0 {
			t.Errorf("MatchName(%q): %v allocs, want 0", n, a)
		}
	}
}

// TestLongNames: names longer than a rule can be still match by suffix;
// names of many labels are handled whole.
func TestLongNames(t *testing.T) {
	s := builtin(t)
	long := strings.Repeat("a.", 150) + "s01.upd.kaspersky.com" // 321 bytes, 154 labels
	if got := hitIDs(s.MatchName(long, nil)); !slices.Equal(got, []string{"kaspersky-update domain upd.kaspersky.com"}) {
		t.Errorf("MatchName(long) = %q", got)
	}
	label63 := strings.Repeat("x", 63)
	name := label63 + "." + label63 + "." + label63 + ".kaspersky.com" // 206 bytes
	if got := hitIDs(s.MatchName(name, nil)); !slices.Equal(got, []string{"kaspersky-brand domain kaspersky.com"}) {
		t.Errorf("MatchName(%d bytes) = %q", len(name), got)
	}
	if got := s.MatchName(strings.Repeat("b", 300)+".kaspersky.com", nil); len(got) != 1 {
		t.Errorf("a 300-byte label: %q", hitIDs(got))
	}
	// Around the short buffer's size: every suffix is still looked at, the
	// name itself too.
	for n := shortLabels - 3; n <= shortLabels+3; n++ {
		labels := strings.Repeat("x.", n-3)
		for _, tt := range []struct{ name, want string }{
			{labels + "kaspersky.com", "kaspersky-brand domain kaspersky.com"},
			{labels + "s01.upd.kaspersky.com", "kaspersky-update domain upd.kaspersky.com"},
		} {
			if got := hitIDs(s.MatchName(tt.name, nil)); !slices.Equal(got, []string{tt.want}) {
				t.Errorf("%d labels: MatchName(%q) = %q", strings.Count(tt.name, ".")+1, tt.name, got)
			}
			c := Contact{Name: tt.name}
			if got := hitIDs(s.Match(&c, nil)); !slices.Equal(got, []string{tt.want}) {
				t.Errorf("%d labels: Match(%q) = %q", strings.Count(tt.name, ".")+1, tt.name, got)
			}
		}
	}
	p := &Profile{ID: "deep", File: "deep.yaml", Sources: map[string]Source{"S": {"t", "https://example.com/"}}}
	deepName := strings.Repeat("y.", shortLabels+5) + "example.com"
	r := &Rule{ID: "deep-1", Profile: p, Category: CategoryBrand, Severity: SeverityLow, Confidence: ConfidenceUnverified,
		Sources: []string{"S"}, Match: Match{Names: []string{deepName}, Patterns: []string{"z*." + deepName}}}
	ds, err := Compile(ParsedFile{p, []*Rule{r}})
	if err != nil {
		t.Fatal(err)
	}
	if got := hitIDs(ds.MatchName(deepName, nil)); !slices.Equal(got, []string{"deep-1 name " + deepName}) {
		t.Errorf("a name of %d labels: %q", shortLabels+7, got)
	}
	if got := hitIDs(ds.MatchName("zz."+deepName, nil)); !slices.Equal(got, []string{"deep-1 pattern z*." + deepName}) {
		t.Errorf("a pattern of %d labels: %q", shortLabels+8, got)
	}
}

// prepared returns name prepared with room for every suffix.
func prepared(name string) *wireName {
	w := (&wireBufLong{}).wire()
	w.prepare(name)
	return &w
}

// TestNameIndexAgainstMap checks the name index against a Go map on random
// names and suffixes, growth included.
func TestNameIndexAgainstMap(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	var ix nameIndex
	want := map[string]uint32{}
	var keys []string
	for i := range 20000 {
		// Keys of 3 to 36 bytes: compared in the slot (headLen) and out.
		k := feedLabel(rng, 1+rng.IntN(30)) + "." + []string{"com", "net", "co.uk", "a.b.c"}[rng.IntN(4)]
		if slot, added := ix.insert(k); added {
			slot.val = uint32(i)
			want[k] = uint32(i)
			keys = append(keys, k)
		} else if slot.val != want[k] {
			t.Fatalf("insert(%q) again: val %d, want %d", k, slot.val, want[k])
		}
	}
	ix.freeze()
	if ix.len() != len(want) || len(ix.bloom) == 0 {
		t.Fatalf("len %d (want %d), bloom %d words", ix.len(), len(want), len(ix.bloom))
	}
	check := func(name string) {
		w := prepared(name)
		for k := range w.n {
			suffix := strings.ToLower(w.suffix(k))
			v, in := want[suffix]
			e := ix.find(w, k)
			switch {
			case in && (e == nil || e.val != v || !ix.mayHave(w.h[k])):
				t.Fatalf("find(%q) = %v, want %d (bloom %v)", suffix, e, v, ix.mayHave(w.h[k]))
			case !in && e != nil:
				t.Fatalf("find(%q) = %v, want none", suffix, e)
			case in && ix.key(e) != suffix:
				t.Fatalf("key of find(%q) = %q", suffix, ix.key(e))
			}
		}
	}
	for _, k := range keys {
		check(k)
		check("x." + strings.ToUpper(k))
	}
	fp := 0
	for range 20000 {
		name := feedLabel(rng, 1+rng.IntN(8)) + ".org"
		check(name)
		if w := prepared(name); ix.mayHave(w.h[w.n-1]) {
			fp++
		}
	}
	if fp > 400 {
		t.Errorf("Bloom filter: %d false positives in 20000, want under 2%%", fp)
	}
}

// TestHashSuffixes: the hash of each suffix computed in one pass over a
// wire name equals the hash of the suffix alone.
func TestHashSuffixes(t *testing.T) {
	for _, name := range []string{"a", "a.b", "S01.Upd.Kaspersky.COM", "x..y", ".a.b", strings.Repeat("ab.", 90) + "c"} {
		w := prepared(name)
		for k := range w.n {
			if got, want := w.h[k], hashName(strings.ToLower(w.suffix(k))); got != want {
				t.Errorf("%q: suffix %q hash %x, want %x", name, w.suffix(k), got, want)
			}
		}
	}
}

// TestCompileNamesAcrossProfiles: the same name in several profiles and
// kinds, and duplicates found by the index.
func TestCompileNamesAcrossProfiles(t *testing.T) {
	mk := func(id string, m ...Match) ParsedFile {
		p := &Profile{ID: id, File: id + ".yaml", Sources: map[string]Source{"S": {"t", "https://example.com/"}}}
		var rules []*Rule
		for i, mm := range m {
			rules = append(rules, &Rule{ID: fmt.Sprintf("%s-%d", id, i), Profile: p, Category: CategoryBrand, Severity: SeverityLow,
				Confidence: ConfidenceUnverified, Sources: []string{"S"}, Match: mm})
		}
		return ParsedFile{p, rules}
	}
	s, err := Compile(
		mk("a", Match{Domains: []string{"example.com"}}, Match{Names: []string{"example.com"}, Patterns: []string{"w*.example.com"}}),
		mk("b", Match{Names: []string{"www.example.com"}}, Match{Domains: []string{"example.com"}}),
	)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		want []string
	}{
		{"example.com", []string{"a-1 name example.com", "b-1 domain example.com"}},
		{"www.example.com", []string{"a-1 pattern w*.example.com", "b-0 name www.example.com"}},
		{"x.example.com", []string{"a-0 domain example.com", "b-1 domain example.com"}},
	} {
		if got := hitIDs(s.MatchName(tt.name, nil)); !slices.Equal(got, tt.want) {
			t.Errorf("MatchName(%q) = %q, want %q", tt.name, got, tt.want)
		}
	}
	_, err = Compile(mk("d", Match{Domains: []string{"example.com"}}, Match{Domains: []string{"example.com"}, Names: []string{"a.example.com"}},
		Match{Names: []string{"a.example.com"}}, Match{Patterns: []string{"x*.example.com", "x*.example.com"}}))
	want := `d.yaml: rule "d-1": domain "example.com" is listed twice in this profile
d.yaml: rule "d-2": name "a.example.com" is listed twice in this profile
d.yaml: rule "d-3": pattern "x*.example.com" is listed twice in this profile`
	if err == nil || err.Error() != want {
		t.Errorf("Compile error:\n%v\nwant:\n%s", err, want)
	}
}
