package rules

import (
	"math/rand/v2"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// loadConditions returns testdata/valid-conditions.yaml alone, or after the
// built-in profiles.
func loadConditions(t testing.TB, builtin bool) *Set {
	t.Helper()
	s, err := Load([]string{"testdata/valid-conditions.yaml"}, builtin)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return s
}

// hitReasons renders hits as "rule-id kind: reason".
func hitReasons(hits []Hit) []string {
	var out []string
	for _, h := range hits {
		out = append(out, h.Rule.ID+" "+h.Kind+": "+h.Reason())
	}
	return out
}

func TestMatchContactConditions(t *testing.T) {
	s := loadConditions(t, false)
	tests := []struct {
		name string
		c    Contact
		want []string
	}{
		{"RU and 443 hit", Contact{Country: "RU", Port: 443, Proto: ProtoTCP},
			[]string{`ru-https all: country "RU" and port 443/tcp`}},
		{"RU and 80 miss", Contact{Country: "RU", Port: 80, Proto: ProtoTCP}, nil},
		{"RU and 443/udp miss", Contact{Country: "RU", Port: 443, Proto: ProtoUDP}, nil},
		{"443 alone miss", Contact{Port: 443, Proto: ProtoTCP}, nil},
		{"ASN with another name", Contact{ASN: 200107, Name: "www.example.org"},
			[]string{`asn-unnamed all: address in AS200107 and not domain suffix "kaspersky.com"`}},
		{"ASN without a name", Contact{ASN: 200107},
			[]string{`asn-unnamed all: address in AS200107 and not domain suffix "kaspersky.com"`}},
		{"ASN with kaspersky.com", Contact{ASN: 200107, Name: "kaspersky.com"}, nil},
		{"ASN with a name under kaspersky.com", Contact{ASN: 200107, Name: "s01.upd.kaspersky.com."}, nil},
		{"ASN with a look-alike", Contact{ASN: 200107, Name: "notkaspersky.com"},
			[]string{`asn-unnamed all: address in AS200107 and not domain suffix "kaspersky.com"`}},
		{"JA4 branch of any", Contact{JA4: "t13d1516h2_8daaf6152771_e5627efa2ab1"},
			[]string{`client-any any: JA4 "t13d1516h2_8daaf6152771_e5627efa2ab1"`}},
		{"UA and 80 branch of any", Contact{UserAgent: "Mozilla/5.0 (kaspersky lab)", Port: 80, Proto: ProtoTCP},
			[]string{`client-any any: user agent pattern "*Kaspersky*" and port 80/tcp`}},
		{"UA without 80", Contact{UserAgent: "Mozilla/5.0 (Kaspersky Lab)", Port: 443, Proto: ProtoTCP}, nil},
		{"both branches: the first is reported", Contact{JA4: "t13d1516h2_8daaf6152771_e5627efa2ab1", UserAgent: "Kaspersky", Port: 80, Proto: ProtoTCP},
			[]string{`client-any any: JA4 "t13d1516h2_8daaf6152771_e5627efa2ab1"`}},
		{"plain UA, case-insensitive", Contact{UserAgent: "kasperskylab/12.0"},
			[]string{`plain-client user_agent: user agent pattern "KasperskyLab*"`}},
		{"plain UA, most fixed characters", Contact{UserAgent: "KasperskyLab/11.0.1"},
			[]string{`plain-client user_agent: user agent pattern "KasperskyLab/11*"`}},
		{"plain UA must match from the start", Contact{UserAgent: "x KasperskyLab"}, nil},
		{"plain JA4 exact", Contact{JA4: "q13d0310h3_55b375c5d22e_cd85d2d88918"},
			[]string{`plain-client ja4: JA4 "q13d0310h3_55b375c5d22e_cd85d2d88918"`}},
		{"plain JA4 wildcard", Contact{JA4: "t13d0310h2_55b375c5d22e_000000000000"},
			[]string{`plain-client ja4: JA4 "*_55b375c5d22e_*"`}},
		{"JA4 of another shape", Contact{JA4: "t13d0310h2_55b375c5d22e"}, nil},
		{"one hit per rule: ASN before country", Contact{ASN: 64497, Country: "BY"},
			[]string{`plain-geo asn: address in AS64497`}},
		{"country alone", Contact{Country: "BY"}, []string{`plain-geo country: country "BY"`}},
		{"lower-case country is not normalised", Contact{Country: "by"}, nil},
		{"rule order", Contact{Country: "BY", UserAgent: "KasperskyLab", ASN: 200107, Port: 443, Proto: ProtoTCP},
			[]string{
				`asn-unnamed all: address in AS200107 and not domain suffix "kaspersky.com"`,
				`plain-client user_agent: user agent pattern "KasperskyLab*"`,
				`plain-geo country: country "BY"`,
			}},
		{"deep: exact name", Contact{Country: "KZ", Name: "a.example.com", Port: 443, Proto: ProtoTCP},
			[]string{`kz-deep all: country "KZ" and not (port 80/tcp or domain suffix "example.kz") and port 443/tcp and exact name "a.example.com"`}},
		{"deep: pattern before domain", Contact{Country: "KZ", Name: "cdn7.example.com", Port: 8443, Proto: ProtoTCP},
			[]string{`kz-deep all: country "KZ" and not (port 80/tcp or domain suffix "example.kz") and port 8443/tcp and name pattern "cdn*.example.com"`}},
		{"deep: domain", Contact{Country: "KZ", Name: "x.cdn7.example.com", Port: 443, Proto: ProtoTCP},
			[]string{`kz-deep all: country "KZ" and not (port 80/tcp or domain suffix "example.kz") and port 443/tcp and domain suffix "example.com"`}},
		{"deep: other branch", Contact{Country: "KZ", ASN: 64500},
			[]string{`kz-deep all: country "KZ" and not (port 80/tcp or domain suffix "example.kz") and address in AS64500`}},
		{"deep: negated name", Contact{Country: "KZ", ASN: 64500, Name: "www.example.kz"}, nil},
		{"deep: negated port", Contact{Country: "KZ", ASN: 64500, Port: 80, Proto: ProtoTCP}, nil},
		{"nothing", Contact{}, nil},
	}
	for _, tt := range tests {
		c := tt.c
		if got := hitReasons(s.Match(&c, nil)); !slices.Equal(got, tt.want) {
			t.Errorf("%s: Match(%+v) =\n%q\nwant\n%q", tt.name, tt.c, got, tt.want)
		}
	}
	if got := s.Match(nil, nil); len(got) != 0 {
		t.Errorf("Match(nil) = %v", got)
	}
}

// TestMatchPlainKinds checks that Match reports what MatchName, MatchAddr
// and MatchPort do for plain rules (the most specific rule per profile and
// field), one hit per rule, in rule order.
func TestMatchPlainKinds(t *testing.T) {
	s := loadConditions(t, true)
	tests := []struct {
		c    Contact
		want []string
	}{
		{Contact{Name: "s01.upd.kaspersky.com"}, []string{"kaspersky-update domain upd.kaspersky.com"}},
		{Contact{Name: "s01.upd.kaspersky.com", Addr: netip.MustParseAddr("77.74.176.1"), Port: 13000, Proto: ProtoTCP}, []string{
			"kaspersky-update domain upd.kaspersky.com",
			"kaspersky-ksc-agent-ports port 13000/tcp",
			"kaspersky-network-as41983 cidr 77.74.176.0/21",
		}},
		// The address selects the AS41983 rule by prefix, the ASN selects the AS200107 rule.
		{Contact{Addr: netip.MustParseAddr("::ffff:77.74.176.1"), ASN: 200107}, []string{
			"kaspersky-network-as41983 cidr 77.74.176.0/21",
			"kaspersky-network-as200107 asn AS200107",
			"asn-unnamed all " + "AS200107",
		}},
		// One rule selected by address and ASN: one hit, for the address.
		{Contact{Addr: netip.MustParseAddr("93.159.226.10"), ASN: 200107}, []string{
			"kaspersky-network-as200107 cidr 93.159.226.0/24",
			"asn-unnamed all AS200107",
		}},
		{Contact{ASN: 41983}, []string{"kaspersky-network-as41983 asn AS41983"}},
		{Contact{Country: "RU"}, []string{"russian-hosted-endpoint country RU"}},
		{Contact{Port: 13000, Proto: 0}, nil},
	}
	for _, tt := range tests {
		c := tt.c
		if got := hitIDs(s.Match(&c, nil)); !slices.Equal(got, tt.want) {
			t.Errorf("Match(%+v) = %q, want %q", tt.c, got, tt.want)
		}
	}
}

func TestMatchAppendsAndAllocs(t *testing.T) {
	s := loadConditions(t, true)
	contacts := []Contact{
		{Name: "dnl-01.geo.kaspersky.com", Addr: netip.MustParseAddr("8.8.8.8"), Port: 53, Proto: ProtoUDP},
		{Name: "www.google.com", Addr: netip.MustParseAddr("142.250.74.36"), Port: 443, Proto: ProtoTCP, Country: "US", ASN: 15169,
			JA4: "t13d1516h2_8daaf6152771_02713d6af862", UserAgent: "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36"},
		{Country: "KZ", Name: "cdn7.example.com", Port: 8443, Proto: ProtoTCP},
		{ASN: 200107, Addr: netip.MustParseAddr("2a03:2480:8021::53%eth0"), Country: "RU", Port: 443, Proto: ProtoTCP},
		{UserAgent: "Mozilla/5.0 (kaspersky lab)", Port: 80, Proto: ProtoTCP, JA4: "q13d0310h3_55b375c5d22e_cd85d2d88918"},
		{},
	}
	dst := make([]Hit, 0, 16)
	for _, c := range contacts {
		if n := testing.AllocsPerRun(100, func() { dst = s.Match(&c, dst[:0]) }); n != 0 {
			t.Errorf("Match(%+v): %v allocs, want 0", c, n)
		}
	}
	// Match appends after what dst holds, and sorts only its own hits.
	c := Contact{Country: "RU", Port: 443, Proto: ProtoTCP}
	pre := s.MatchName("crl.kaspersky.com", nil)
	got := hitIDs(s.Match(&c, pre))
	want := []string{"kaspersky-crl name crl.kaspersky.com", "russian-hosted-endpoint country RU", "ru-https all RU"}
	if !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestAppendParts(t *testing.T) {
	s := loadConditions(t, false)
	c := Contact{Country: "KZ", Name: "a.example.com", Port: 443, Proto: ProtoTCP}
	hits := s.Match(&c, nil)
	if len(hits) != 1 || hits[0].Kind != KindAll || hits[0].Indicator != "KZ" {
		t.Fatalf("hits = %q", hitIDs(hits))
	}
	parts := hits[0].AppendParts(nil)
	want := []string{"kz-deep country KZ", "kz-deep port 443/tcp", "kz-deep name a.example.com"}
	if got := hitIDs(parts); !slices.Equal(got, want) {
		t.Errorf("parts = %q, want %q", got, want)
	}
	for _, p := range parts {
		if strings.Contains(p.Reason(), " and ") {
			t.Errorf("part %v explains itself as combined: %s", p, p.Reason())
		}
	}
	plain := s.Match(&Contact{Country: "BY"}, nil)
	if got := plain[0].AppendParts(nil); len(got) != 1 || got[0].Rule != plain[0].Rule || got[0].Indicator != "BY" {
		t.Errorf("plain parts = %v", got)
	}
}

func TestNeedsGeoUsesKind(t *testing.T) {
	b := builtin(t)
	if !b.NeedsGeo() || !b.UsesKind(KindCountry) || !b.UsesKind(KindASN) || !b.UsesKind(KindAll) || !b.UsesKind(KindDomain) {
		t.Error("built-in set: NeedsGeo or UsesKind false")
	}
	if b.UsesKind(KindJA4) || b.UsesKind(KindUserAgent) || b.UsesKind(KindAny) || b.UsesKind("bogus") {
		t.Error("built-in set uses JA4, user agents or any")
	}
	ex, err := Load([]string{"testdata/valid-example.yaml"}, false)
	if err != nil {
		t.Fatal(err)
	}
	if ex.NeedsGeo() || ex.UsesKind(KindAll) || !ex.UsesKind(KindPort) {
		t.Error("example set: NeedsGeo or UsesKind wrong")
	}
	cs := loadConditions(t, false)
	for _, k := range []string{KindDomain, KindName, KindPattern, KindPort, KindASN, KindCountry, KindJA4, KindUserAgent, KindAll, KindAny} {
		if !cs.UsesKind(k) {
			t.Errorf("conditions set: UsesKind(%s) false", k)
		}
	}
	if cs.UsesKind(KindCIDR) {
		t.Error("conditions set: UsesKind(cidr) true")
	}
	// Countries under a not count too.
	only, err := Compile(handFile("n", Match{All: []Match{{Ports: []PortRange{{ProtoTCP, 443, 443}}}, {Not: &Match{Countries: []string{"US"}}}}}))
	if err != nil {
		t.Fatal(err)
	}
	if !only.NeedsGeo() {
		t.Error("a country under not does not need geo")
	}
}

// handFile returns a profile "hand" with one rule per match.
func handFile(id string, ms ...Match) ParsedFile {
	p := &Profile{ID: id, File: id + ".yaml", Sources: map[string]Source{"S": {"t", "https://example.com/"}}}
	var rules []*Rule
	for i, m := range ms {
		rules = append(rules, &Rule{ID: id + "-" + string(rune('a'+i)), Profile: p, Category: CategoryCountry, Severity: SeverityLow,
			Confidence: ConfidenceUnverified, Sources: []string{"S"}, Match: m})
	}
	return ParsedFile{p, rules}
}

// TestCompileHandBuiltConditions checks that Compile re-validates combined
// conditions that did not come from Parse.
func TestCompileHandBuiltConditions(t *testing.T) {
	ru := Match{Countries: []string{"RU"}}
	port := Match{Ports: []PortRange{{ProtoTCP, 443, 443}}}
	deep := Match{All: []Match{ru, {Any: []Match{port, {All: []Match{ru, {Any: []Match{port, ru}}}}}}}}
	seven := Match{All: []Match{ru, port, {ASNs: []uint32{1}}, {JA4: []string{"*_8daaf6152771_*"}}, {UserAgents: []string{"curl*"}},
		{Domains: []string{"example.com"}}, {Not: &Match{Names: []string{"a.example.com"}}}}}
	_, err := Compile(handFile("h",
		Match{Not: &ru},
		Match{All: []Match{ru}},
		Match{All: []Match{ru, port}, Countries: []string{"BY"}},
		Match{All: []Match{{Not: &ru}, {Not: &port}}},
		Match{Any: []Match{ru, {Not: &port}}},
		Match{All: []Match{ru, {Not: &Match{Not: &port}}}},
		Match{All: []Match{ru, {Countries: []string{"ru", "RU", "RU"}}, {ASNs: []uint32{0}}, {JA4: []string{"x"}}, {UserAgents: []string{"*"}}}},
		deep,
		seven,
		Match{All: []Match{ru, port}, Any: []Match{ru, port}},
		Match{All: []Match{ru, {}}},
	))
	want := `h.yaml: rule "h-a": match: a lone not holds for almost every contact; combine it with a positive condition in all
h.yaml: rule "h-b": match: all needs at least two conditions
h.yaml: rule "h-c": match: indicators and a combinator in one condition; make the indicators a condition of their own
h.yaml: rule "h-d": match: all needs at least one condition that is not a not
h.yaml: rule "h-e": match: a not cannot be a branch of any (it would hold for almost every contact); use it inside all
h.yaml: rule "h-f": match: double negation; write the condition itself
h.yaml: rule "h-g": country "ru": must be upper case; write "RU"
h.yaml: rule "h-g": country "RU" is listed twice in one condition
h.yaml: rule "h-g": asn "AS0": AS0 is reserved (RFC 7607) and never originates routes
h.yaml: rule "h-g": ja4 "x": must be three sections a_b_c, as in "t13d1516h2_8daaf6152771_e5627efa2ab1"
h.yaml: rule "h-g": user_agent "*": matches too much: at least 4 characters besides '*'
h.yaml: rule "h-h": match: conditions nested more than 4 deep
h.yaml: rule "h-i": match: the condition can hold through 7 parts; at most 6 can be explained, so split the rule
h.yaml: rule "h-j": match: only one of all, any, not per condition
h.yaml: rule "h-k": match: condition must list at least one indicator`
	if err == nil || err.Error() != want {
		t.Errorf("Compile error:\n%v\nwant:\n%s", err, want)
	}
	// A hand-built set works as a parsed one.
	s, err := Compile(handFile("ok", Match{All: []Match{ru, port}}, Match{ASNs: []uint32{64496}, UserAgents: []string{"curl/*"}}))
	if err != nil {
		t.Fatal(err)
	}
	c := Contact{Country: "RU", Port: 443, Proto: ProtoTCP, UserAgent: "curl/8.5.0"}
	want2 := []string{`ok-a all: country "RU" and port 443/tcp`, `ok-b user_agent: user agent pattern "curl/*"`}
	if got := hitReasons(s.Match(&c, nil)); !slices.Equal(got, want2) {
		t.Errorf("got %q, want %q", got, want2)
	}
}

// TestGlobAgainstRegexp compares the User-Agent glob matcher with regexp
// on random patterns and inputs over a small alphabet.
func TestGlobAgainstRegexp(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	const alpha = "aAbB/*"
	gen := func(n int, stars bool) string {
		b := make([]byte, n)
		for i := range b {
			k := len(alpha)
			if !stars {
				k--
			}
			b[i] = alpha[rng.IntN(k)]
		}
		return string(b)
	}
	for range 20000 {
		pat := gen(1+rng.IntN(8), true)
		in := gen(rng.IntN(14), false)
		var re strings.Builder
		re.WriteString(`(?is)\A`)
		for i, seg := range strings.Split(pat, "*") {
			if i > 0 {
				re.WriteString(".*")
			}
			re.WriteString(regexp.QuoteMeta(seg))
		}
		re.WriteString(`\z`)
		want := regexp.MustCompile(re.String()).MatchString(in)
		g := compileGlob(pat)
		if got := g.match(in); got != want {
			t.Fatalf("glob %q on %q = %v, want %v", pat, in, got, want)
		}
	}
}

func TestReasonNewKinds(t *testing.T) {
	tests := []struct {
		h    Hit
		want string
	}{
		{Hit{Kind: KindASN, Indicator: "AS200107"}, `address in AS200107`},
		{Hit{Kind: KindCountry, Indicator: "RU"}, `country "RU"`},
		{Hit{Kind: KindJA4, Indicator: "t13d1516h2_8daaf6152771_e5627efa2ab1"}, `JA4 "t13d1516h2_8daaf6152771_e5627efa2ab1"`},
		{Hit{Kind: KindUserAgent, Indicator: "KasperskyLab*"}, `user agent pattern "KasperskyLab*"`},
		{Hit{Kind: KindUserAgent, Indicator: "KasperskyLab"}, `user agent "KasperskyLab"`},
		{Hit{Kind: KindAll, Indicator: "x"}, `all "x"`}, // not made by a Set: nothing to explain
	}
	for _, tt := range tests {
		if got := tt.h.Reason(); got != tt.want {
			t.Errorf("Reason(%v) = %s, want %s", tt.h, got, tt.want)
		}
	}
}

func TestParseASNForms(t *testing.T) {
	for in, want := range map[string]uint32{"AS200107": 200107, "200107": 200107, "AS1": 1, "4294967294": 4294967294, "AS64496": 64496} {
		if got, prob := parseASN(in); prob != "" || got != want {
			t.Errorf("parseASN(%q) = %d, %q; want %d", in, got, prob, want)
		}
	}
	for _, in := range []string{"as200107", "As200107", "AS", "", "AS-1", "AS 1", "0x30d4b", "AS0", "0", "65535", "AS23456", "AS01"} {
		if _, prob := parseASN(in); prob == "" {
			t.Errorf("parseASN(%q) accepted", in)
		}
	}
	if FormatASN(200107) != "AS200107" {
		t.Error("FormatASN")
	}
}

func TestCountryList(t *testing.T) {
	codes := strings.Fields(assignedCountries)
	if len(codes) != 249 || !slices.IsSorted(codes) {
		t.Fatalf("%d codes, sorted %v; want 249, sorted", len(codes), slices.IsSorted(codes))
	}
	if len(assignedCountries) != 249*3-1 {
		t.Errorf("codes not separated by single spaces")
	}
	for _, c := range append(codes, "XK") {
		if prob := checkCountry(c); prob != "" {
			t.Errorf("checkCountry(%s) = %s", c, prob)
		}
	}
	for _, c := range []string{"XX", "UK", "EU", "SU", "AA", "ZZ", "QM", "ru", "Ru", "RUS", "R", ""} {
		if checkCountry(c) == "" {
			t.Errorf("checkCountry(%s) accepted", c)
		}
	}
}
