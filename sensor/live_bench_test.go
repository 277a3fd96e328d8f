package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestBenchLive is `make bench-live`, not a timed test: it replays a
// generated capture (../shared/bench/gen) with tcpreplay --topspeed into
// one end of a veth pair while phonehome captures on the other end (1 and
// 2 workers), and prints packets replayed per second, packets phonehome
// saw, kernel drops, and the share of the truth's matching hosts found.
//
//	PHONEHOME_BENCH_LIVE=1 go test ./sensor -run '^TestBenchLive$' -v -timeout 30m
//
// PHONEHOME_BENCH_PACKETS (default 1000000) sets the capture size;
// PHONEHOME_BENCH_PCAP names an existing capture (with its .truth.json)
// instead; PHONEHOME_BENCH_WORKERS (default "1 2") the runs;
// PHONEHOME_BENCH_ARGS adds phonehome flags (e.g. --capture.ring-size 512MiB).
func TestBenchLive(t *testing.T) {
	if os.Getenv("PHONEHOME_BENCH_LIVE") == "" {
		t.Skip("set PHONEHOME_BENCH_LIVE=1 (make bench-live) to run the live capture benchmark")
	}
	needNetns(t)
	needTools(t, "tcpreplay")
	dir := t.TempDir()
	bin := buildPhonehome(t, dir, "")
	pcap, truth := benchCapture(t)
	var tr genTruth
	if data, err := os.ReadFile(truth); err != nil {
		t.Fatal(err)
	} else if err := json.Unmarshal(data, &tr); err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{}
	for _, ip := range tr.Matches.ClientIPList {
		want[ip] = true
	}

	p := newVethPair(t, "bench")
	// Generated frames may exceed 1514 bytes (802.1Q tags).
	p.ip("-n", p.nsC, "link", "set", vethC, "mtu", "9000")
	p.ip("-n", p.nsS, "link", "set", vethS, "mtu", "9000")
	workers := strings.Fields(os.Getenv("PHONEHOME_BENCH_WORKERS"))
	if len(workers) == 0 {
		workers = []string{"1", "2"}
	}
	var rows []string
	for _, w := range workers {
		rows = append(rows, benchLiveRun(t, p, bin, pcap, w, want))
	}
	flags := "defaults"
	if extra := strings.TrimSpace(os.Getenv("PHONEHOME_BENCH_ARGS")); extra != "" {
		flags = extra
	}
	report := fmt.Sprintf("bench-live: %s (%d matching hosts in the truth), tcpreplay --topspeed into %s, phonehome on %s (afpacket, %s)\n"+
		"%-8s %14s %12s %14s %14s %12s %12s %s\n%s\n",
		filepath.Base(pcap), len(want), vethC, vethS, flags,
		"workers", "replayed/s", "replayed", "seen(summary)", "kernel drops", "iface drops", "freezes", "hosts found",
		strings.Join(rows, "\n"))
	t.Log("\n" + report)
	fmt.Print(report)
}

// benchCapture returns the capture to replay and its truth file, generated
// once and kept in the temporary directory for the next run.
func benchCapture(t *testing.T) (pcap, truth string) {
	t.Helper()
	if pcap = os.Getenv("PHONEHOME_BENCH_PCAP"); pcap != "" {
		return pcap, strings.TrimSuffix(pcap, ".pcap") + ".truth.json"
	}
	packets := os.Getenv("PHONEHOME_BENCH_PACKETS")
	if packets == "" {
		packets = "1000000"
	}
	pcap = filepath.Join(os.TempDir(), "phonehome-bench-live-"+packets+"-seed1.pcap")
	truth = strings.TrimSuffix(pcap, ".pcap") + ".truth.json"
	if _, err := os.Stat(truth); err == nil {
		if _, err := os.Stat(pcap); err == nil {
			return pcap, truth
		}
	}
	if _, err := os.Stat(filepath.Join(sharedGen, "main.go")); err != nil {
		t.Skipf("generator not available (%v): set PHONEHOME_BENCH_PCAP", err)
	}
	gen := filepath.Join(t.TempDir(), "gen")
	build := exec.Command("go", "build", "-o", gen, ".")
	build.Dir = sharedGen
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the generator: %v\n%s", err, out)
	}
	if out, err := exec.Command(gen, "-packets", packets, "-seed", "1", "-o", pcap).CombinedOutput(); err != nil {
		os.Remove(pcap)
		os.Remove(truth)
		t.Fatalf("generating: %v\n%s", err, out)
	}
	return pcap, truth
}

var (
	replayActual = regexp.MustCompile(`Actual: (\d+) packets \((\d+) bytes\) sent in ([0-9.]+) seconds`)
	replayRated  = regexp.MustCompile(`Rated: [0-9.]+ Bps, [0-9.]+ Mbps, ([0-9.]+) pps`)
	summaryPkts  = regexp.MustCompile(`(?m)^  packets\s+(\d+) `)
	summaryCap   = regexp.MustCompile(`(?m)^  capture\s+\S+ \(afpacket\): (\d+) packets, (\d+) kernel drops, (\d+) interface drops, (\d+) ring freezes`)
)

// benchLiveRun replays the capture once with phonehome on the given number
// of workers and returns one row of the report.
func benchLiveRun(t *testing.T, p *vethPair, bin, pcap, workers string, want map[string]bool) string {
	t.Helper()
	out, err := os.MkdirTemp("", "phbench")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(out)
	notifyPath := filepath.Join(out, "notify")
	notify, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: notifyPath, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer notify.Close()
	alerts := filepath.Join(out, "alerts.json")
	args := []string{"run", "-i", vethS, "--workers", workers, "--storage.path", "", "--alerts.out", alerts, "--log.level", "warn",
		// The generator's clients (documentation space for IPv6) and its
		// truth, which is about Kaspersky names (its servers are drawn at
		// random, some from Russian networks).
		"--home-net", "10.0.0.0/8", "--home-net", "2001:db8:4000::/48", "--rules.disable", "russian-hosted"}
	args = append(args, strings.Fields(os.Getenv("PHONEHOME_BENCH_ARGS"))...)
	ph := p.background(p.nsS, []string{"NOTIFY_SOCKET=" + notifyPath}, bin, args...)
	notify.SetReadDeadline(time.Now().Add(20 * time.Second))
	buf := make([]byte, 512)
	if n, err := notify.Read(buf); err != nil || !strings.Contains(string(buf[:n]), "READY=1") {
		t.Fatalf("workers %s: no READY=1 (%v); phonehome:\n%s", workers, err, ph.out.String())
	}

	replay := exec.Command("ip", "netns", "exec", p.nsC, "tcpreplay", "--topspeed", "-i", vethC, pcap)
	rout, err := replay.CombinedOutput()
	if err != nil {
		t.Fatalf("tcpreplay: %v\n%s", err, rout)
	}
	m := replayActual.FindSubmatch(rout)
	r := replayRated.FindSubmatch(rout)
	if m == nil || r == nil {
		t.Fatalf("tcpreplay output not understood:\n%s", rout)
	}
	sent, _ := strconv.ParseUint(string(m[1]), 10, 64)
	pps, _ := strconv.ParseFloat(string(r[1]), 64)

	// Let phonehome empty the ring, then stop it.
	time.Sleep(3 * time.Second)
	ph.cmd.Process.Signal(syscall.SIGTERM)
	if err := ph.wait(60 * time.Second); err != nil {
		t.Fatalf("workers %s: phonehome: %v\n%s", workers, err, ph.out.String())
	}
	log := ph.out.String()
	pk := summaryPkts.FindStringSubmatch(log)
	cp := summaryCap.FindStringSubmatch(log)
	if pk == nil || cp == nil {
		t.Fatalf("workers %s: summary not understood:\n%s", workers, log)
	}
	found := map[string]bool{}
	f, err := os.Open(alerts)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var ev map[string]any
		if json.Unmarshal(sc.Bytes(), &ev) != nil {
			continue
		}
		if h, ok := field(ev, "phonehome.host").(string); ok && want[h] {
			found[h] = true
		}
	}
	hosts := fmt.Sprintf("%d/%d (%.1f %%)", len(found), len(want), 100*float64(len(found))/float64(max(len(want), 1)))
	t.Logf("workers %s: tcpreplay: %s", workers, lastLines(string(rout), 8))
	return fmt.Sprintf("%-8s %14.0f %12d %14s %14s %12s %12s %s", workers, pps, sent, pk[1], cp[2], cp[3], cp[4], hosts)
}
