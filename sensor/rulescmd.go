package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/phonehome-sensor/phonehome/rules"
	"github.com/phonehome-sensor/phonehome/sensor/internal/extract"
)

func rulesCheckCmd(a *args, stdout io.Writer) error {
	set, err := rules.Load(a.ruleFiles, true)
	if err != nil {
		return usageError{err}
	}
	fmt.Fprintf(stdout, "ok: %d profiles, %d rules\n", len(set.Profiles()), len(set.Rules()))
	return nil
}

func rulesListCmd(a *args, stdout io.Writer) error {
	set, err := loadRules(a)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PROFILE\tRULE\tCATEGORY\tSEVERITY\tCONFIDENCE\tNAME")
	for _, r := range set.Rules() {
		prof := ""
		if r.Profile != nil {
			prof = r.Profile.ID
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", prof, r.ID, r.Category, r.Severity, r.Confidence, r.Name)
	}
	return tw.Flush()
}

// testHit is one hit in `rules test` output (contract in DESIGN.md).
type testHit struct {
	Rule       string `json:"rule"`
	Profile    string `json:"profile"`
	Category   string `json:"category"`
	Severity   string `json:"severity"`
	Confidence string `json:"confidence"`
	Reason     string `json:"reason"`
}

type testResult struct {
	Input string    `json:"input"`
	Hits  []testHit `json:"hits"`
}

func rulesTestCmd(a *args, stdout io.Writer) error {
	set, err := loadRules(a)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(stdout)
	for _, in := range a.testInputs {
		var hits []rules.Hit
		input := in
		switch c, isContact, err := parseTestContact(in); {
		case err != nil:
			return usageError{err}
		case isContact:
			hits = set.Match(&c, nil)
		default:
			if ip, err := netip.ParseAddr(in); err == nil {
				input = ip.Unmap().String()
				hits = set.MatchAddr(ip.Unmap(), nil)
			} else {
				input = string(extract.AppendName(nil, []byte(in)))
				hits = set.MatchName(input, nil)
			}
		}
		res := testResult{Input: input, Hits: []testHit{}}
		for _, h := range hits {
			th := testHit{Rule: h.Rule.ID, Category: string(h.Rule.Category), Severity: h.Rule.Severity.String(), Confidence: h.Rule.Confidence, Reason: h.Reason()}
			if h.Rule.Profile != nil {
				th.Profile = h.Rule.Profile.ID
			}
			res.Hits = append(res.Hits, th)
		}
		if a.testJSON {
			if err := enc.Encode(res); err != nil {
				return err
			}
			continue
		}
		if len(res.Hits) == 0 {
			fmt.Fprintf(stdout, "%s: no match\n", res.Input)
		}
		for _, h := range res.Hits {
			fmt.Fprintf(stdout, "%s: %s/%s (%s, %s): %s\n", res.Input, h.Profile, h.Rule, h.Category, h.Severity, h.Reason)
		}
	}
	return nil
}

// parseTestContact reads a `rules test` input that describes a whole
// contact, matched with Set.Match (every rule kind, combined rules too):
// "AS200107" (an AS number alone), or comma-separated key=value pairs with
// the keys name, addr, port (PORT/PROTO, e.g. 53/udp), country, asn
// (AS200107 or 200107), ja4 and ua; ua must come last, its value runs to
// the end of the input. Other inputs (names, addresses) are not contacts.
func parseTestContact(in string) (rules.Contact, bool, error) {
	var c rules.Contact
	if num, ok := strings.CutPrefix(in, "AS"); ok {
		if v, err := strconv.ParseUint(num, 10, 32); err == nil {
			c.ASN = uint32(v)
			return c, true, nil
		}
	}
	if !strings.Contains(in, "=") {
		return c, false, nil
	}
	bad := func(format string, args ...any) (rules.Contact, bool, error) {
		return c, true, fmt.Errorf("rules test %q: %s", in, fmt.Sprintf(format, args...))
	}
	for rest := in; rest != ""; {
		var field string
		if strings.HasPrefix(rest, "ua=") {
			field, rest = rest, ""
		} else {
			field, rest, _ = strings.Cut(rest, ",")
		}
		key, val, ok := strings.Cut(field, "=")
		if !ok || val == "" {
			return bad("%q: want key=value", field)
		}
		switch key {
		case "name":
			c.Name = string(extract.AppendName(nil, []byte(val)))
		case "addr":
			ip, err := netip.ParseAddr(val)
			if err != nil {
				return bad("addr %q: not an address", val)
			}
			c.Addr = ip.Unmap()
		case "port":
			num, proto, _ := strings.Cut(val, "/")
			p, err := strconv.ParseUint(num, 10, 16)
			switch {
			case err != nil || p == 0:
				return bad("port %q: want PORT/PROTO, e.g. 53/udp", val)
			case proto == "tcp":
				c.Proto = rules.ProtoTCP
			case proto == "udp":
				c.Proto = rules.ProtoUDP
			default:
				return bad("port %q: want PORT/PROTO with PROTO tcp or udp", val)
			}
			c.Port = uint16(p)
		case "country":
			c.Country = strings.ToUpper(val)
		case "asn":
			v, err := strconv.ParseUint(strings.TrimPrefix(strings.ToUpper(val), "AS"), 10, 32)
			if err != nil {
				return bad("asn %q: want AS200107 or 200107", val)
			}
			c.ASN = uint32(v)
		case "ja4":
			c.JA4 = val
		case "ua":
			c.UserAgent = val
		default:
			return bad("unknown key %q; want name, addr, port, country, asn, ja4, ua", key)
		}
	}
	return c, true, nil
}
