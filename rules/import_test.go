package rules

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

var importDate = time.Date(2026, 11, 28, 0, 0, 0, 0, time.UTC)

func importOpts(format string) ImportOptions {
	return ImportOptions{Format: format, ID: "feed", Name: "Test feed", Category: CategoryBrand, Severity: SeverityLow,
		Confidence: ConfidenceCommunity, SourceURL: "https://example.com/feed", Date: importDate}
}

// TestImportGolden imports every feed in testdata/import and compares the
// profile and the skipped entries with FEED.golden (-update rewrites them).
func TestImportGolden(t *testing.T) {
	formats := map[string]string{".json": FormatSTIX, ".v2fly": FormatV2fly, ".txt": FormatPlain, ".hosts": FormatHosts, ".intel": FormatZeekIntel}
	feeds, err := filepath.Glob("testdata/import/*")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, feed := range feeds {
		format, ok := formats[filepath.Ext(feed)]
		if !ok {
			continue
		}
		n++
		t.Run(filepath.Base(feed), func(t *testing.T) {
			f, err := os.Open(feed)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			res, err := Import(feed, f, importOpts(format))
			if err != nil {
				t.Fatal(err)
			}
			var got bytes.Buffer
			got.Write(res.YAML)
			fmt.Fprintf(&got, "\n# --- skipped (%d), duplicates %d, entries %d\n", len(res.Skipped), res.Duplicates, res.Entries)
			for _, e := range res.Skipped {
				fmt.Fprintf(&got, "# %s\n", e)
			}
			golden := feed + ".golden"
			if *update {
				if err := os.WriteFile(golden, got.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (go test ./rules -run TestImportGolden -update)", err)
			}
			if !bytes.Equal(got.Bytes(), want) {
				t.Errorf("import of %s differs from %s (rerun with -update if intended):\n%s", feed, golden, got.Bytes())
			}
			// What Import writes is a valid profile that Load accepts
			// next to the built-in ones.
			tmp := filepath.Join(t.TempDir(), "feed.yaml")
			if err := os.WriteFile(tmp, res.YAML, 0o644); err != nil {
				t.Fatal(err)
			}
			if _, err := Load([]string{tmp}, true); err != nil {
				t.Errorf("Load(imported profile): %v", err)
			}
		})
	}
	if n < 6 {
		t.Errorf("%d feeds in testdata/import, want at least 6", n)
	}
}

// exportable returns "kind value" for every indicator of the profile a
// format can express: domains and names (as kind), and for zeek-intel the
// prefixes too.
func exportable(s *Set, profile, format string) []string {
	var out []string
	for _, r := range s.Rules() {
		if r.Profile.ID != profile || r.Match.Combined() {
			continue
		}
		for _, d := range r.Match.Domains {
			out = append(out, KindDomain+" "+d)
		}
		for _, n := range r.Match.Names {
			out = append(out, KindName+" "+n)
		}
		if format == FormatZeekIntel {
			for _, p := range r.Match.CIDRs {
				out = append(out, KindCIDR+" "+p.String())
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// imported returns "kind value" for every indicator of an imported profile.
func imported(t *testing.T, yaml []byte) []string {
	t.Helper()
	_, rules, err := Parse("imported.yaml", yaml)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range rules {
		for _, d := range r.Match.Domains {
			out = append(out, KindDomain+" "+d)
		}
		for _, n := range r.Match.Names {
			out = append(out, KindName+" "+n)
		}
		for _, p := range r.Match.CIDRs {
			out = append(out, KindCIDR+" "+p.String())
		}
	}
	slices.Sort(out)
	return out
}

// TestImportExportRoundTrip: importing what Export wrote (zeek-intel,
// hosts) gives back every indicator the format can hold, with its kind.
// --exact changes nothing then: the export marks every name's kind.
func TestImportExportRoundTrip(t *testing.T) {
	for _, set := range []*Set{builtin(t), loadIDN(t), loadExample(t)} {
		for _, p := range set.Profiles() {
			for _, format := range []string{FormatZeekIntel, FormatHosts} {
				want := exportable(set, p.ID, format)
				if len(want) == 0 {
					continue
				}
				var buf bytes.Buffer
				if err := set.Export(&buf, ExportOptions{Format: format, Profiles: []string{p.ID}}); err != nil {
					t.Fatal(err)
				}
				for _, exact := range []bool{false, true} {
					opts := importOpts(format)
					opts.Exact = exact
					res, err := Import(p.ID+"."+format, bytes.NewReader(buf.Bytes()), opts)
					if err != nil {
						t.Fatalf("%s %s: %v", p.ID, format, err)
					}
					if got := imported(t, res.YAML); !slices.Equal(got, want) {
						t.Errorf("%s via %s (exact %v): imported\n%q\nwant\n%q", p.ID, format, exact, got, want)
					}
					if len(res.Skipped) != 0 || res.Duplicates != 0 {
						t.Errorf("%s via %s: skipped %v, %d duplicates", p.ID, format, res.Skipped, res.Duplicates)
					}
				}
			}
		}
	}
}

// TestImportKinds: names a feed does not mark become domain suffixes, or
// exact names with Exact; v2fly and "*." say it themselves.
func TestImportKinds(t *testing.T) {
	const feed = "a.example.com\n*.b.example.com\n"
	for _, exact := range []bool{false, true} {
		opts := importOpts(FormatPlain)
		opts.Exact = exact
		res, err := Import("f.txt", strings.NewReader(feed), opts)
		if err != nil {
			t.Fatal(err)
		}
		want := []string{"domain a.example.com", "domain b.example.com"}
		if exact {
			want = []string{"domain b.example.com", "name a.example.com"}
		}
		if got := imported(t, res.YAML); !slices.Equal(got, want) {
			t.Errorf("exact %v: %q, want %q", exact, got, want)
		}
	}
	opts := importOpts(FormatV2fly)
	opts.Exact = true
	res, err := Import("f.v2fly", strings.NewReader("full:a.example.com\ndomain:b.example.com\nc.example.com\n"), opts)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := imported(t, res.YAML), []string{"domain b.example.com", "domain c.example.com", "name a.example.com"}; !slices.Equal(got, want) {
		t.Errorf("v2fly: %q, want %q", got, want)
	}
}

// TestImportFailures: bad options, unreadable or empty feeds.
func TestImportFailures(t *testing.T) {
	bad := importOpts(FormatPlain)
	bad.ID, bad.Category, bad.Confidence, bad.SourceURL, bad.Severity = "Feed", "malware", "high", "ftp://x", 0
	_, err := Import("f", strings.NewReader("a.example.com"), bad)
	want := `rules: import: id "Feed" must match [a-z0-9-]+; category "malware" is unknown; want one of update, ksn-telemetry, activation, certificate, management, portal, brand, network, fallback-dns, country; severity must be one of info, low, medium, high, critical; confidence "high" is unknown; want one of official, community, unverified; source url "ftp://x" must be an absolute http or https URL`
	if err == nil || err.Error() != want {
		t.Errorf("bad options: %v\nwant %s", err, want)
	}
	res, err := Import("empty.txt", strings.NewReader("# nothing\nnot a name\n"), importOpts(FormatPlain))
	if !errors.Is(err, ErrNothingImported) || res == nil || len(res.Skipped) != 1 || res.YAML != nil {
		t.Errorf("nothing to import: %v, %+v", err, res)
	}
	if _, err := Import("x.json", strings.NewReader(`{"type": "bundle", "objects": [{"type": "indicator",`), importOpts(FormatSTIX)); err == nil ||
		!strings.HasPrefix(err.Error(), "rules: import: x.json") {
		t.Errorf("truncated JSON: %v", err)
	}
	if _, err := Import("x.json", strings.NewReader("{\n\"type\": \"bundle\",\n\"objects\": [}\n"), importOpts(FormatSTIX)); err == nil ||
		!strings.HasPrefix(err.Error(), "rules: import: x.json:3: invalid JSON") {
		t.Errorf("bad JSON: %v", err)
	}
	if _, err := Import("f", errReader{}, importOpts(FormatPlain)); err == nil || !strings.Contains(err.Error(), "reading f: boom") {
		t.Errorf("unreadable: %v", err)
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("boom") }

// TestParseSTIXPattern pins the patterns understood and the messages for
// the others.
func TestParseSTIXPattern(t *testing.T) {
	tests := []struct{ in, want string }{
		{"[domain-name:value = 'a.example.com']", "domain-name=a.example.com"},
		{"[domain-name:value='a.example.com']", "domain-name=a.example.com"},
		{"[ipv4-addr:value = '192.0.2.0/24'] OR [ipv6-addr:value = '2001:db8::1']", "ipv4-addr=192.0.2.0/24 ipv6-addr=2001:db8::1"},
		{"[domain-name:value = 'a.example.com' OR domain-name:value = 'b.example.com']", "domain-name=a.example.com domain-name=b.example.com"},
		{"[domain-name:value = 'it\\'s.example.com']", "domain-name=it's.example.com"},
		{"([domain-name:value = 'a.example.com'])", "error: want an observation in brackets (at \"([domain-name:value = 'a.examp…\")"},
		{"[domain-name:value = 'a' AND ipv4-addr:value = '1.2.3.4']", `error: only comparisons joined with OR are imported (at "AND ipv4-addr:value = '1.2.3.4…")`},
		{"[domain-name:value = 'a'] AND [ipv4-addr:value = '1.2.3.4']", `error: only observations joined with OR are imported (at "AND [ipv4-addr:value = '1.2.3.…")`},
		{"[domain-name:value = 'a'] FOLLOWEDBY [domain-name:value = 'b']", `error: only observations joined with OR are imported (at "FOLLOWEDBY [domain-name:value …")`},
		{"[domain-name:value != 'a']", `error: only '=' comparisons are imported (at "domain-name:value != 'a']")`},
		{"[domain-name:value MATCHES '^a']", `error: only '=' comparisons are imported (at "domain-name:value MATCHES '^a'…")`},
		{"[url:value = 'http://a.example.com/']", "error: url:value is not imported (only domain-name:value, ipv4-addr:value, ipv6-addr:value)"},
		{"[domain-name:resolves_to_refs[*].value = '1.2.3.4']", "error: domain-name:resolves_to_refs[*].value is not imported (only domain-name:value, ipv4-addr:value, ipv6-addr:value)"},
		{"[domain-name:value = 'a", `error: unterminated string (at "'a")`},
		{"[domain-name:value = a]", `error: want a quoted string (at "a]")`},
		{"", `error: want an observation in brackets`},
	}
	for _, tt := range tests {
		comps, prob := parseSTIXPattern(tt.in)
		got := "error: " + prob
		if prob == "" {
			var parts []string
			for _, c := range comps {
				parts = append(parts, c.object+"="+c.value)
			}
			got = strings.Join(parts, " ")
		}
		if got != tt.want {
			t.Errorf("parseSTIXPattern(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}
