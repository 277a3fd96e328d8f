package report

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/phonehome-sensor/phonehome/rules"
	"github.com/phonehome-sensor/phonehome/sensor/internal/inventory"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

var (
	testNow      = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	testDeadline = time.Date(2024, 9, 29, 0, 0, 0, 0, time.UTC)
)

// Hostile strings, as they could reach the report from the wire or an
// asset file.
const (
	hostileScript  = "<script>alert(1)</script>"
	hostileQuoted  = `"quoted"`
	hostileFormula = `=cmd|' /C calc'!A0`
	hostileESC     = "ws-\x1b[31mred\nsecond-line"
)

var hostileLong = strings.Repeat("very-long-label-", 12) + "kaspersky.com"

func at(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

func cat(first, last string, n, out, in uint64) *inventory.Category {
	return &inventory.Category{First: at(first), Last: at(last), Count: n, Traffic: inventory.Traffic{BytesOut: out, BytesIn: in, Flows: n}}
}

// testHosts is one host per status and edge, with hostile strings.
func testHosts() []inventory.Host {
	return []inventory.Host{
		{
			IP: netip.MustParseAddr("10.0.0.5"), MAC: "00:11:22:33:44:55", Hostname: hostileScript, Owner: "Finance", Site: "hq",
			Deadline: testDeadline, Observer: "sensor-hq", FirstSeen: at("2024-08-01T08:00:00Z"), LastSeen: at("2025-03-01T09:30:00Z"), Contacts: 412,
			Categories: map[rules.Category]*inventory.Category{
				rules.CategoryUpdate:       cat("2024-08-01T08:00:00Z", "2025-03-01T09:30:00Z", 300, 120000, 48000000),
				rules.CategoryKSNTelemetry: cat("2024-08-02T10:00:00Z", "2025-02-28T17:00:00Z", 112, 900000, 30000),
			},
			Names: []string{"dnl-01.geo.kaspersky.com", "ds.kaspersky.com", hostileScript, "ksn-a-stat-geo.kaspersky-labs.com", "upd.kaspersky.com"},
			Rules: []string{"kaspersky-ksn", "kaspersky-update"}, Profiles: []string{"kaspersky"},
			Last: inventory.Evidence{Time: at("2025-03-01T09:30:00Z"), Protocol: "tls", Name: "dnl-01.geo.kaspersky.com",
				Destination: netip.MustParseAddrPort("77.74.181.10:443"), RuleID: "kaspersky-update", Reason: "sni dnl-01.geo.kaspersky.com matches *.kaspersky.com"},
			Traffic: inventory.Traffic{BytesOut: 1020000, BytesIn: 48030000, PacketsOut: 5000, PacketsIn: 40000, Flows: 412},
		},
		{
			IP: netip.MustParseAddr("10.0.0.7"), MAC: "00:11:22:33:44:77", Hostname: hostileQuoted, Owner: hostileFormula, Site: "hq",
			Deadline: testDeadline, Observer: "sensor-hq", FirstSeen: at("2024-12-01T14:00:00Z"), LastSeen: at("2025-02-27T16:45:00Z"), Contacts: 37,
			Categories: map[rules.Category]*inventory.Category{
				rules.CategoryActivation: cat("2024-12-01T14:00:00Z", "2025-02-27T16:45:00Z", 37, 4000, 8000),
			},
			Names: []string{"+1-cmd", "@sum(1+1)", "activation-v2.kaspersky.com"},
			Rules: []string{"kaspersky-activation"}, Profiles: []string{"kaspersky"},
			Last: inventory.Evidence{Time: at("2025-02-27T16:45:00Z"), Protocol: "http", Name: "@sum(1+1)",
				Destination: netip.MustParseAddrPort("[2a03:2480:8022::1]:80"), RuleID: "kaspersky-activation", Reason: hostileFormula},
			Traffic: inventory.Traffic{BytesOut: 4000, BytesIn: 8000, PacketsOut: 40, PacketsIn: 37, Flows: 37},
		},
		{
			IP: netip.MustParseAddr("10.0.0.9"), MAC: "00:11:22:33:44:99", Hostname: hostileESC, Owner: "-2+3", Site: "branch",
			Deadline: testDeadline, Observer: "sensor-branch", FirstSeen: at("2024-07-01T07:00:00Z"), LastSeen: at("2024-11-15T11:00:00Z"), Contacts: 95,
			Categories: map[rules.Category]*inventory.Category{
				rules.CategoryUpdate:      cat("2024-07-01T07:00:00Z", "2024-11-15T11:00:00Z", 90, 9000, 7000000),
				rules.CategoryCertificate: cat("2024-07-03T07:00:00Z", "2024-10-01T07:00:00Z", 5, 500, 2000),
			},
			Names: []string{"crl.kaspersky.com", "upd.kaspersky.com"},
			Rules: []string{"kaspersky-crl", "kaspersky-update"}, Profiles: []string{"kaspersky"},
			Last: inventory.Evidence{Time: at("2024-11-15T11:00:00Z"), Protocol: "dns", Name: "upd.kaspersky.com",
				Destination: netip.MustParseAddrPort("10.0.0.1:53"), RuleID: "kaspersky-update", Reason: "query " + hostileESC},
			Traffic: inventory.Traffic{BytesOut: 9500, BytesIn: 7002000, PacketsOut: 200, PacketsIn: 5000, Flows: 95},
		},
		{
			IP: netip.MustParseAddr("10.0.1.20"), Hostname: "lab-printer", Site: "branch",
			Deadline: testDeadline, Observer: "sensor-branch", FirstSeen: at("2024-06-01T00:00:00Z"), LastSeen: at("2024-09-20T23:59:00Z"), Contacts: 12,
			Categories: map[rules.Category]*inventory.Category{
				rules.CategoryBrand: cat("2024-06-01T00:00:00Z", "2024-09-20T23:59:00Z", 12, 0, 0),
			},
			Names: []string{"kaspersky.com"}, Rules: []string{"kaspersky-brand"}, Profiles: []string{"kaspersky"},
			Last: inventory.Evidence{Time: at("2024-09-20T23:59:00Z"), Protocol: "dns", Name: "kaspersky.com", RuleID: "kaspersky-brand", Reason: "query kaspersky.com"},
		},
		{
			IP: netip.MustParseAddr("192.168.1.50"), Hostname: hostileLong, Site: "lab",
			Observer: "sensor-hq", FirstSeen: at("2025-02-01T09:00:00Z"), LastSeen: at("2025-02-28T10:00:00Z"), Contacts: 20,
			Categories: map[rules.Category]*inventory.Category{
				rules.CategoryCountry: cat("2025-02-01T09:00:00Z", "2025-02-28T10:00:00Z", 20, 3000, 60000),
			},
			Names: []string{hostileLong}, NamesCut: 3, Rules: []string{"russian-hosted-country"}, Profiles: []string{"russian-hosted"},
			Last: inventory.Evidence{Time: at("2025-02-28T10:00:00Z"), Protocol: "quic", Name: hostileLong,
				Destination: netip.MustParseAddrPort("95.213.0.1:443"), RuleID: "russian-hosted-country", Reason: "destination in RU"},
			Traffic: inventory.Traffic{BytesOut: 3000, BytesIn: 60000, PacketsOut: 30, PacketsIn: 60, Flows: 20},
		},
		{
			IP: netip.MustParseAddr("fd00::1"), MAC: "02:00:00:00:00:01", Hostname: "build-01", Owner: "Engineering", Site: "lab",
			Deadline: time.Date(2025, 6, 30, 0, 0, 0, 0, time.UTC), Observer: "sensor-hq",
			FirstSeen: at("2025-01-10T12:00:00Z"), LastSeen: at("2025-02-26T12:00:00Z"), Contacts: 8,
			Categories: map[rules.Category]*inventory.Category{
				rules.CategoryManagement: cat("2025-01-10T12:00:00Z", "2025-02-26T12:00:00Z", 8, 800, 1600),
			},
			Rules: []string{"kaspersky-ksc-ports"}, Profiles: []string{"kaspersky"},
			Last: inventory.Evidence{Time: at("2025-02-26T12:00:00Z"), Protocol: "tcp",
				Destination: netip.MustParseAddrPort("[fd00::10]:13000"), RuleID: "kaspersky-ksc-ports", Reason: "port 13000/tcp"},
			Traffic: inventory.Traffic{BytesOut: 800, BytesIn: 1600, PacketsOut: 8, PacketsIn: 8, Flows: 8},
		},
	}
}

// testDaily spreads each host's contacts over the days it was active,
// deterministically.
func testDaily(hosts []inventory.Host) []inventory.DayCount {
	var out []inventory.DayCount
	for _, h := range hosts {
		for _, c := range h.SortedCategories() {
			k := h.Categories[c]
			first := k.First.UTC().Truncate(24 * time.Hour)
			last := k.Last.UTC().Truncate(24 * time.Hour)
			if first.Before(testNow.AddDate(0, -6, 0)) {
				first = testNow.AddDate(0, -6, 0).Truncate(24 * time.Hour)
			}
			i := 0
			for d := first; !d.After(last); d = d.AddDate(0, 0, 1) {
				i++
				n := uint64((i*7+len(c)*3+int(h.IP.As16()[15]))%11) / 3
				if d.Equal(last) && n == 0 {
					n = 1
				}
				if n > 0 {
					out = append(out, inventory.DayCount{IP: h.IP, Day: d, Category: c, Contacts: n})
				}
			}
		}
	}
	return out
}

func testReport(t *testing.T, o Options) *Report {
	t.Helper()
	hosts := testHosts()
	o.Now = testNow
	o.Generated = testNow.Add(5 * time.Minute)
	return Build(hosts, testDaily(hosts), o)
}

type format struct {
	name  string
	write func(*Report, *bytes.Buffer) error
}

var formats = []format{
	{"table", func(r *Report, b *bytes.Buffer) error { return r.WriteTable(b) }},
	{"csv", func(r *Report, b *bytes.Buffer) error { return r.WriteCSV(b) }},
	{"json", func(r *Report, b *bytes.Buffer) error { return r.WriteJSON(b) }},
	{"html", func(r *Report, b *bytes.Buffer) error { return r.WriteHTML(b) }},
}

func render(t *testing.T, r *Report, f format) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := f.write(r, &b); err != nil {
		t.Fatalf("%s: %v", f.name, err)
	}
	return b.Bytes()
}

func TestGolden(t *testing.T) {
	r := testReport(t, Options{Observer: "sensor-hq, sensor-branch"})
	for _, f := range formats {
		t.Run(f.name, func(t *testing.T) {
			got := render(t, r, f)
			path := filepath.Join("testdata", "report."+f.name+".golden")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s differs from %s (go test -update rewrites it); got:\n%s", f.name, path, got)
			}
		})
	}
}

func TestBuild(t *testing.T) {
	r := testReport(t, Options{})
	var order []string
	for _, h := range r.Hosts {
		order = append(order, h.IP.String()+" "+string(h.Status))
	}
	want := []string{
		"10.0.0.5 never-removed",
		"192.168.1.50 no-deadline",
		"10.0.0.7 still-phoning-home",
		"fd00::1 still-phoning-home",
		"10.0.0.9 removed",
		"10.0.1.20 removed",
	}
	if strings.Join(order, "\n") != strings.Join(want, "\n") {
		t.Errorf("hosts:\n%s\nwant (newest last contact first):\n%s", strings.Join(order, "\n"), strings.Join(want, "\n"))
	}
	wantCounts := map[Status]int{NeverRemoved: 1, StillPhoningHome: 2, Removed: 2, NoDeadline: 1}
	for s, n := range wantCounts {
		if r.Counts[s] != n {
			t.Errorf("Counts[%s] = %d, want %d", s, r.Counts[s], n)
		}
	}
	if r.Options.Quiet != DefaultQuiet || r.Options.Title != DefaultTitle {
		t.Errorf("defaults not applied: %+v", r.Options)
	}
	for i := 1; i < len(r.Daily); i++ {
		if r.Daily[i].Day.Before(r.Daily[i-1].Day) {
			t.Fatalf("Daily not ordered by day at %d", i)
		}
	}

	tests := []struct {
		name string
		o    Options
		want []string
	}{
		{"since", Options{Filter: inventory.Filter{Since: at("2025-02-27T00:00:00Z")}}, []string{"10.0.0.5", "192.168.1.50", "10.0.0.7"}},
		{"category", Options{Filter: inventory.Filter{Category: rules.CategoryUpdate}}, []string{"10.0.0.5", "10.0.0.9"}},
		{"site", Options{Filter: inventory.Filter{Site: "lab"}}, []string{"192.168.1.50", "fd00::1"}},
		{"status", Options{Status: []Status{NeverRemoved, StillPhoningHome}}, []string{"10.0.0.5", "10.0.0.7", "fd00::1"}},
		{"all filters", Options{Filter: inventory.Filter{Site: "hq", Category: rules.CategoryActivation}, Status: []Status{StillPhoningHome}}, []string{"10.0.0.7"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := testReport(t, tt.o)
			var got []string
			shown := map[netip.Addr]bool{}
			for _, h := range r.Hosts {
				got = append(got, h.IP.String())
				shown[h.IP] = true
			}
			if strings.Join(got, " ") != strings.Join(tt.want, " ") {
				t.Errorf("hosts %v, want %v", got, tt.want)
			}
			for _, d := range r.Daily {
				if !shown[d.IP] || tt.o.Filter.Category != "" && d.Category != tt.o.Filter.Category ||
					!tt.o.Filter.Since.IsZero() && d.Day.Before(tt.o.Filter.Since.Truncate(24*time.Hour)) {
					t.Errorf("daily row %+v does not pass the filter", d)
				}
			}
		})
	}
}

// TestHostileStrings checks that strings from the wire reach every format
// escaped for it, never raw.
func TestHostileStrings(t *testing.T) {
	r := testReport(t, Options{Title: "report <b>" + hostileScript, Observer: hostileESC})
	out := map[string][]byte{}
	for _, f := range formats {
		out[f.name] = render(t, r, f)
	}

	// HTML: the only <script is the page's own; text is entity-escaped;
	// no control byte passes.
	h := string(out["html"])
	if n := strings.Count(strings.ToLower(h), "<script"); n != 1 {
		t.Errorf("html: %d <script tags, want only the page's own", n)
	}
	if !strings.Contains(h, "&lt;script&gt;alert(1)&lt;/script&gt;") {
		t.Error("html: the <script> hostname is not shown escaped")
	}
	if strings.Contains(h, "<b>") {
		t.Error("html: raw <b> from the title")
	}
	if !strings.Contains(h, "&#34;quoted&#34;") {
		t.Error(`html: "quoted" is not shown escaped`)
	}
	if strings.ContainsAny(h, "\x1b\x00") {
		t.Error("html: raw ESC or NUL byte")
	}
	if !strings.Contains(h, `ws-\x1b[31mred\x0asecond-line`) {
		t.Error(`html: the ESC hostname is not shown as \x1b…`)
	}

	// Table: no ESC byte (colour off), hostile newlines do not break rows,
	// long names are cut.
	tb := string(out["table"])
	if strings.Contains(tb, "\x1b") {
		t.Error("table: raw ESC byte")
	}
	if lines := strings.Count(tb, "\n"); lines != len(r.Hosts)+3 {
		t.Errorf("table: %d lines, want %d (header, hosts, blank, summary):\n%s", lines, len(r.Hosts)+3, tb)
	}
	if strings.Contains(tb, hostileLong) || !strings.Contains(tb, "…") {
		t.Error("table: the long name is not cut")
	}
	if !strings.Contains(tb, `ws-\x1b[31mred\x0asecon…`) {
		t.Errorf("table: ESC hostname not escaped and cut:\n%s", tb)
	}

	// Table with colour: the only escape sequences are the table's own.
	r.Options.Color = true
	var colored bytes.Buffer
	if err := r.WriteTable(&colored); err != nil {
		t.Fatal(err)
	}
	rest := regexp.MustCompile(`\x1b\[(0|01|31|32|33|90)m`).ReplaceAllString(colored.String(), "")
	if strings.Contains(rest, "\x1b") {
		t.Errorf("colour table: foreign escape sequence in %q", rest)
	}
	if !strings.Contains(colored.String(), "\x1b[31mnever-removed\x1b[0m") {
		t.Error("colour table: status not coloured")
	}
	// Colour codes must not break the alignment: every row's IP column
	// starts at the same visible offset.
	col := -1
	for _, line := range strings.Split(rest, "\n")[1 : len(r.Hosts)+1] {
		i := strings.IndexAny(line, "1f")
		if col >= 0 && i != col {
			t.Errorf("colour table: misaligned row %q", line)
		}
		col = i
	}
	r.Options.Color = false

	// CSV: parses back; formula cells are prefixed; no control byte.
	c := out["csv"]
	if bytes.ContainsAny(c, "\x1b") {
		t.Error("csv: raw ESC byte")
	}
	recs, err := csv.NewReader(bytes.NewReader(c)).ReadAll()
	if err != nil {
		t.Fatalf("csv: %v", err)
	}
	if len(recs) != len(r.Hosts)+1 {
		t.Fatalf("csv: %d records, want %d", len(recs), len(r.Hosts)+1)
	}
	found := map[string]bool{}
	for _, rec := range recs {
		for _, cell := range rec {
			if cell != "" && strings.ContainsRune("=+-@\t\r", rune(cell[0])) {
				t.Errorf("csv: cell %q starts a formula", cell)
			}
			found[cell] = true
		}
	}
	for _, want := range []string{"'" + hostileFormula, "'-2+3", "'@sum(1+1)", hostileScript, hostileQuoted, `ws-\x1b[31mred\x0asecond-line`, "'+1-cmd @sum(1+1) activation-v2.kaspersky.com"} {
		if !found[want] {
			t.Errorf("csv: no cell %q", want)
		}
	}

	// JSON: HTML-escaped, and lossless.
	j := out["json"]
	if bytes.Contains(j, []byte("<")) || bytes.Contains(j, []byte(">")) || bytes.Contains(j, []byte("\x1b")) {
		t.Error("json: raw '<', '>' or ESC")
	}
	if !bytes.Contains(j, []byte(`\u003cscript\u003ealert(1)\u003c/script\u003e`)) {
		t.Error(`json: <script> not escaped as \u003c`)
	}
	var hosts []map[string]any
	if err := json.Unmarshal(j, &hosts); err != nil {
		t.Fatalf("json: %v", err)
	}
	got := map[string]bool{}
	for _, h := range hosts {
		got[h["hostname"].(string)] = true
	}
	for _, want := range []string{hostileScript, hostileQuoted, hostileESC, hostileLong} {
		if !got[want] {
			t.Errorf("json: hostname %q not round-tripped", want)
		}
	}
}

// TestJSONContract checks the fields DESIGN.md promises for
// `report --format json`.
func TestJSONContract(t *testing.T) {
	r := testReport(t, Options{})
	var b bytes.Buffer
	if err := r.WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	var hosts []map[string]any
	if err := json.Unmarshal(b.Bytes(), &hosts); err != nil {
		t.Fatal(err)
	}
	if len(hosts) != len(r.Hosts) {
		t.Fatalf("%d hosts, want %d", len(hosts), len(r.Hosts))
	}
	for _, h := range hosts {
		for _, k := range []string{"ip", "mac", "hostname", "status", "first_seen", "last_seen", "categories", "names", "bytes_out", "bytes_in",
			"deadline", "owner", "site", "contacts", "last_evidence"} {
			if _, ok := h[k]; !ok {
				t.Errorf("host %v: no %q", h["ip"], k)
			}
		}
		if !Status(h["status"].(string)).Valid() {
			t.Errorf("host %v: status %v", h["ip"], h["status"])
		}
		if _, ok := h["names"].([]any); !ok {
			t.Errorf("host %v: names is %T, want an array", h["ip"], h["names"])
		}
		cats := h["categories"].([]any)
		if len(cats) == 0 {
			t.Errorf("host %v: no categories", h["ip"])
		}
		for _, c := range cats {
			c := c.(map[string]any)
			for _, k := range []string{"name", "first", "last", "contacts", "bytes_out", "bytes_in"} {
				if _, ok := c[k]; !ok {
					t.Errorf("host %v category: no %q", h["ip"], k)
				}
			}
		}
		if ev, ok := h["last_evidence"].(map[string]any); ok {
			for _, k := range []string{"time", "protocol", "name", "destination", "rule", "reason"} {
				if _, ok := ev[k]; !ok {
					t.Errorf("host %v last_evidence: no %q", h["ip"], k)
				}
			}
		}
	}
	// An empty report is an empty array, not null.
	b.Reset()
	if err := Build(nil, nil, Options{Now: testNow}).WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(b.String()) != "[]" {
		t.Errorf("empty report: %q, want []", b.String())
	}
}

// TestHTMLSelfContained checks the page loads nothing: no external URL,
// a CSP forbidding loads, and inline blocks matching its hashes.
func TestHTMLSelfContained(t *testing.T) {
	var b bytes.Buffer
	if err := testReport(t, Options{}).WriteHTML(&b); err != nil {
		t.Fatal(err)
	}
	h := b.String()
	for _, bad := range []string{"http://", "https://", "//fonts", "@import", "url(", " src=", " href="} {
		if strings.Contains(h, bad) {
			t.Errorf("html contains %q", bad)
		}
	}
	if !strings.Contains(h, `http-equiv="Content-Security-Policy"`) || !strings.Contains(h, "default-src &#39;none&#39;") {
		t.Error("html: no CSP forbidding loads")
	}
	style := regexp.MustCompile(`(?s)<style>(.*?)</style>`).FindStringSubmatch(h)
	script := regexp.MustCompile(`(?s)<script>(.*?)</script>`).FindStringSubmatch(h)
	if style == nil || script == nil {
		t.Fatal("html: no inline style or script")
	}
	for _, s := range []string{style[1], script[1]} {
		if !strings.Contains(csp, hash(s)) {
			t.Errorf("html: CSP does not allow the inline block starting %.40q", s)
		}
	}
	if !strings.Contains(h, `<svg id="timeline"`) || strings.Count(h, "<rect ") < 10 {
		t.Error("html: no timeline")
	}
	// The empty report renders too.
	b.Reset()
	if err := Build(nil, nil, Options{Now: testNow}).WriteHTML(&b); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "No host matches.") {
		t.Error("empty html report: no empty-table note")
	}
}

func TestChartBuckets(t *testing.T) {
	day := func(s string) time.Time { return at(s + "T00:00:00Z") }
	ip := netip.MustParseAddr("10.0.0.1")
	for _, tt := range []struct {
		from, to string
		unit     string
		bars     int
	}{
		{"2025-01-01", "2025-01-01", "day", 1},
		{"2025-01-01", "2025-04-30", "day", 120},
		{"2025-01-01", "2025-05-01", "week", 18}, // Mon 2024-12-30 … Mon 2025-04-28
		{"2023-01-01", "2025-01-01", "month", 25},
	} {
		hosts := []inventory.Host{{IP: ip, Deadline: day("2025-01-15"), FirstSeen: day(tt.from), LastSeen: day(tt.to)}}
		daily := []inventory.DayCount{{IP: ip, Day: day(tt.from), Category: rules.CategoryUpdate, Contacts: 3},
			{IP: ip, Day: day(tt.to), Category: "unknown-cat", Contacts: 7}}
		c := Build(hosts, daily, Options{Now: testNow}).buildChart()
		if c == nil || c.Unit != tt.unit || len(c.Bars) != tt.bars {
			t.Errorf("%s…%s: chart %v", tt.from, tt.to, c)
			continue
		}
		if len(c.Legend) != 2 || c.Legend[1].Class != "c10" {
			t.Errorf("%s…%s: legend %+v", tt.from, tt.to, c.Legend)
		}
		top := c.YTicks[len(c.YTicks)-1]
		for _, b := range c.Bars {
			for _, s := range b.Segs {
				if s.Y < top.Y-0.01 || s.Y+s.H > c.Y1+0.01 {
					t.Errorf("%s…%s: segment %+v outside the plot", tt.from, tt.to, s)
				}
			}
		}
	}
	if c := Build(nil, nil, Options{Now: testNow}).buildChart(); c != nil {
		t.Errorf("empty chart: %+v", c)
	}
}
