package rules

import (
	"fmt"
	"net/netip"
	"strconv"
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
)

var categories = []Category{
	CategoryUpdate, CategoryKSNTelemetry, CategoryActivation, CategoryCertificate,
	CategoryManagement, CategoryPortal, CategoryBrand, CategoryNetwork,
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

// The kinds of indicator, as reported in Hit.Kind.
const (
	KindDomain  = "domain"  // suffix on label boundaries, also matching the name itself
	KindName    = "name"    // exact name
	KindPattern = "pattern" // one '*' in the leftmost label
	KindCIDR    = "cidr"    // address prefix
	KindPort    = "port"    // transport port or port range
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
	Match      Match // the indicators; any one of them matching is a hit

	line, col int // position of the id value, for errors across files
}

// Match holds a rule's indicators, in canonical form (which is also the only
// form the parser accepts, so each value prints exactly as it was written).
type Match struct {
	Domains  []string       // suffixes on label boundaries, also matching the name itself
	Names    []string       // exact names
	Patterns []string       // exactly one '*' in the leftmost label
	CIDRs    []netip.Prefix // masked prefixes
	Ports    []PortRange
}

// Len returns the number of indicators.
func (m Match) Len() int {
	return len(m.Domains) + len(m.Names) + len(m.Patterns) + len(m.CIDRs) + len(m.Ports)
}

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

// Hit is one match of one rule.
type Hit struct {
	Rule      *Rule
	Kind      string // KindDomain, KindName, KindPattern, KindCIDR or KindPort
	Indicator string // the matching value as written, e.g. "upd.kaspersky.com"
}

// Reason explains the hit for people, e.g. `domain suffix "upd.kaspersky.com"`
// or `address in 77.74.176.0/21`.
func (h Hit) Reason() string {
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
		for i := 0; i < len(h.Indicator); i++ {
			if h.Indicator[i] == '-' {
				return "port in " + h.Indicator
			}
		}
		return "port " + h.Indicator
	}
	return h.Kind + " " + strconv.Quote(h.Indicator)
}
