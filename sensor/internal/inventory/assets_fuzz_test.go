package inventory

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// fuzzAssetsName is the file name FuzzLoadAssets gives ReadAssets.
const fuzzAssetsName = "etc/phonehome/assets.csv"

// assetErrLine matches the start of every error of ReadAssets: the file
// name and a line number.
var assetErrLine = regexp.MustCompile(`^` + regexp.QuoteMeta(fuzzAssetsName) + `:([0-9]+):`)

// macKey is how Assets keys hosts by MAC: as the sensor formats them.
var macKey = regexp.MustCompile(`^[0-9A-F]{2}(-[0-9A-F]{2}){5}$`)

// FuzzLoadAssets runs the asset file parser (ReadAssets, which LoadAssets
// calls on the opened file) over arbitrary bytes. Beyond not panicking:
//   - an error starts with "file:line:", the line within the input;
//   - on success every host is found by Lookup under its key, addresses
//     are unmapped, MACs are keyed as the sensor formats them, fields are
//     trimmed, deadlines are UTC, there are no more hosts than lines;
//   - writing the hosts back as an asset file and reading that gives the
//     same hosts.
//
// The seed corpus is testdata/fuzz/FuzzLoadAssets; the files named after
// assetFuzzSeeds are written by TestAssetFuzzSeeds with
// PHONEHOME_WRITE_FUZZ_SEEDS=1.
func FuzzLoadAssets(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := ReadAssets(fuzzAssetsName, bytes.NewReader(b))
		if err != nil {
			checkAssetError(t, b, err)
			return
		}
		checkAssets(t, b, a)

		// Write the hosts back, one per line, and read them again.
		var buf bytes.Buffer
		w := csv.NewWriter(&buf)
		row := func(key string, as Asset) bool {
			d := ""
			if !as.Deadline.IsZero() {
				if y := as.Deadline.Year(); y < 0 || y > 9999 {
					return false // a +hh:mm offset took the date out of RFC 3339
				}
				d = as.Deadline.Format(time.RFC3339Nano)
			}
			if err := w.Write([]string{key, as.Hostname, as.Owner, as.Site, d}); err != nil {
				t.Fatal(err)
			}
			return true
		}
		for ip, as := range a.byIP {
			if !row(ip.String(), as) {
				return
			}
		}
		for mac, as := range a.byMAC {
			if !row(mac, as) {
				return
			}
		}
		w.Flush()
		again, err := ReadAssets(fuzzAssetsName, &buf)
		if err != nil {
			t.Fatalf("hosts written back do not load: %v", err)
		}
		if !maps.EqualFunc(a.byIP, again.byIP, sameAsset) || !maps.EqualFunc(a.byMAC, again.byMAC, sameAsset) {
			t.Fatalf("hosts written back load differently:\n%v %v\n%v %v", a.byIP, a.byMAC, again.byIP, again.byMAC)
		}
	})
}

func sameAsset(a, b Asset) bool {
	return a.Hostname == b.Hostname && a.Owner == b.Owner && a.Site == b.Site && a.Deadline.Equal(b.Deadline)
}

// checkAssetError checks that err names the file and a line of b.
func checkAssetError(t *testing.T, b []byte, err error) {
	t.Helper()
	m := assetErrLine.FindStringSubmatch(err.Error())
	if m == nil {
		t.Fatalf("error does not start with %q and a line: %v", fuzzAssetsName+":", err)
	}
	line, perr := strconv.Atoi(m[1])
	if lines := bytes.Count(b, []byte("\n")) + 1; perr != nil || line < 1 || line > lines {
		t.Fatalf("error names line %s of %d: %v", m[1], lines, err)
	}
}

// checkAssets checks the hosts loaded from b.
func checkAssets(t *testing.T, b []byte, a *Assets) {
	t.Helper()
	if n, lines := a.Len(), bytes.Count(b, []byte("\n"))+1; n > lines {
		t.Fatalf("%d hosts from %d lines", n, lines)
	}
	check := func(key string, as Asset) {
		for _, s := range []string{as.Hostname, as.Owner, as.Site} {
			if s != strings.TrimSpace(s) {
				t.Fatalf("%s: field %q not trimmed", key, s)
			}
		}
		if !as.Deadline.IsZero() && as.Deadline.Location() != time.UTC {
			t.Fatalf("%s: deadline %v not in UTC", key, as.Deadline)
		}
	}
	for ip, as := range a.byIP {
		if !ip.IsValid() || ip != ip.Unmap() {
			t.Fatalf("address key %v not valid and unmapped", ip)
		}
		check(ip.String(), as)
		if got, ok := a.Lookup(ip, ""); !ok || !sameAsset(got, as) {
			t.Fatalf("Lookup(%v) = %+v, %v", ip, got, ok)
		}
		if ip.Is4() {
			if got, ok := a.Lookup(netip.AddrFrom16(ip.As16()), ""); !ok || !sameAsset(got, as) {
				t.Fatalf("Lookup of %v mapped to IPv6 = %+v, %v", ip, got, ok)
			}
		}
	}
	for mac, as := range a.byMAC {
		if !macKey.MatchString(mac) {
			t.Fatalf("MAC key %q not as the sensor formats MACs", mac)
		}
		check(mac, as)
		if got, ok := a.Lookup(netip.Addr{}, mac); !ok || !sameAsset(got, as) {
			t.Fatalf("Lookup(%s) = %+v, %v", mac, got, ok)
		}
	}
}

// assetFuzzSeed is a named seed of FuzzLoadAssets with what loading it
// gives: hosts loaded or the start of the error.
type assetFuzzSeed struct {
	name  string
	data  string
	hosts int
	err   string
}

func assetFuzzSeeds() []assetFuzzSeed {
	const valid = `ip|mac,hostname,owner,site,removal_date
# Head office
10.20.1.15, ws-0115, alice, hq, 2018-10-01
10.20.1.16,ws-0116,bob,hq,2018-10-01T18:00:00+02:00
fd00:20::1a,v6-host
::ffff:10.20.9.9,mapped,,lab
a4:bb:6d:14:00:1a,lab-01,,lab
A4-BB-6D-14-00-1B,lab-02,carol,lab,

`
	return []assetFuzzSeed{
		{"valid", valid, 6, ""},
		{"crlf", strings.ReplaceAll(valid, "\n", "\r\n"), 6, ""},
		// Spreadsheets save UTF-8 CSV with a byte order mark: skipped.
		{"bom", "\ufeff" + valid, 6, ""},
		{"quoted", `mac,hostname,owner,site
"10.0.0.1","ws ""01"", lobby","Smith, J.",hq
10.0.0.2,"two, words",,
  "10.0.0.3",spaced,  o  , s ,2019-01-31
`, 3, ""},
		// A line break inside a quoted field is a mistake in the file.
		{"newline-in-field", "10.0.0.1,a\n10.0.0.2,\"multi\nline\",,\n", 0, fuzzAssetsName + `:2: hostname: control character "\n"`},
		{"bad-date", "10.0.0.1,a\n10.0.0.2,b,,,2018-02-30\n", 0, fuzzAssetsName + ":2: removal_date: bad date"},
		{"bad-cidr", "ip,hostname\n10.0.0.1,a\n10.20.0.0/16,office-net\n", 0, fuzzAssetsName + `:3: "10.20.0.0/16" is neither`},
		{"duplicate-mapped", "10.0.0.1,a\n::ffff:10.0.0.1,b\n", 0, fuzzAssetsName + ":2: ::ffff:10.0.0.1 listed twice"},
		{"bare-quote", "10.0.0.1,a\n10.0.0.2,b\"c\n", 0, fuzzAssetsName + ":2:11: bare \""},
		{"too-many-fields", "10.0.0.1,a,o,s,2018-01-01,extra\n", 0, fuzzAssetsName + ":1: 6 fields"},
	}
}

// TestAssetFuzzSeeds checks that the seeds of FuzzLoadAssets load as
// intended, through LoadAssets, and rewrites them under testdata/fuzz with
// PHONEHOME_WRITE_FUZZ_SEEDS=1.
func TestAssetFuzzSeeds(t *testing.T) {
	for _, s := range assetFuzzSeeds() {
		a, err := ReadAssets(fuzzAssetsName, strings.NewReader(s.data))
		switch {
		case s.err == "" && err != nil:
			t.Errorf("%s: %v", s.name, err)
		case s.err == "" && a.Len() != s.hosts:
			t.Errorf("%s: %d hosts, want %d", s.name, a.Len(), s.hosts)
		case s.hosts < 0 && err == nil:
			// Either outcome is fine; the fuzz target checks it.
		case s.err != "" && (err == nil || !strings.HasPrefix(err.Error(), s.err)):
			t.Errorf("%s: error %v, want prefix %q", s.name, err, s.err)
		}
	}

	// LoadAssets names the path it was given.
	path := filepath.Join(t.TempDir(), "assets.csv")
	if err := os.WriteFile(path, []byte("10.0.0.1,a\nnot-an-ip,b\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadAssets(path); err == nil || !strings.HasPrefix(err.Error(), path+":2: ") {
		t.Errorf("LoadAssets: %v, want prefix %q", err, path+":2: ")
	}

	if os.Getenv("PHONEHOME_WRITE_FUZZ_SEEDS") == "" {
		return
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzLoadAssets")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, s := range assetFuzzSeeds() {
		body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", s.data)
		if err := os.WriteFile(filepath.Join(dir, s.name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
