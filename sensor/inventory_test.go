package main

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/miekg/dns"

	"github.com/phonehome-sensor/phonehome/sensor/internal/alert"
	"github.com/phonehome-sensor/phonehome/sensor/internal/testcap"
)

// dhcpRequest is a DHCPREQUEST (renewal, ciaddr set) carrying a host
// name, as Windows clients send one.
func dhcpRequest(t *testing.T, mac net.HardwareAddr, ip, hostname string) []byte {
	t.Helper()
	d := &layers.DHCPv4{
		Operation: layers.DHCPOpRequest, HardwareType: layers.LinkTypeEthernet, HardwareLen: 6, Xid: 7,
		ClientIP: net.ParseIP(ip).To4(), YourClientIP: net.IPv4zero, NextServerIP: net.IPv4zero, RelayAgentIP: net.IPv4zero,
		ClientHWAddr: mac,
		Options: []layers.DHCPOption{
			layers.NewDHCPOption(layers.DHCPOptMessageType, []byte{byte(layers.DHCPMsgTypeRequest)}),
			layers.NewDHCPOption(layers.DHCPOptHostname, []byte(hostname)),
		},
	}
	buf := gopacket.NewSerializeBuffer()
	if err := d.SerializeTo(buf, gopacket.SerializeOptions{FixLengths: true}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// inventoryCapture: two hosts look up Kaspersky update names; one named
// itself in DHCP (with a hostile name), the other is in the asset file.
func inventoryCapture(t *testing.T, dir string) string {
	t.Helper()
	var buf bytes.Buffer
	w, err := testcap.NewWriter(&buf, time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	a := testcap.NewHost("10.40.0.10", 0)
	b := testcap.NewHost("10.40.0.11", 0)
	dhcpd := testcap.NewHost("10.40.0.1", 0)
	resolver := testcap.NewHost("10.40.0.53", 0)
	mac, _ := net.ParseMAC("02:00:0a:28:00:0a")
	a.MAC = mac
	if err := w.UDP(a, dhcpd, 68, 67, dhcpRequest(t, mac, "10.40.0.10", "WS-<b>0010")); err != nil {
		t.Fatal(err)
	}
	for i, h := range []testcap.Host{a, b} {
		q := testcap.Query("dnl-0"+string(rune('1'+i))+".geo.kaspersky.com", dns.TypeA, uint16(100+i))
		if err := w.DNS(h, resolver, q, nil); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(dir, "inventory.pcap")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestInventoryStoreAndReport: a run writes the inventory to SQLite with
// names from DHCP and the asset file and the deadline policy; `report`
// reads it back in every format, statuses as of a given day.
func TestInventoryStoreAndReport(t *testing.T) {
	dir := t.TempDir()
	pcap := inventoryCapture(t, dir)
	db := filepath.Join(dir, "inv.db")
	assets := filepath.Join(dir, "assets.csv")
	if err := os.WriteFile(assets, []byte("ip|mac,hostname,owner,site,removal_date\n10.40.0.11,fin-ws-11,finance,hq,2027-01-01\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	code := run([]string{"run", "-r", pcap, "--storage.path", db, "--removal.deadline", "2018-10-01", "--assets", assets, "--log.level", "warn"}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("run: exit %d: %s", code, stderr.String())
	}
	if s := squash(stderr.String()); !strings.Contains(s, "hosts 2 phoning home, 1 contacts after their removal deadline") || !strings.Contains(s, "inventory "+db) {
		t.Fatalf("summary:\n%s", stderr.String())
	}
	// The alert of the host past its deadline says so.
	if !strings.Contains(stdout.String(), `"status":"still-phoning-home","deadline":"2018-10-01"`) {
		t.Errorf("no still-phoning-home alert:\n%s", stdout.String())
	}
	stdout.Reset()
	stderr.Reset()
	if code := run([]string{"report", "--storage.path", db, "--format", "json", "--now", "2026-11-03"}, &stdout, &stderr); code != 0 {
		t.Fatalf("report: exit %d: %s", code, stderr.String())
	}
	var hosts []map[string]any
	if err := json.Unmarshal(stdout.Bytes(), &hosts); err != nil {
		t.Fatalf("report json: %v\n%s", err, stdout.String())
	}
	got := map[string]string{}
	for _, h := range hosts {
		got[str(h["ip"])] = str(h["hostname"]) + " " + str(h["status"])
	}
	want := map[string]string{
		// The DHCP name, escaped on the wire path; deadline passed.
		"10.40.0.10": "ws-<b>0010 still-phoning-home",
		// The asset file's name and its own, later deadline.
		"10.40.0.11": "fin-ws-11 still-phoning-home",
	}
	for ip, w := range want {
		if got[ip] != w {
			t.Errorf("host %s: %q, want %q", ip, got[ip], w)
		}
	}
	for _, format := range []string{"table", "csv", "html"} {
		stdout.Reset()
		if code := run([]string{"report", "--storage.path", db, "--format", format, "--now", "2026-11-03"}, &stdout, &stderr); code != 0 {
			t.Fatalf("report %s: exit %d: %s", format, code, stderr.String())
		}
		// Markup is harmless in a terminal or a CSV cell, not in HTML.
		if format == "html" && (strings.Contains(stdout.String(), "<b>0010") || !strings.Contains(stdout.String(), "&lt;b&gt;0010")) {
			t.Errorf("report %s: the hostile host name is not escaped", format)
		}
		if !strings.Contains(stdout.String(), "fin-ws-11") {
			t.Errorf("report %s lacks a host", format)
		}
	}
	// A missing store is a usage error naming it.
	if code := run([]string{"report", "--storage.path", filepath.Join(dir, "none.db")}, &stdout, &stderr); code != 2 || !strings.Contains(stderr.String(), "none.db") {
		t.Errorf("missing store: exit %d: %s", code, stderr.String())
	}
}

// TestAlertsFileAppended: a second run appends to --alerts.out instead
// of truncating it (a restarted sensor keeps its earlier alerts).
func TestAlertsFileAppended(t *testing.T) {
	out := filepath.Join(t.TempDir(), "alerts.json")
	lines := func() int {
		b, _ := os.ReadFile(out)
		return strings.Count(string(b), "\n")
	}
	var stdout, stderr bytes.Buffer
	first := 0
	for i := 1; i <= 2; i++ {
		if code := run([]string{"run", "-r", "testdata/demo.pcap", "--alerts.out", out, "--log.level", "error"}, &stdout, &stderr); code != 0 {
			t.Fatalf("run %d: exit %d: %s", i, code, stderr.String())
		}
		if i == 1 {
			if first = lines(); first == 0 {
				t.Fatal("no alerts written")
			}
		}
	}
	if n := lines(); n != 2*first {
		t.Fatalf("%d lines after two runs, want %d", n, 2*first)
	}
}

// TestAlertsFileReopened: after logrotate moves the alerts file, a
// reload (SIGHUP, /-/reload) reopens it: later alerts go to the new file,
// none is lost.
func TestAlertsFileReopened(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "alerts.json")
	a := &args{alertsOut: path}
	outs, err := openOutputs(a, io.Discard, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ev := func(id string) *alert.Event { return &alert.Event{Event: alert.EventMeta{Kind: "alert", Dataset: id}} }
	// waitSent waits for the output to have written n events: the
	// output goroutine writes, not the caller.
	waitSent := func(n uint64) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); outs.Stats()[0].Sent < n; time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("output stats %+v, want %d sent", outs.Stats()[0], n)
			}
		}
	}
	outs.Emit(ev("first"))
	waitSent(1)
	if err := os.Rename(path, path+".1"); err != nil { // logrotate, create mode
		t.Fatal(err)
	}
	if a.reopenAlerts == nil {
		t.Fatal("no reopen for a file output")
	}
	if err := a.reopenAlerts(); err != nil {
		t.Fatal(err)
	}
	outs.Emit(ev("second"))
	if _, err := closeOutputs(outs, 10*time.Second, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	if s := outs.Stats()[0]; s.Sent != 2 {
		t.Fatalf("stats %+v", s)
	}
	old, _ := os.ReadFile(path + ".1")
	cur, _ := os.ReadFile(path)
	if !strings.Contains(string(old), `"first"`) || strings.Contains(string(old), `"second"`) || !strings.Contains(string(cur), `"second"`) || strings.Contains(string(cur), `"first"`) {
		t.Fatalf("rotated file:\n%s\nnew file:\n%s", old, cur)
	}
}
