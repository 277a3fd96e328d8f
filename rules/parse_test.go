package rules

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// invalidFiles maps each testdata/invalid-*.yaml to the exact error Parse
// must return for it (file:line:col per problem, sorted by position).
var invalidFiles = map[string]string{
	"invalid-alias.yaml": `
testdata/invalid-alias.yaml:8:9: YAML aliases (*src) are not supported`,
	"invalid-asns.yaml": `
testdata/invalid-asns.yaml:20:11: rule "asns": asn "as200107": write "AS200107"
testdata/invalid-asns.yaml:21:11: rule "asns": asn "AS0": AS0 is reserved (RFC 7607) and never originates routes
testdata/invalid-asns.yaml:22:11: rule "asns": asn "23456": AS23456 is AS_TRANS (RFC 6793), a placeholder, not a network
testdata/invalid-asns.yaml:23:11: rule "asns": asn "AS4294967295": AS4294967295 is reserved (RFC 7300)
testdata/invalid-asns.yaml:24:11: rule "asns": asn "AS4294967296": AS number out of range 1-4294967294
testdata/invalid-asns.yaml:25:11: rule "asns": asn "AS020107": AS number "020107" has leading zeros
testdata/invalid-asns.yaml:26:11: rule "asns": asn "AS3.10": asdot notation; write "AS196618"
testdata/invalid-asns.yaml:27:11: rule "asns": asn "ASN200107": must be an AS number like "AS200107" or 200107
testdata/invalid-asns.yaml:28:11: rule "asns": asn "200107" is listed twice in this profile (first at line 17)
testdata/invalid-asns.yaml:29:11: rule "asns": asns: each item must be a string or an integer, got a number (1.5)
testdata/invalid-asns.yaml:30:11: rule "asns": asns: each item must be a string or an integer, got a list`,
	"invalid-cidrs.yaml": `
testdata/invalid-cidrs.yaml:19:11: rule "cidrs": cidr "77.74.176.1/21": host bits set; did you mean "77.74.176.0/21"?
testdata/invalid-cidrs.yaml:20:11: rule "cidrs": cidr "2a03:2480::1/33": host bits set; did you mean "2a03:2480::/33"?
testdata/invalid-cidrs.yaml:21:11: rule "cidrs": cidr "2A03:2480::/33": not in canonical form; write "2a03:2480::/33"
testdata/invalid-cidrs.yaml:22:11: rule "cidrs": cidr "77.74.176.0": not an address prefix like 192.0.2.0/24 or 2001:db8::/32
testdata/invalid-cidrs.yaml:23:11: rule "cidrs": cidr "0.0.0.0/0": matches every address
testdata/invalid-cidrs.yaml:24:11: rule "cidrs": cidr "::ffff:77.74.176.0/117": IPv4-mapped prefix; write the IPv4 prefix
testdata/invalid-cidrs.yaml:25:11: rule "cidrs": cidr "77.74.176.0/33": not an address prefix like 192.0.2.0/24 or 2001:db8::/32`,
	"invalid-conditions.yaml": `
testdata/invalid-conditions.yaml:16:7: rule "lone-not": a lone not holds for almost every contact; combine it with a positive condition: all: [{...}, {not: ...}]
testdata/invalid-conditions.yaml:24:12: rule "empty-all": all must not be empty
testdata/invalid-conditions.yaml:32:12: rule "one-any": any needs at least two conditions; write the condition itself
testdata/invalid-conditions.yaml:41:7: rule "mixed": all cannot be mixed with indicator keys (countries) in one match; make the indicators a condition of the list
testdata/invalid-conditions.yaml:51:11: rule "mixed-not": not cannot be mixed with indicator keys (asns) in one condition; write all: [{asns: ...}, {not: ...}]
testdata/invalid-conditions.yaml:61:7: rule "two-combinators": only one of all, any, not per match ("all" is at line 60)
testdata/invalid-conditions.yaml:69:7: rule "only-nots": all needs at least one condition that is not a not
testdata/invalid-conditions.yaml:77:32: rule "not-in-any": a not cannot be a branch of any (it would hold for almost every contact); use it inside all
testdata/invalid-conditions.yaml:85:38: rule "double-not": double negation; write the condition itself
testdata/invalid-conditions.yaml:93:12: rule "not-a-list": all must be a list of conditions, got a mapping
testdata/invalid-conditions.yaml:101:32: rule "item-not-mapping": all: each condition must be a mapping, got a string
testdata/invalid-conditions.yaml:109:38: rule "not-not-mapping": not must be a condition (a mapping), got a list
testdata/invalid-conditions.yaml:117:32: rule "empty-condition": condition must list at least one indicator
testdata/invalid-conditions.yaml:131:19: rule "too-deep": conditions nested more than 4 deep (the match block is the first level)
testdata/invalid-conditions.yaml:139:7: rule "too-many-parts": the condition can hold through 7 parts; at most 6 can be explained, so split the rule
testdata/invalid-conditions.yaml:155:27: rule "bad-inside": country "RU" is listed twice in this condition (first at line 155)
testdata/invalid-conditions.yaml:156:21: rule "bad-inside": domain "Kaspersky.com": must be lower-case
testdata/invalid-conditions.yaml:157:11: rule "bad-inside": unknown key "asn" in condition; did you mean "asns"?
testdata/invalid-conditions.yaml:158:25: rule "bad-inside": port "443": must be PORT/PROTO or LO-HI/PROTO, as in "13000/tcp" or "27200-27299/tcp"`,
	"invalid-countries.yaml": `
testdata/invalid-countries.yaml:19:11: rule "countries": country "ru": must be upper case; write "RU"
testdata/invalid-countries.yaml:20:11: rule "countries": country "XX": not an assigned ISO 3166-1 alpha-2 code
testdata/invalid-countries.yaml:21:11: rule "countries": country "UK": not an assigned code; the United Kingdom is "GB"
testdata/invalid-countries.yaml:22:11: rule "countries": country "EU": reserved for the European Union, not a country; list the member states
testdata/invalid-countries.yaml:23:11: rule "countries": country "RUS": must be an ISO 3166-1 alpha-2 code of two letters, as in "RU"
testdata/invalid-countries.yaml:24:11: rule "countries": country "": must not be empty
testdata/invalid-countries.yaml:25:11: rule "countries": country "R1": must be an ISO 3166-1 alpha-2 code of two letters, as in "RU"
testdata/invalid-countries.yaml:26:11: rule "countries": country "RU" is listed twice in this profile (first at line 17)`,
	"invalid-domains.yaml": `
testdata/invalid-domains.yaml:19:11: rule "kaspersky-update": domain "Upd.kaspersky.com": must be lower-case
testdata/invalid-domains.yaml:20:11: rule "kaspersky-update": domain ".geo.kaspersky.com": must not start with a dot
testdata/invalid-domains.yaml:21:11: rule "kaspersky-update": domain "geo.kaspersky.com.": must not end with a dot
testdata/invalid-domains.yaml:22:11: rule "kaspersky-update": domain "*.kaspersky.com": must not contain '*' (use patterns for wildcards)
testdata/invalid-domains.yaml:23:11: rule "kaspersky-update": domain "com": must have at least two labels
testdata/invalid-domains.yaml:24:11: rule "kaspersky-update": domain "kas_persky.com": invalid character '_' in label "kas_persky"
testdata/invalid-domains.yaml:25:11: rule "kaspersky-update": domain "-kaspersky.com": label "-kaspersky" must not start or end with '-'
testdata/invalid-domains.yaml:26:11: rule "kaspersky-update": domain "1.2.3.4": looks like an address; use cidrs
testdata/invalid-domains.yaml:27:11: rule "kaspersky-update": domain "a..kaspersky.com": empty label`,
	"invalid-duplicates.yaml": `
testdata/invalid-duplicates.yaml:8:5: profile: duplicate source "K1" (first at line 7)
testdata/invalid-duplicates.yaml:28:32: rule "second": domain "upd.kaspersky.com" is listed twice in this profile (first at line 17, rule "first")
testdata/invalid-duplicates.yaml:28:51: rule "second": domain "kaspersky.com" is listed twice in this profile (first at line 28)
testdata/invalid-duplicates.yaml:30:15: rule "second": cidr "77.74.176.0/21" is listed twice in this profile (first at line 19, rule "first")
testdata/invalid-duplicates.yaml:31:15: rule "second": port "13000/tcp" is listed twice in this profile (first at line 20, rule "first")
testdata/invalid-duplicates.yaml:32:9: rule "first": duplicate rule id (first at line 10)`,
	"invalid-empty.yaml": `
testdata/invalid-empty.yaml: empty file; want a mapping with keys profile and rules`,
	"invalid-enums.yaml": `
testdata/invalid-enums.yaml:11:15: rule "enums": category "updates" is unknown; want one of update, ksn-telemetry, activation, certificate, management, portal, brand, network, fallback-dns, country
testdata/invalid-enums.yaml:12:15: rule "enums": severity "High" is unknown; want one of info, low, medium, high, critical
testdata/invalid-enums.yaml:13:17: rule "enums": confidence "official-ish" is unknown; want one of official, community, unverified
testdata/invalid-enums.yaml:14:19: rule "enums": source "K9" is not defined in profile sources
testdata/invalid-enums.yaml:14:23: rule "enums": source "K1" is listed twice`,
	"invalid-ja4.yaml": `
testdata/invalid-ja4.yaml:20:11: rule "ja4": ja4 "t13d1516h2_8DAAF6152771_e5627efa2ab1": section b "8DAAF6152771": must be lower-case
testdata/invalid-ja4.yaml:21:11: rule "ja4": ja4 "t13d1516h2_8daaf6152771": must be three sections a_b_c, as in "t13d1516h2_8daaf6152771_e5627efa2ab1"
testdata/invalid-ja4.yaml:22:11: rule "ja4": ja4 "t13d1516h2_002f,0035_0005,000a": raw (ja4_r) or original (ja4_o) forms are not supported; write the hashed JA4, as in "t13d1516h2_8daaf6152771_e5627efa2ab1"
testdata/invalid-ja4.yaml:23:11: rule "ja4": ja4 "*_*_*": matches every fingerprint
testdata/invalid-ja4.yaml:24:11: rule "ja4": ja4 "t13d15*_8daaf6152771_e5627efa2ab1": '*' stands only for a whole section, as in "t13d1516h2_*_*"
testdata/invalid-ja4.yaml:25:11: rule "ja4": ja4 "x13d1516h2_8daaf6152771_e5627efa2ab1": section a "x13d1516h2": transport 'x' must be t (TCP), q (QUIC) or d (DTLS)
testdata/invalid-ja4.yaml:26:11: rule "ja4": ja4 "t14d1516h2_8daaf6152771_e5627efa2ab1": section a "t14d1516h2": version "14" is unknown; want one of 13, 12, 11, 10, s3, s2, d1, d2, d3, 00
testdata/invalid-ja4.yaml:27:11: rule "ja4": ja4 "t13x1516h2_8daaf6152771_e5627efa2ab1": section a "t13x1516h2": SNI mark 'x' must be d (SNI present) or i
testdata/invalid-ja4.yaml:28:11: rule "ja4": ja4 "t13d15a6h2_8daaf6152771_e5627efa2ab1": section a "t13d15a6h2": cipher and extension counts must be two digits each
testdata/invalid-ja4.yaml:29:11: rule "ja4": ja4 "t13d1516h._8daaf6152771_e5627efa2ab1": section a "t13d1516h.": ALPN character '.' must be a letter or a digit
testdata/invalid-ja4.yaml:30:11: rule "ja4": ja4 "t13d1516h2_8daaf615277_e5627efa2ab1": section b "8daaf615277": must be 12 hexadecimal digits
testdata/invalid-ja4.yaml:31:11: rule "ja4": ja4 "t13d1516_8daaf6152771_e5627efa2ab1": section a "t13d1516": must be 10 characters: transport, version, SNI, cipher and extension counts, ALPN
testdata/invalid-ja4.yaml:32:11: rule "ja4": ja4 "t13d1516h2_8daaf6152771_e5627efa2ab1" is listed twice in this profile (first at line 17)`,
	"invalid-keys.yaml": `
testdata/invalid-keys.yaml:6:3: unknown key "homepage" in profile; want one of id, name, version, last_reviewed, description, sources
testdata/invalid-keys.yaml:8:76: profile: source "K1": unknown key "note" in source; want one of title, url
testdata/invalid-keys.yaml:16:5: rule "keys": unknown key "enabled" in rule; want one of id, name, category, severity, confidence, sources, note, match
testdata/invalid-keys.yaml:18:7: rule "keys": unknown key "domain" in match; did you mean "domains"?
testdata/invalid-keys.yaml:19:7: rule "keys": unknown key "asn" in match; did you mean "asns"?
testdata/invalid-keys.yaml:20:7: rule "keys": match key "ja4s" is reserved for a later version of the format and not supported yet
testdata/invalid-keys.yaml:21:7: rule "keys": unknown key "user_agent" in match; did you mean "user_agents"?
testdata/invalid-keys.yaml:23:7: rule "keys": duplicate key "domains" (first at line 22)
testdata/invalid-keys.yaml:24:1: unknown key "extra" in the file; want one of profile, rules`,
	"invalid-missing.yaml": `
testdata/invalid-missing.yaml:2:3: missing required key "id" in profile
testdata/invalid-missing.yaml:2:3: missing required key "version" in profile
testdata/invalid-missing.yaml:2:3: missing required key "last_reviewed" in profile
testdata/invalid-missing.yaml:4:9: profile: source "K1": missing required key "url" in source
testdata/invalid-missing.yaml:6:5: rule "missing": missing required key "name" in rule
testdata/invalid-missing.yaml:6:5: rule "missing": missing required key "category" in rule
testdata/invalid-missing.yaml:6:5: rule "missing": missing required key "severity" in rule
testdata/invalid-missing.yaml:6:5: rule "missing": missing required key "confidence" in rule
testdata/invalid-missing.yaml:6:5: rule "missing": missing required key "sources" in rule
testdata/invalid-missing.yaml:7:12: rule "missing": match must list at least one indicator
testdata/invalid-missing.yaml:8:5: rule #2: missing required key "id" in rule`,
	"invalid-names.yaml": `
testdata/invalid-names.yaml:17:40: rule "names": name "cm.k.kaspersky-labs.com ": invalid character ' ' in label "com "
testdata/invalid-names.yaml:17:82: rule "names": name "": must not be empty
testdata/invalid-names.yaml:18:17: rule "names": domain "МЮНХЕН.рф": not a valid internationalised name (IDNA2008): disallowed rune U+041C; did you mean "мюнхен.рф"?
testdata/invalid-names.yaml:18:30: rule "names": domain "xn--zz.de": not a valid A-label: invalid label "zz"
testdata/invalid-names.yaml:18:57: rule "names": domain "xn--mnchen-3ya.de" is listed twice in this profile (first at line 18)
testdata/invalid-names.yaml:18:78: rule "names": domain "bad_label.рф": not a valid internationalised name (IDNA2008): disallowed rune U+005F`,
	"invalid-not-mapping.yaml": `
testdata/invalid-not-mapping.yaml:1:1: the file must be a mapping, got a list`,
	"invalid-patterns.yaml": `
testdata/invalid-patterns.yaml:19:11: rule "patterns": pattern "ksn.kaspersky-labs.com": must contain one '*' (use names for exact names)
testdata/invalid-patterns.yaml:20:11: rule "patterns": pattern "ksn-*-*.kaspersky-labs.com": must contain exactly one '*'
testdata/invalid-patterns.yaml:21:11: rule "patterns": pattern "ksn.*.kaspersky-labs.com": '*' is allowed only in the leftmost label
testdata/invalid-patterns.yaml:22:11: rule "patterns": pattern "ksn-*": must have a fixed name after the '*' label, as in "ksn-*.example.com"
testdata/invalid-patterns.yaml:23:11: rule "patterns": pattern "*.com": fixed part "com": must have at least two labels
testdata/invalid-patterns.yaml:24:11: rule "patterns": pattern "KSN-*.kaspersky-labs.com": must be lower-case
testdata/invalid-patterns.yaml:25:11: rule "patterns": pattern "-*.kaspersky-labs.com": label "-*" must not start or end with '-'
testdata/invalid-patterns.yaml:26:11: rule "patterns": pattern "ksn-*.Kaspersky-labs.com": must be lower-case`,
	"invalid-ports.yaml": `
testdata/invalid-ports.yaml:19:11: rule "ports": port "70000/tcp": port 70000 is out of range 1-65535
testdata/invalid-ports.yaml:20:11: rule "ports": port "0/udp": port 0 is out of range 1-65535
testdata/invalid-ports.yaml:21:11: rule "ports": port "13000/sctp": unknown protocol "sctp"; want tcp or udp
testdata/invalid-ports.yaml:22:11: rule "ports": ports: each item must be a string, got a number (13000)
testdata/invalid-ports.yaml:23:11: rule "ports": port "27299-27200/tcp": range is reversed
testdata/invalid-ports.yaml:24:11: rule "ports": port "13000-13000/udp": single port; write "13000/udp"
testdata/invalid-ports.yaml:25:11: rule "ports": port "013000/tcp": port "013000" has leading zeros
testdata/invalid-ports.yaml:26:11: rule "ports": port "13000/TCP": unknown protocol "TCP"; want tcp or udp
testdata/invalid-ports.yaml:27:11: rule "ports": ports: each item must be a string, got a mapping`,
	"invalid-profile.yaml": `
testdata/invalid-profile.yaml:2:7: profile: id "Kaspersky_Lab" must match [a-z0-9-]+
testdata/invalid-profile.yaml:3:9: profile: name must not be empty
testdata/invalid-profile.yaml:5:18: profile: last_reviewed "28.11.2026" must be a date YYYY-MM-DD
testdata/invalid-profile.yaml:7:12: profile: sources must not be empty
testdata/invalid-profile.yaml:8:8: rules must not be empty`,
	"invalid-syntax.yaml": `
testdata/invalid-syntax.yaml:4: invalid YAML: mapping values are not allowed in this context`,
	"invalid-too-many.yaml": `
testdata/invalid-too-many.yaml:18:11: rule "many": domain "Host1.kaspersky.com": must be lower-case
testdata/invalid-too-many.yaml:19:11: rule "many": domain "Host2.kaspersky.com": must be lower-case
testdata/invalid-too-many.yaml:20:11: rule "many": domain "Host3.kaspersky.com": must be lower-case
testdata/invalid-too-many.yaml:21:11: rule "many": domain "Host4.kaspersky.com": must be lower-case
testdata/invalid-too-many.yaml:22:11: rule "many": domain "Host5.kaspersky.com": must be lower-case
testdata/invalid-too-many.yaml:23:11: rule "many": domain "Host6.kaspersky.com": must be lower-case
testdata/invalid-too-many.yaml:24:11: rule "many": domain "Host7.kaspersky.com": must be lower-case
testdata/invalid-too-many.yaml:25:11: rule "many": domain "Host8.kaspersky.com": must be lower-case
testdata/invalid-too-many.yaml:26:11: rule "many": domain "Host9.kaspersky.com": must be lower-case
testdata/invalid-too-many.yaml:27:11: rule "many": domain "Host10.kaspersky.com": must be lower-case
testdata/invalid-too-many.yaml:28:11: rule "many": domain "Host11.kaspersky.com": must be lower-case
testdata/invalid-too-many.yaml:29:11: rule "many": domain "Host12.kaspersky.com": must be lower-case
testdata/invalid-too-many.yaml:30:11: rule "many": domain "Host13.kaspersky.com": must be lower-case
testdata/invalid-too-many.yaml:31:11: rule "many": domain "Host14.kaspersky.com": must be lower-case
testdata/invalid-too-many.yaml:32:11: rule "many": domain "Host15.kaspersky.com": must be lower-case
testdata/invalid-too-many.yaml:33:11: rule "many": domain "Host16.kaspersky.com": must be lower-case
testdata/invalid-too-many.yaml:34:11: rule "many": domain "Host17.kaspersky.com": must be lower-case
testdata/invalid-too-many.yaml:35:11: rule "many": domain "Host18.kaspersky.com": must be lower-case
testdata/invalid-too-many.yaml:36:11: rule "many": domain "Host19.kaspersky.com": must be lower-case
testdata/invalid-too-many.yaml:37:11: rule "many": domain "Host20.kaspersky.com": must be lower-case
testdata/invalid-too-many.yaml: too many errors; 5 more not shown`,
	"invalid-two-documents.yaml": `
testdata/invalid-two-documents.yaml:4:1: only one YAML document (one profile) per file`,
	"invalid-types.yaml": `
testdata/invalid-types.yaml:3:9: profile: name must be a string, got a list
testdata/invalid-types.yaml:4:12: profile: version must be a string, got a number (1.0)
testdata/invalid-types.yaml:5:18: profile: last_reviewed "yesterday" must be a date YYYY-MM-DD
testdata/invalid-types.yaml:7:41: profile: source "K1": url "ftp://support.kaspersky.com/x" must be an absolute http or https URL
testdata/invalid-types.yaml:8:9: profile: source "K2": source must be a mapping, got a string
testdata/invalid-types.yaml:13:15: rule "types": severity must be a string, got a number (4)
testdata/invalid-types.yaml:15:14: rule "types": sources must be a list, got a string
testdata/invalid-types.yaml:16:10: rule "types": note must be a string, got nothing
testdata/invalid-types.yaml:18:16: rule "types": domains must be a list, got a mapping
testdata/invalid-types.yaml:19:14: rule "types": names must not be empty
testdata/invalid-types.yaml:20:31: rule "types": cidrs: each item must be a string, got a number (13)
testdata/invalid-types.yaml:20:35: rule "types": cidrs: each item must be a string, got nothing
testdata/invalid-types.yaml:21:5: rule #2: must be a mapping, got a string`,
	"invalid-user-agents.yaml": `
testdata/invalid-user-agents.yaml:19:11: rule "user-agents": user_agent "kasperskylab*" is listed twice in this profile (first at line 17)
testdata/invalid-user-agents.yaml:20:11: rule "user-agents": user_agent "*": matches too much: at least 4 characters besides '*'
testdata/invalid-user-agents.yaml:21:11: rule "user-agents": user_agent "a*b*c": matches too much: at least 4 characters besides '*'
testdata/invalid-user-agents.yaml:22:11: rule "user-agents": user_agent "Kaspersky**Lab": must not contain "**"; one '*' matches any run
testdata/invalid-user-agents.yaml:23:11: rule "user-agents": user_agent " Kaspersky": must not start or end with a space
testdata/invalid-user-agents.yaml:24:11: rule "user-agents": user_agent "Kasperskyé": invalid character 'é'; patterns are printable ASCII (the sensor escapes other bytes as \xHH)
testdata/invalid-user-agents.yaml:25:11: rule "user-agents": user_agent "Kaspersky\tLab": invalid character '\t'; patterns are printable ASCII (the sensor escapes other bytes as \xHH)
testdata/invalid-user-agents.yaml:26:11: rule "user-agents": user_agent "": must not be empty
testdata/invalid-user-agents.yaml:27:11: rule "user-agents": user_agent "KasperskyLabKasperskyLabKasperskyLabKasperskyLabKasperskyLabKasperskyLabKasperskyLabKasperskyLabKasperskyLabKasperskyLabKasperskyLabKasperskyLabKasperskyLabKasperskyLabKasperskyLabKasperskyLabKasperskyLabKasperskyLabKasperskyLabKasperskyLabKasperskyLabKasperskyLabKasperskyLabKasperskyLab*": must be at most 256 characters`,
}

func TestParseInvalid(t *testing.T) {
	files, err := filepath.Glob("testdata/invalid-*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != len(invalidFiles) {
		t.Errorf("%d testdata/invalid-*.yaml files, %d expectations: every file needs one", len(files), len(invalidFiles))
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			want, ok := invalidFiles[filepath.Base(f)]
			if !ok {
				t.Fatalf("no expected error for %s", f)
			}
			want = strings.TrimPrefix(want, "\n")
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			prof, rules, err := Parse(f, data)
			if err == nil {
				t.Fatalf("Parse succeeded, want error:\n%s", want)
			}
			if prof != nil || rules != nil {
				t.Errorf("Parse returned values with an error")
			}
			if got := err.Error(); got != want {
				t.Errorf("Parse error:\n%s\nwant:\n%s", got, want)
			}
			var pe *Error
			if !errors.As(err, &pe) || pe.File != f {
				t.Errorf("error is not an *Error for %s: %#v", f, pe)
			}
			if n := strings.Count(err.Error(), "\n") + 1; n > maxErrors+1 {
				t.Errorf("%d errors reported, want at most %d", n, maxErrors+1)
			}
			// Load reports the same problems.
			if _, lerr := Load([]string{f}, false); lerr == nil || lerr.Error() != want {
				t.Errorf("Load error:\n%v\nwant:\n%s", lerr, want)
			}
		})
	}
}

// TestParseBriefExample pins the error shape quoted in the design brief.
func TestParseBriefExample(t *testing.T) {
	src := `profile:
  id: x
  name: X
  version: "1"
  last_reviewed: 2026-11-28
  sources: {K1: {title: t, url: "https://example.com/"}}
rules:
  - id: kaspersky-update
    name: Update
    category: update
    severity: high
    confidence: official
    sources: [K1]
    match: {domains: [Upd.kaspersky.com]}
`
	_, _, err := Parse("rules/x.yaml", []byte(src))
	want := `rules/x.yaml:14:23: rule "kaspersky-update": domain "Upd.kaspersky.com": must be lower-case`
	if err == nil || err.Error() != want {
		t.Errorf("got %v, want %s", err, want)
	}
}

func TestParseValid(t *testing.T) {
	data, err := os.ReadFile("testdata/valid-example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	prof, rules, err := Parse("testdata/valid-example.yaml", data)
	if err != nil {
		t.Fatal(err)
	}
	if prof.ID != "example-vendor" || prof.Name != "Example Vendor" || prof.Version != "1" ||
		prof.File != "testdata/valid-example.yaml" || !prof.LastReviewed.Equal(time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("profile = %+v", prof)
	}
	if got := prof.Sources["E1"]; got.Title != "Example vendor network table" || got.URL != "https://example.com/network" {
		t.Errorf("source E1 = %+v", got)
	}
	if len(rules) != 3 {
		t.Fatalf("%d rules, want 3", len(rules))
	}
	r := rules[2]
	if r.ID != "example-net" || r.Profile != prof || r.Category != CategoryNetwork || r.Severity != SeverityLow ||
		r.Confidence != ConfidenceCommunity || len(r.Sources) != 1 || r.Match.Len() != 7 {
		t.Errorf("rule = %+v", r)
	}
	if got := r.Match.Ports[1].String(); got != "13000-13010/tcp" {
		t.Errorf("port = %s", got)
	}
	if got := rules[1].Note; !strings.HasPrefix(got, "Overlaps") {
		t.Errorf("note = %q", got)
	}
}

func TestLoadErrors(t *testing.T) {
	// Positions inside the built-in profile move when it is edited.
	b := builtin(t)
	bp, br := b.Profiles()[0], b.Rules()[0]
	if bp.ID != "kaspersky" || br.ID != "kaspersky-update" {
		t.Fatalf("unexpected first built-in profile/rule: %s/%s", bp.ID, br.ID)
	}
	tests := []struct {
		paths   []string
		builtin bool
		want    string
	}{
		{[]string{"testdata/dup-profile.yaml"}, true,
			fmt.Sprintf(`testdata/dup-profile.yaml:2:7: profile "kaspersky": duplicate profile id (first in builtin:kaspersky.yaml:%d:7)`, bp.line)},
		{[]string{"testdata/dup-rule.yaml"}, true,
			fmt.Sprintf(`testdata/dup-rule.yaml:9:9: rule "kaspersky-update": duplicate rule id (first in builtin:kaspersky.yaml:%d:9)`, br.line)},
		{[]string{"testdata/valid-example.yaml", "testdata/valid-example.yaml"}, false,
			`testdata/valid-example.yaml:3:7: profile "example-vendor": duplicate profile id (first in testdata/valid-example.yaml:3:7)`},
		{[]string{"testdata/no-such-file.yaml"}, false,
			`open testdata/no-such-file.yaml: no such file or directory`},
		{[]string{"testdata/no-such-file.yaml", "testdata/invalid-empty.yaml"}, false,
			"open testdata/no-such-file.yaml: no such file or directory\n" +
				"testdata/invalid-empty.yaml: empty file; want a mapping with keys profile and rules"},
	}
	for _, tt := range tests {
		_, err := Load(tt.paths, tt.builtin)
		if err == nil || err.Error() != tt.want {
			t.Errorf("Load(%q, %v) error:\n%v\nwant:\n%s", tt.paths, tt.builtin, err, tt.want)
		}
	}
}

func TestLoadOK(t *testing.T) {
	s, err := Load([]string{"testdata/valid-example.yaml", "testdata/dup-rule.yaml"}, false)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, p := range s.Profiles() {
		ids = append(ids, p.ID)
	}
	if strings.Join(ids, ",") != "example-vendor,local" {
		t.Errorf("profiles = %v", ids)
	}
	if n := len(s.Rules()); n != 4 {
		t.Errorf("%d rules, want 4", n)
	}
}

// TestCompileHandBuilt checks that Compile re-validates rules that did not
// come from Parse.
func TestCompileHandBuilt(t *testing.T) {
	p := &Profile{ID: "hand", File: "hand.yaml", Sources: map[string]Source{"S": {"t", "https://example.com/"}}}
	good := &Rule{ID: "good", Profile: p, Category: CategoryBrand, Severity: SeverityLow,
		Confidence: ConfidenceCommunity, Sources: []string{"S"}, Match: Match{Domains: []string{"example.com"}}}
	s, err := Compile(ParsedFile{p, []*Rule{good}})
	if err != nil {
		t.Fatal(err)
	}
	if h := s.MatchName("www.example.com", nil); len(h) != 1 || h[0].Rule != good {
		t.Errorf("hits = %v", h)
	}

	bad := &Rule{ID: "bad", Profile: p, Category: "nope", Severity: SeverityLow,
		Confidence: ConfidenceCommunity, Sources: []string{"S"}, Match: Match{Domains: []string{"Example.com"}}}
	bad2 := &Rule{ID: "bad2", Profile: p, Category: CategoryBrand, Severity: SeverityLow,
		Confidence: ConfidenceCommunity, Sources: []string{"X"}, Match: Match{Names: []string{"a.example.com", "a.example.com"}}}
	_, err = Compile(ParsedFile{p, []*Rule{bad, bad2}}, ParsedFile{})
	want := `hand.yaml: rule "bad": category "nope" is unknown
hand.yaml: rule "bad": domain "Example.com": must be lower-case
hand.yaml: rule "bad2": source "X" is not defined in profile sources
hand.yaml: rule "bad2": name "a.example.com" is listed twice in this profile
rules: compile: file without a profile`
	if err == nil || err.Error() != want {
		t.Errorf("Compile error:\n%v\nwant:\n%s", err, want)
	}
}

func TestErrorFormat(t *testing.T) {
	tests := []struct {
		e    Error
		want string
	}{
		{Error{"a.yaml", 3, 7, "bad"}, "a.yaml:3:7: bad"},
		{Error{"a.yaml", 3, 0, "bad"}, "a.yaml:3: bad"},
		{Error{"a.yaml", 0, 0, "bad"}, "a.yaml: bad"},
	}
	for _, tt := range tests {
		if got := tt.e.Error(); got != tt.want {
			t.Errorf("got %q, want %q", got, tt.want)
		}
	}
}
