package main

import (
	"bytes"
	"encoding/binary"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/phonehome-sensor/phonehome/sensor/internal/testcap"
)

var update = flag.Bool("update", false, "rewrite golden files")

const demo = "testdata/demo.pcap"

func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(args, &out, &errb)
	return code, out.String(), errb.String()
}

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if string(want) != got {
		t.Errorf("%s differs from the output (go test -update rewrites it):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

// elapsed hides the wall-clock part of the summary.
var elapsed = regexp.MustCompile(`read in [0-9.]+[µnm]?s`)

func TestDemoRunGolden(t *testing.T) {
	code, stdout, stderr := runCLI(t, "run", "-r", demo, "--observer.name", "sensor-test", "--log.level", "warn")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	stdout = strings.ReplaceAll(stdout, `"version":"`+buildVersion()+`"`, `"version":"test"`)
	golden(t, "demo.alerts.golden", stdout)
	golden(t, "demo.summary.golden", elapsed.ReplaceAllString(stderr, "read in X"))
	// The three hosts of sensor/testdata/README.md, and no other.
	for _, h := range []string{"10.20.1.15", "10.20.7.42", "fd00:20::1a"} {
		if !strings.Contains(stderr, "\n"+h+" ") {
			t.Errorf("host %s missing from the summary", h)
		}
	}
	if n := strings.Count(stderr, "\n10.") + strings.Count(stderr, "\nfd00"); n != 3 {
		t.Errorf("%d hosts listed, want 3", n)
	}
	for _, decoy := range []string{"notkaspersky.com", "kaspersky.com.example", "mykaspersky-labs.com", "kasperskyupdate.com"} {
		if strings.Contains(stdout, decoy) {
			t.Errorf("alert mentions lookalike %s", decoy)
		}
	}
}

// TestOutputIsEscaped: the demo carries a DNS name with control bytes and
// a quote, and a User-Agent with a terminal escape and </script>; no raw
// byte of them may reach the output.
func TestOutputIsEscaped(t *testing.T) {
	code, stdout, stderr := runCLI(t, "inspect", "-r", demo)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for i := 0; i < len(stdout); i++ {
		if c := stdout[i]; (c < 0x20 && c != '\n') || c >= 0x7f {
			t.Fatalf("raw byte %#x at offset %d: %q", c, i, stdout[max(0, i-40):min(len(stdout), i+40)])
		}
	}
	for _, want := range []string{`ev\\001il\\\"\\010.example`, `\\x1b[31m`} {
		if !strings.Contains(stdout, want) {
			t.Errorf("escaped form %s not found in inspect output", want)
		}
	}
	if strings.Contains(stdout, "</script>") {
		t.Error("</script> passed through unescaped")
	}
}

func TestBadInputExit2(t *testing.T) {
	dir := t.TempDir()
	text := filepath.Join(dir, "notes.txt")
	os.WriteFile(text, []byte("this is not a capture\n"), 0o644)
	empty := filepath.Join(dir, "empty.pcap")
	os.WriteFile(empty, nil, 0o644)
	garbage := filepath.Join(dir, "garbage.bin")
	os.WriteFile(garbage, bytes.Repeat([]byte("phonehome\x00\xff"), 1000), 0o644)
	mmdb, err := os.ReadFile("../geo/data/geo-whois-asn-country.mmdb")
	if err != nil {
		t.Fatal(err)
	}
	cutDB := filepath.Join(dir, "cut.mmdb")
	os.WriteFile(cutDB, mmdb[:len(mmdb)/2], 0o644) // the metadata section is at the end
	badAssets := filepath.Join(dir, "assets.csv")
	os.WriteFile(badAssets, []byte("ip,hostname\n10.0.0.1,a\n10.0.0.0/8,b\n"), 0o644)
	badWeb := filepath.Join(dir, "web.yml")
	os.WriteFile(badWeb, []byte("tls_server_config:\n  cert_file: /nonexistent.pem\n  bogus: 1\n"), 0o644)
	notDB := filepath.Join(dir, "notdb.db")
	os.WriteFile(notDB, bytes.Repeat([]byte("not a database "), 400), 0o644)
	badRules := filepath.Join(dir, "bad.yaml")
	os.WriteFile(badRules, []byte("profile:\n  id: x\n  name: X\nrules:\n  - id: r1\n    bogus: 1\n"), 0o644)
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"text file", []string{"run", "-r", text}, text + ": not a pcap or pcapng capture"},
		{"empty file", []string{"run", "-r", empty}, empty + ": not a pcap or pcapng capture"},
		{"missing file", []string{"run", "-r", filepath.Join(dir, "nope.pcap")}, "nope.pcap"},
		{"no file", []string{"run"}, "--read"},
		{"bad rules", []string{"run", "-r", demo, "--rules", badRules}, badRules + ":"},
		{"bad home net", []string{"run", "-r", demo, "--home-net", "10.0.0.0/33"}, "--home-net"},
		{"unknown output", []string{"run", "-r", demo, "--output", "smtp://x/y"}, `unknown output "smtp"`},
		{"bad output option", []string{"run", "-r", demo, "--output", "kafka://x/y?compression=rar"}, "compression"},
		{"unknown output option", []string{"run", "-r", demo, "--output", "syslog+tcp://x:514?bogus=1"}, `unknown option "bogus"`},
		{"password in output error", []string{"run", "-r", demo, "--output", "kafka://u:pw@x/y?queue=0"}, "u:xxxxx@"},
		{"two outputs on stdout", []string{"run", "-r", demo, "--output", "ecs:-", "--output", "eve:-"}, "stdout is already an output"},
		{"unknown command", []string{"frobnicate"}, "frobnicate"},
		{"corrupt country database", []string{"run", "-r", demo, "--geoip.country", garbage}, garbage},
		{"truncated country database", []string{"run", "-r", demo, "--geoip.country", cutDB}, cutDB},
		{"corrupt ASN database", []string{"run", "-r", demo, "--geoip.asn", garbage}, garbage},
		{"bad asset file", []string{"run", "-r", demo, "--assets", badAssets}, badAssets + ":3:"},
		{"bad web config", []string{"run", "-r", demo, "--web.config.file", badWeb, "--web.listen-address", "127.0.0.1:0"}, badWeb},
		{"state database not a database", []string{"run", "-r", demo, "--storage.path", notDB}, notDB},
		{"state database in a missing directory", []string{"run", "-r", demo, "--storage.path", filepath.Join(dir, "no", "such", "dir", "x.db")}, "x.db"},
		{"report on a non-database", []string{"report", "--storage.path", notDB}, notDB},
		{"bad removal deadline", []string{"run", "-r", demo, "--removal.deadline", "2018-02-30"}, "--removal.deadline"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, c.args...)
			if code != 2 {
				t.Errorf("exit %d, want 2; stderr: %s", code, stderr)
			}
			if !strings.Contains(stderr, c.want) {
				t.Errorf("stderr %q does not contain %q", stderr, c.want)
			}
			if stdout != "" {
				t.Errorf("stdout not empty: %q", stdout)
			}
		})
	}
	// The bad rules message names line and column.
	_, _, stderr := runCLI(t, "rules", "check", badRules)
	if !regexp.MustCompile(regexp.QuoteMeta(badRules) + `:\d+:\d+: `).MatchString(stderr) {
		t.Errorf("rules error without file:line:col: %q", stderr)
	}
}

// TestTruncatedCapture cuts the demo inside a packet record: what comes
// before the cut is processed, a warning names the file, exit 0.
func TestTruncatedCapture(t *testing.T) {
	data, err := os.ReadFile(demo)
	if err != nil {
		t.Fatal(err)
	}
	_, fullOut, _ := runCLI(t, "run", "-r", demo)
	cut := filepath.Join(t.TempDir(), "cut.pcap")
	if err := os.WriteFile(cut, data[:len(data)*2/3+7], 0o644); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := runCLI(t, "run", "-r", cut)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.Contains(stderr, "warning: "+cut+": capture truncated after") || !strings.Contains(stderr, "processed up to the cut") {
		t.Errorf("no truncation warning: %s", stderr)
	}
	got, full := strings.Count(stdout, "\n"), strings.Count(fullOut, "\n")
	if got == 0 || got >= full {
		t.Errorf("alerts before the cut: %d (full capture: %d)", got, full)
	}
}

// TestMalformedPacketsCounted mixes garbage frames with real traffic:
// each garbage frame is counted at its layer and skipped; the rest is read.
func TestMalformedPacketsCounted(t *testing.T) {
	var buf bytes.Buffer
	w, err := testcap.NewWriter(&buf, time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	client, resolver := testcap.NewHost("10.1.0.5", 0), testcap.NewHost("10.1.0.53", 0)
	// Ethernet header claiming IPv4, then 10 bytes: a cut IPv4 header.
	bad := append(make([]byte, 12), 0x08, 0x00)
	bad = append(bad, 0x45, 0, 0, 40, 0, 0, 0, 0, 64, 6)
	short := []byte{1, 2, 3}
	for _, f := range [][]byte{bad, short, bad} {
		if err := w.Frame(f); err != nil {
			t.Fatal(err)
		}
	}
	q := testcap.Query("dnl-01.geo.kaspersky.com", 1, 7)
	if err := w.DNS(client, resolver, q, testcap.Reply(q, testcap.A("dnl-01.geo.kaspersky.com", "203.0.113.9", 300))); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "mixed.pcap")
	os.WriteFile(path, buf.Bytes(), 0o644)
	code, stdout, stderr := runCLI(t, "run", "-r", path)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !regexp.MustCompile(`decode errors +link 1, ipv4 2\n`).MatchString(stderr) {
		t.Errorf("decode errors not counted per layer:\n%s", stderr)
	}
	if strings.Count(stdout, `"kind":"alert"`) != 1 || !strings.Contains(stderr, "10.1.0.5") {
		t.Errorf("the good packets after the bad ones were not processed:\n%s\n%s", stdout, stderr)
	}
}

// TestPcapng: the same traffic read from pcapng gives the same events.
func TestPcapngMatchesPcap(t *testing.T) {
	data, err := os.ReadFile(demo)
	if err != nil {
		t.Fatal(err)
	}
	ng := filepath.Join(t.TempDir(), "demo.pcapng")
	if err := os.WriteFile(ng, pcapToPcapng(t, data), 0o644); err != nil {
		t.Fatal(err)
	}
	_, a, _ := runCLI(t, "inspect", "-r", demo)
	_, b, stderr := runCLI(t, "inspect", "-r", ng)
	if a != b || a == "" {
		t.Errorf("pcapng gives other events (%d vs %d bytes): %s", len(b), len(a), stderr)
	}
}

// pcapToPcapng rewrites a little-endian microsecond pcap as pcapng by hand
// (section header, one interface, enhanced packet blocks).
func pcapToPcapng(t *testing.T, p []byte) []byte {
	t.Helper()
	le := binary.LittleEndian
	if le.Uint32(p) != 0xa1b2c3d4 {
		t.Skip("demo is not a little-endian microsecond pcap")
	}
	var out bytes.Buffer
	block := func(typ uint32, body []byte) {
		for len(body)%4 != 0 {
			body = append(body, 0)
		}
		n := uint32(12 + len(body))
		binary.Write(&out, le, typ)
		binary.Write(&out, le, n)
		out.Write(body)
		binary.Write(&out, le, n)
	}
	shb := make([]byte, 16)
	le.PutUint32(shb, 0x1a2b3c4d)
	le.PutUint16(shb[4:], 1)
	le.PutUint64(shb[8:], ^uint64(0))
	block(0x0a0d0d0a, shb)
	idb := make([]byte, 8)
	le.PutUint16(idb, uint16(le.Uint32(p[20:])))
	le.PutUint32(idb[4:], 262144)
	block(1, idb)
	for off := 24; off+16 <= len(p); {
		sec, usec, incl, orig := le.Uint32(p[off:]), le.Uint32(p[off+4:]), le.Uint32(p[off+8:]), le.Uint32(p[off+12:])
		ts := uint64(sec)*1e6 + uint64(usec)
		epb := make([]byte, 20)
		le.PutUint32(epb[4:], uint32(ts>>32))
		le.PutUint32(epb[8:], uint32(ts))
		le.PutUint32(epb[12:], incl)
		le.PutUint32(epb[16:], orig)
		block(6, append(epb, p[off+16:off+16+int(incl)]...))
		off += 16 + int(incl)
	}
	return out.Bytes()
}

// TestConfigFile: --config.file settings act as flags; the command line
// wins; every mistake names the file, line and column and exits 2.
func TestConfigFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	fromFile, fromFlag := filepath.Join(dir, "file.json"), filepath.Join(dir, "flag.json")
	cfg := write("phonehome.yml", "# a sensor\nworkers: 2\noutput:\n  - ecs:"+fromFile+"\nstorage.path: \"\"\nremoval.deadline: 2018-10-01\ncapture.promisc: false\nlog.level: warn\n")
	code, _, stderr := runCLI(t, "run", "-r", demo, "--config.file", cfg)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	b, _ := os.ReadFile(fromFile)
	if n := bytes.Count(b, []byte("\n")); n == 0 || !bytes.Contains(b, []byte(`"still-phoning-home"`)) {
		t.Errorf("the file's output got %d alerts, none past the file's deadline:\n%.500s", n, b)
	}
	if strings.Contains(stderr, "level=INFO") {
		t.Errorf("log.level: warn from the file not applied:\n%s", stderr)
	}
	os.Remove(fromFile)
	// The command line's --output replaces the file's list.
	if code, _, stderr := runCLI(t, "--config.file="+cfg, "run", "-r", demo, "--output", "ecs:"+fromFlag); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if _, err := os.Stat(fromFile); err == nil {
		t.Error("the file's output was used although --output was given")
	}
	if _, err := os.Stat(fromFlag); err != nil {
		t.Error("the command line's output was not used")
	}

	for _, c := range []struct{ name, text, want string }{
		{"unknown", "workers: 2\nworkrs: 2\n", `:2:1: unknown setting "workrs" for phonehome run; did you mean "workers"?`},
		{"list for one", "workers: [1, 2]\n", `:1:10: "workers" takes one value, not a list`},
		{"map", "output:\n  ecs: x\n", `:2:3: "output": want a value or a list of values`},
		{"switch", "capture.promisc: maybe\n", `:1:18: "capture.promisc" is a switch: want true or false, not "maybe"`},
		{"twice", "workers: 1\nworkers: 2\n", `:2:1: "workers" set twice (first at line 1)`},
		{"syntax", "workers: [1, 2\n", `:1: did not find expected ',' or ']'`},
		{"not a map", "- workers\n", `:1:1: want a mapping`},
		{"itself", "config.file: x.yml\n", `:1:1: config.file cannot name another file`},
		{"bad value", "workers: many\n", `:1:10: "workers": bad value "many"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := write(strings.ReplaceAll(c.name, " ", "-")+".yml", c.text)
			code, stdout, stderr := runCLI(t, "run", "-r", demo, "--config.file", p)
			if code != 2 || !strings.Contains(stderr, c.want) || stdout != "" {
				t.Errorf("exit %d, stderr %q: want 2 and %q", code, stderr, c.want)
			}
			if c.want[0] == ':' && !strings.Contains(stderr, p+c.want) {
				t.Errorf("stderr %q does not name %s", stderr, p)
			}
		})
	}
	if code, _, stderr := runCLI(t, "run", "-r", demo, "--config.file", filepath.Join(dir, "none.yml")); code != 2 || !strings.Contains(stderr, "none.yml") {
		t.Errorf("missing file: exit %d: %s", code, stderr)
	}
}
