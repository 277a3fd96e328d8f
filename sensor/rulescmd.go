package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/net/idna"

	"github.com/phonehome-sensor/phonehome/rules"
	"github.com/phonehome-sensor/phonehome/sensor/internal/extract"
)

// rulesIOArgs holds the flags of `rules export` and `rules import`
// (defined in main.go with the other rules subcommands).
type rulesIOArgs struct {
	format     string
	profiles   []string // export: profile ids
	files      []string // export: rules files loaded after the built-in profiles
	serial     uint32   // export: RPZ SOA serial
	input      string   // import: feed file, "-" for stdin
	id, name   string
	category   string
	severity   string
	confidence string
	sourceURL  string
	title      string
	exact      bool
	date       string // import: the profile's version and last_reviewed date, YYYY-MM-DD; "" today
}

// rulesExportCmd writes the plain rules of the built-in profiles and the
// given files in another tool's format.
func rulesExportCmd(a *rulesIOArgs, stdout io.Writer) error {
	set, err := rules.Load(a.files, true)
	if err != nil {
		return usageError{err}
	}
	serial := a.serial
	if serial == 0 && a.format == rules.FormatRPZ {
		serial = uint32(time.Now().Unix())
	}
	err = set.Export(stdout, rules.ExportOptions{Format: a.format, Profiles: a.profiles, Generator: "phonehome " + buildVersion(), Serial: serial})
	if err != nil && strings.HasPrefix(err.Error(), "rules: export: no profile") {
		return usageError{err}
	}
	return err
}

// rulesImportCmd turns a feed into a profile on stdout. Entries it cannot
// import are reported on stderr (file:line) and left out; it fails (exit
// 2) when the feed cannot be read or nothing could be imported.
func rulesImportCmd(a *rulesIOArgs, stdout, stderr io.Writer) error {
	opts := rules.ImportOptions{Format: a.format, ID: a.id, Name: a.name, Category: rules.Category(a.category),
		Confidence: a.confidence, SourceURL: a.sourceURL, SourceTitle: a.title, Exact: a.exact,
		Generator: "phonehome " + buildVersion()}
	if err := opts.Severity.UnmarshalText([]byte(a.severity)); err != nil {
		return usageError{err}
	}
	if a.date != "" {
		d, err := time.Parse(time.DateOnly, a.date)
		if err != nil {
			return usage("rules import: --date %q: want YYYY-MM-DD", a.date)
		}
		opts.Date = d
	}
	name, in := a.input, io.Reader(os.Stdin)
	if a.input == "-" || a.input == "" {
		name = "<stdin>"
	} else {
		f, err := os.Open(a.input)
		if err != nil {
			return usageError{err}
		}
		defer f.Close()
		in = f
	}
	res, err := rules.Import(name, in, opts)
	if res != nil {
		for _, e := range res.Skipped {
			fmt.Fprintln(stderr, e)
		}
		if res.SkippedHidden > 0 {
			fmt.Fprintf(stderr, "%s: %d more entries skipped\n", name, res.SkippedHidden)
		}
	}
	if err != nil {
		return usageError{err}
	}
	if _, err := stdout.Write(res.YAML); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "%s: imported %d domains, %d names, %d cidrs; %d entries skipped, %d duplicates dropped\n",
		name, res.Domains, res.Names, res.CIDRs, len(res.Skipped)+res.SkippedHidden, res.Duplicates)
	return nil
}

// testName turns a `rules test` input into the form the sensor matches:
// an internationalised name to its A-label, then lower case with
// unprintable bytes escaped, as on the wire.
func testName(in string) string {
	if a, err := idna.Lookup.ToASCII(in); err == nil && a != in && !strings.ContainsRune(in, '\\') {
		in = a
	}
	return string(extract.AppendName(nil, []byte(in)))
}

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
				input = testName(in)
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
			c.Name = testName(val)
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
