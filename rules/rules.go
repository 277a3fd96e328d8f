package rules

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Category says what a rule's indicators are used for. The list is fixed;
// a file naming any other category is rejected.
type Category string

// The categories. See README.md for what each one means.
const (
	CategoryUpdate       Category = "update"        // signature and module updates
	CategoryKSNTelemetry Category = "ksn-telemetry" // cloud reputation look-ups and telemetry (KSN)
	CategoryActivation   Category = "activation"    // licensing and activation
	CategoryCertificate  Category = "certificate"   // trusted time, CRL, OCSP
	CategoryManagement   Category = "management"    // Security Center (on-premises ports, Cloud Console)
	CategoryPortal       Category = "portal"        // customer portals, installers, injected web scripts
	CategoryBrand        Category = "brand"         // vendor-owned domains whose purpose is unknown
	CategoryNetwork      Category = "network"       // address space registered to the vendor
	CategoryFallbackDNS  Category = "fallback-dns"  // vendor names looked up at the vendor's hard-coded public resolvers
	CategoryCountry      Category = "country"       // endpoint hosted in a country of concern
)

var categories = []Category{
	CategoryUpdate, CategoryKSNTelemetry, CategoryActivation, CategoryCertificate,
	CategoryManagement, CategoryPortal, CategoryBrand, CategoryNetwork,
	CategoryFallbackDNS, CategoryCountry,
}

// Categories returns the fixed list of valid categories, in documentation order.
func Categories() []Category { return append([]Category(nil), categories...) }

// Valid reports whether c is one of the fixed categories.
func (c Category) Valid() bool {
	for _, k := range categories {
		if c == k {
			return true
		}
	}
	return false
}

// Severity ranks how much a hit matters. The zero value is not a valid
// severity; valid ones run from SeverityInfo (1) to SeverityCritical (5).
type Severity uint8

// The severities, in increasing order.
const (
	SeverityInfo Severity = iota + 1
	SeverityLow
	SeverityMedium
	SeverityHigh
	SeverityCritical
)

var severityNames = [...]string{"", "info", "low", "medium", "high", "critical"}

// String returns the lower-case name ("high"), or "Severity(N)" if s is not valid.
func (s Severity) String() string {
	if s.Valid() {
		return severityNames[s]
	}
	return "Severity(" + strconv.Itoa(int(s)) + ")"
}

// Valid reports whether s is one of SeverityInfo..SeverityCritical.
func (s Severity) Valid() bool { return s >= SeverityInfo && s <= SeverityCritical }

// MarshalText implements encoding.TextMarshaler.
func (s Severity) MarshalText() ([]byte, error) {
	if !s.Valid() {
		return nil, fmt.Errorf("rules: invalid severity %d", uint8(s))
	}
	return []byte(severityNames[s]), nil
}

// UnmarshalText implements encoding.TextUnmarshaler; it accepts exactly the
// lower-case names "info", "low", "medium", "high" and "critical".
func (s *Severity) UnmarshalText(b []byte) error {
	for i := SeverityInfo; i <= SeverityCritical; i++ {
		if string(b) == severityNames[i] {
			*s = i
			return nil
		}
	}
	return fmt.Errorf("rules: unknown severity %q; want one of info, low, medium, high, critical", b)
}

// The confidence levels of Rule.Confidence: how well the rule's indicators
// are sourced (not how specific they are; that is what Severity expresses).
const (
	ConfidenceOfficial   = "official"   // vendor or government text
	ConfidenceCommunity  = "community"  // third-party lists, articles, issue threads
	ConfidenceUnverified = "unverified" // a single non-authoritative source, or inferred
)

// The kinds of indicator, as reported in Hit.Kind and accepted by
// Set.UsesKind. Each is the singular of its key in a rules file's match
// block ("domains" holds KindDomain indicators), except KindJA4, whose key
// is "ja4".
const (
	KindDomain    = "domain"     // suffix on label boundaries, also matching the name itself
	KindName      = "name"       // exact name
	KindPattern   = "pattern"    // one '*' in the leftmost label
	KindCIDR      = "cidr"       // address prefix
	KindPort      = "port"       // transport port or port range
	KindASN       = "asn"        // autonomous system number of the address ("AS200107")
	KindCountry   = "country"    // ISO 3166-1 alpha-2 country of the address ("RU")
	KindJA4       = "ja4"        // JA4 TLS client fingerprint; '*' may stand for a whole section
	KindUserAgent = "user_agent" // HTTP User-Agent glob, '*' for any run, case-insensitive
)

// The kinds of a combined hit (a rule whose match is a combinator): the
// top-level combinator of the rule. Hit.Reason explains every part that
// held; Hit.AppendParts lists them.
const (
	KindAll = "all" // every condition held
	KindAny = "any" // one condition held (the first, in file order)
)

// Profile is one vendor profile: the header of one rules file.
// Values are shared by every Set built from them and must not be modified.
type Profile struct {
	ID, Name, Version, Description string
	// File is the path the profile was read from, or "builtin:NAME" for an
	// embedded profile.
	File         string
	LastReviewed time.Time
	Sources      map[string]Source

	line, col int // position of the id value, for errors across files
}

// Source is one entry of a profile's sources table.
type Source struct{ Title, URL string }

// Rule is one rule of a profile. Values are shared by every Set built from
// them and must not be modified.
type Rule struct {
	ID, Name   string
	Profile    *Profile
	Category   Category
	Severity   Severity
	Confidence string   // ConfidenceOfficial, ConfidenceCommunity or ConfidenceUnverified
	Sources    []string // keys of Profile.Sources
	Note       string
	Match      Match // the condition: indicators (any one matching is a hit) or one combinator

	line, col int // position of the id value, for errors across files
}

// Match is a condition: either a block of indicators, which holds when any
// one of them matches, or exactly one combinator (All, Any or Not) over
// nested conditions. Indicators are in canonical form (which is also the
// only form the parser accepts, so each value prints exactly as it was
// written; ASNs print as "AS200107").
type Match struct {
	Domains    []string       // suffixes on label boundaries, also matching the name itself
	Names      []string       // exact names
	Patterns   []string       // exactly one '*' in the leftmost label
	CIDRs      []netip.Prefix // masked prefixes
	Ports      []PortRange
	ASNs       []uint32 // AS numbers of the destination address
	Countries  []string // ISO 3166-1 alpha-2 codes of the destination address, upper case
	JA4        []string // JA4 fingerprints; a section may be "*"
	UserAgents []string // User-Agent globs ('*' matches any run), matched without regard to ASCII case

	All []Match // every condition holds (at least one of them not a Not)
	Any []Match // at least one condition holds (none of them a Not)
	Not *Match  // the condition does not hold; only inside All
}

// Len returns the number of indicators, counting those of nested
// conditions too.
func (m Match) Len() int {
	n := len(m.Domains) + len(m.Names) + len(m.Patterns) + len(m.CIDRs) + len(m.Ports) +
		len(m.ASNs) + len(m.Countries) + len(m.JA4) + len(m.UserAgents)
	for _, c := range m.All {
		n += c.Len()
	}
	for _, c := range m.Any {
		n += c.Len()
	}
	if m.Not != nil {
		n += m.Not.Len()
	}
	return n
}

// Combined reports whether m is a combinator (All, Any or Not) rather than
// a block of indicators.
func (m Match) Combined() bool { return m.All != nil || m.Any != nil || m.Not != nil }

// FormatASN returns the canonical text of an AS number, "AS200107".
func FormatASN(asn uint32) string { return "AS" + strconv.FormatUint(uint64(asn), 10) }

// Transport protocol numbers used by PortRange and Set.MatchPort.
const (
	ProtoTCP uint8 = 6
	ProtoUDP uint8 = 17
)

// PortRange is an inclusive range of ports of one transport protocol.
type PortRange struct {
	Proto  uint8 // ProtoTCP or ProtoUDP
	Lo, Hi uint16
}

// String returns "13000/tcp" or "27200-27299/tcp".
func (p PortRange) String() string {
	proto := "tcp"
	switch p.Proto {
	case ProtoTCP:
	case ProtoUDP:
		proto = "udp"
	default:
		proto = "proto" + strconv.Itoa(int(p.Proto))
	}
	if p.Lo == p.Hi {
		return strconv.Itoa(int(p.Lo)) + "/" + proto
	}
	return strconv.Itoa(int(p.Lo)) + "-" + strconv.Itoa(int(p.Hi)) + "/" + proto
}

// Contact is what the sensor knows of one contact at the moment it
// matches. Empty fields are unknown and match nothing.
type Contact struct {
	Name      string     // DNS question, SNI or Host as the sensor writes it; ASCII case and one trailing dot are ignored; "" when none
	Addr      netip.Addr // destination address; invalid when none
	Port      uint16     // destination port; 0 when none
	Proto     uint8      // ProtoTCP or ProtoUDP; 0 when none
	Country   string     // ISO 3166-1 alpha-2 of Addr, upper case; "" unknown
	ASN       uint32     // AS number of Addr; 0 unknown
	JA4       string     // JA4 fingerprint of the TLS or QUIC ClientHello; "" when none
	UserAgent string     // raw (escaped) User-Agent; "" when none
}

// maxParts bounds the parts a combined hit can explain (see Hit.Reason);
// the parser rejects a condition that could hold through more.
const maxParts = 6

// Hit is one match of one rule.
type Hit struct {
	Rule *Rule
	// Kind is the kind of the indicator that matched (KindDomain …
	// KindUserAgent), or KindAll / KindAny for a rule whose match is a
	// combinator.
	Kind string
	// Indicator is the matching value as written, e.g. "upd.kaspersky.com";
	// for a combined hit, that of its first part. A name's may share
	// memory with the Set's tables (which it then keeps, as Rule keeps the
	// rule): clone it to keep it long after the Set is replaced.
	Indicator string

	info   *ruleInfo        // set by the Set that made the hit: rule order, compiled condition
	parts  [maxParts]uint16 // combined hits: the leaves that held (ruleInfo.leaves)
	nParts uint8
}

// Reason explains the hit for people, e.g. `domain suffix "upd.kaspersky.com"`,
// `address in 77.74.176.0/21`, or for a combined hit every part that held:
// `country "RU" and port 443/tcp`.
func (h Hit) Reason() string {
	if h.info != nil && h.info.cond != nil {
		var b strings.Builder
		for i := range int(h.nParts) {
			if i > 0 {
				b.WriteString(" and ")
			}
			l := &h.info.leaves[h.parts[i]]
			if l.not != "" {
				b.WriteString("not ")
				b.WriteString(l.not)
				continue
			}
			b.WriteString(Hit{Kind: l.kind, Indicator: l.ind}.Reason())
		}
		return b.String()
	}
	switch h.Kind {
	case KindDomain:
		return "domain suffix " + strconv.Quote(h.Indicator)
	case KindName:
		return "exact name " + strconv.Quote(h.Indicator)
	case KindPattern:
		return "name pattern " + strconv.Quote(h.Indicator)
	case KindCIDR:
		return "address in " + h.Indicator
	case KindPort:
		if strings.IndexByte(h.Indicator, '-') >= 0 {
			return "port in " + h.Indicator
		}
		return "port " + h.Indicator
	case KindASN:
		return "address in " + h.Indicator
	case KindCountry:
		return "country " + strconv.Quote(h.Indicator)
	case KindJA4:
		return "JA4 " + strconv.Quote(h.Indicator)
	case KindUserAgent:
		if strings.IndexByte(h.Indicator, '*') >= 0 {
			return "user agent pattern " + strconv.Quote(h.Indicator)
		}
		return "user agent " + strconv.Quote(h.Indicator)
	}
	return h.Kind + " " + strconv.Quote(h.Indicator)
}

// AppendParts appends to dst the indicators that held for a combined hit
// (Kind KindAll or KindAny), each as a plain hit of the same rule, in file
// order, and returns the extended slice. Negated parts ("not …") are not
// indicators that matched and are left out; Reason names them. For any
// other hit it appends h itself.
func (h Hit) AppendParts(dst []Hit) []Hit {
	if h.info == nil || h.info.cond == nil {
		return append(dst, h)
	}
	for i := range int(h.nParts) {
		l := &h.info.leaves[h.parts[i]]
		if l.not == "" {
			dst = append(dst, Hit{Rule: h.Rule, Kind: l.kind, Indicator: l.ind})
		}
	}
	return dst
}
